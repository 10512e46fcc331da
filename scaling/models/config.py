"""The typed description of one model, validated once at the edge; each family subclasses it.

Config files keep one flat `config.model` group whatever the family; `ModelConfig.from_dict` picks
the family's own frozen dataclass by `arch` and builds it from the keys that family reads, so a bad
size, an unknown key or a key the chosen family would silently ignore is one line naming the key,
before anything is built or written. Keys other families read are allowed at their defaults: one
config file (or `--config.model.arch=...` on it) can serve several families.
"""

import dataclasses
from typing import Callable

from scaling import checks
from scaling.errors import InputError
from scaling.models import registry

MAX_INT = 2**31 - 1  # integer keys stay within int32: step counters, positions and shapes on device

NORMS = ("layernorm", "rmsnorm")
DTYPES = ("float32", "bfloat16")


def check_int(cfg, key: str, minimum: int = 1) -> None:
  checks.number(getattr(cfg, key), f"model.{key}", integer=True, at_least=minimum, at_most=MAX_INT)


def check_choice(cfg, key: str, allowed) -> None:
  checks.one_of(getattr(cfg, key), f"model.{key}", allowed)


def check_bool(cfg, key: str) -> None:
  checks.boolean(getattr(cfg, key), f"model.{key}")


def check_positive(cfg, key: str) -> None:
  checks.number(getattr(cfg, key), f"model.{key}", above=0)


class _ByArch(type):
  """`ModelConfig(arch=..., **keys)` builds that family's class, as `pathlib.Path(...)` builds a
  `PosixPath`; a family's own class is constructed as usual."""

  def __call__(cls, *args, **values):
    if cls is ModelConfig:
      if args:
        raise TypeError("ModelConfig(...) takes keys by name")
      return ModelConfig.from_dict(values)
    return super().__call__(*args, **values)


@dataclasses.dataclass(frozen=True)
class ModelConfig(metaclass=_ByArch):
  """The keys every family reads. Letters used in shape names: D d_model, V vocab_size."""

  arch: str = "transformer"
  d_model: int = 64
  n_layers: int = 2
  vocab_size: int = 256
  seq_len: int = 64
  norm: str = "rmsnorm"  # "layernorm": Kaplan / GPT-2 style
  tie_embeddings: bool = False
  dtype: str = "float32"  # compute dtype; parameters are always float32
  init_std: float = 0.02

  def __post_init__(self):
    if registry.get(self.arch).config is not type(self):
      raise InputError(f"model.arch={self.arch} is not configured by {type(self).__name__}")
    for key in ("d_model", "n_layers", "vocab_size", "seq_len"):
      check_int(self, key)
    check_choice(self, "norm", NORMS)
    check_choice(self, "dtype", DTYPES)
    check_bool(self, "tie_embeddings")
    check_positive(self, "init_std")

  def check_backend(self, backend: Callable[[], str]) -> None:
    """Refuses options this JAX backend cannot run (checked when a run starts, not when a config is
    built, so configs for other machines can still be planned and compiled for). `backend()` names
    it; call it only for an option that depends on it: asking starts the backend, which in a
    multi-process run must wait for `jax.distributed.initialize`."""

  def resolved(self) -> dict:
    """Every key with the value that takes effect (what reports print)."""
    return dataclasses.asdict(self)

  @classmethod
  def key_names(cls) -> tuple[str, ...]:
    """The `model.*` keys this family reads."""
    return tuple(field.name for field in dataclasses.fields(cls))

  @classmethod
  def from_dict(cls, values) -> "ModelConfig":
    """The family's config from a flat mapping (e.g. `config.model`), naming a bad key."""
    values = dict(values)
    family = registry.get(values.get("arch", "transformer")).config if cls is ModelConfig else cls
    families = [architecture.config for architecture in registry.all_architectures().values()]
    for key in [key for key in values if key not in family.key_names()]:
      defaults = [_default(other, key) for other in families if key in other.key_names()]
      if not defaults:
        known = sorted({name for other in families for name in other.key_names()})
        raise InputError(f"model.{key} is not a known key (known: {', '.join(known)})")
      if not any(_same(values[key], default) for default in defaults):
        arch = values.get("arch", family.arch)
        raise InputError(f"model.{key} is set, but arch={arch} does not read it")
      del values[key]  # another family's key at its default: one config serves several families
    return family(**values)


def _default(family: type, key: str):
  return next(field.default for field in dataclasses.fields(family) if field.name == key)


def _same(value, default) -> bool:
  """A value a config left at its default (4 and 4.0 are the same, True and 1 are not)."""
  return value == default and isinstance(value, bool) == isinstance(default, bool)

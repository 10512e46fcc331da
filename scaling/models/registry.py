"""Architecture name -> everything the rest of the package may ask of a model family.

The family owns its config keys, its cost and its shapes (Levanter's `LmConfig.register_subclass`):
training, throughput logging, the size ladder and sweep planning all ask the same entry, so they can
never disagree, and nothing outside the family's file knows its hyperparameters. A new
architecture is one file that calls `register` (from inside the package, or from any code that runs
before the config is validated; README.md, "Add an architecture").
"""

import dataclasses
from typing import Callable

from scaling.errors import InputError

# FLOP conventions every family's `flops_per_token` answers, in this order (`accounting` explains
# each for the Transformer); sweeps and the law fitter pick one by name.
CONVENTIONS = ("kaplan", "chinchilla", "6n", "6n_total")


@dataclasses.dataclass(frozen=True)
class Architecture:
  """`module(cfg, rngs=...)` builds the model (an `nnx.Module`) with three methods:

  - `__call__(tokens_BxL) -> logits_BxLxV` (float32): training and evaluation;
  - `init_cache(batch_size, max_len) -> cache`: a pytree of arrays holding what decoding carries
    (a Transformer's keys and values, a recurrent model's state) and the next position;
  - `decode(tokens_BxL, cache) -> (logits_BxLxV, cache)`: continues the sequence from the cache's
    position by L tokens. Decoding a prefix in any chunks gives the logits `__call__` gives on it.

  Its parameters name logical axes (`scaling.parallel.rules`); `axis_keys` says which config key
  sets the size of each split one, so a size the mesh cannot split is reported by its key.
  """

  config: type  # the family's `ModelConfig` subclass: its keys, defaults and validation
  module: Callable
  param_counts: Callable  # cfg -> {"total", "embedding", "non_embedding"}
  flops_per_token: Callable  # cfg -> {convention: training FLOPs per token}, one per CONVENTIONS
  resize: Callable  # (target non-embedding N, ladder rule, base cfg) -> cfg of about that N
  axis_keys: dict = dataclasses.field(
      default_factory=lambda: {"embed": "model.d_model", "vocab": "model.vocab_size"})


_ARCHITECTURES: dict[str, Architecture] = {}


def register(name: str, architecture: Architecture) -> None:
  if name in _ARCHITECTURES:
    raise ValueError(f"architecture {name!r} is registered twice")
  _ARCHITECTURES[name] = architecture


def unregister(name: str) -> None:
  """Forgets an architecture (a test's toy family, after the test)."""
  del _ARCHITECTURES[name]


def get(name: str) -> Architecture:
  if not isinstance(name, str) or name not in _ARCHITECTURES:
    raise InputError(f"model.arch: unknown architecture {name!r} (known: {', '.join(names())})")
  return _ARCHITECTURES[name]


def names() -> list[str]:
  return sorted(_ARCHITECTURES)


def all_architectures() -> dict[str, Architecture]:
  return dict(_ARCHITECTURES)

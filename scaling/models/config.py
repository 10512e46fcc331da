"""The typed description of one model in a family, validated once at the edge.

Config files are ml_collections data; the inside of the package receives a frozen `ModelConfig`, so a
bad size or an unknown option is reported once, naming the key, before anything is built or written.
"""

import dataclasses

from scaling import checks
from scaling.errors import InputError

MAX_INT = 2**31 - 1  # integer keys stay within int32: step counters, positions and shapes on device

NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "swiglu")
POSITIONS = ("learned", "rotary")
DTYPES = ("float32", "bfloat16")
REMAT = ("none", "full", "dots")
ATTENTION = ("auto", "xla", "cudnn")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """One member of a decoder-only family. Letters used in shape names: D d_model, F d_ff, H n_heads."""

  arch: str = "transformer"
  d_model: int = 64
  n_layers: int = 2
  n_heads: int = 4
  d_ff: int = 0  # 0: derived as round(mlp_ratio * d_model)
  mlp_ratio: float = 4.0
  vocab_size: int = 256
  seq_len: int = 64
  norm: str = "rmsnorm"  # "layernorm": Kaplan / GPT-2 style
  mlp: str = "swiglu"  # "gelu": Kaplan / GPT-2 style
  position: str = "rotary"  # "learned": Kaplan / GPT-2 style
  tie_embeddings: bool = False
  dtype: str = "float32"  # compute dtype; parameters are always float32
  init_std: float = 0.02
  scan_layers: bool = False  # apply the blocks with a scan: compile time flat in depth
  remat: str = "none"  # recompute activations in the backward pass: none | full | dots (keep matmuls)
  attention: str = "auto"  # jax.nn.dot_product_attention implementation: auto | xla | cudnn

  @property
  def head_dim(self) -> int:
    return self.d_model // self.n_heads

  @property
  def hidden_dim(self) -> int:
    """The MLP hidden width F actually used."""
    return self.d_ff if self.d_ff > 0 else int(round(self.mlp_ratio * self.d_model))

  def __post_init__(self):
    for key in ("d_model", "n_layers", "n_heads", "vocab_size", "seq_len"):
      value = getattr(self, key)
      if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_INT:
        raise InputError(f"model.{key} must be a positive integer ≤ {MAX_INT}, got {value!r}")
    if not isinstance(self.d_ff, int) or not 0 <= self.d_ff <= MAX_INT:
      raise InputError(f"model.d_ff must be a non-negative integer (0 = from mlp_ratio), got {self.d_ff!r}")
    if self.d_ff == 0 and not 0 < self.mlp_ratio < float("inf"):
      raise InputError(f"model.mlp_ratio must be positive, got {self.mlp_ratio!r}")
    if self.d_model % self.n_heads:
      raise InputError(
          f"model.n_heads={self.n_heads} does not divide model.d_model={self.d_model}")
    if self.position == "rotary" and self.head_dim % 2:
      raise InputError(f"model.position=rotary needs an even head dim, got {self.head_dim}")
    for key, allowed in (("norm", NORMS), ("mlp", MLPS), ("position", POSITIONS), ("dtype", DTYPES),
                         ("remat", REMAT), ("attention", ATTENTION)):
      if getattr(self, key) not in allowed:
        raise InputError(f"model.{key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
    for key in ("tie_embeddings", "scan_layers"):
      if not isinstance(getattr(self, key), bool):
        raise InputError(f"model.{key} must be true or false, got {getattr(self, key)!r}")
    if not 0 < self.init_std < float("inf"):
      raise InputError(f"model.init_std must be positive, got {self.init_std!r}")

  @classmethod
  def from_dict(cls, values) -> "ModelConfig":
    """Builds from a mapping (e.g. `config.model`), naming any unknown key."""
    return checks.dataclass_from(cls, values, "model")

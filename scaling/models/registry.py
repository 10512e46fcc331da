"""Architecture name -> (module, its parameter count, its FLOPs per token).

The model owns its cost (Levanter): training, throughput logging and sweep planning all ask the same
entry, so they can never disagree. A new architecture is one file that calls `register` plus one
import line in `scaling/models/__init__.py`.
"""

import dataclasses
from typing import Callable

from scaling.errors import InputError


@dataclasses.dataclass(frozen=True)
class Architecture:
  """`module(cfg, rngs=...)` builds the model (an `nnx.Module`) with three methods:

  - `__call__(tokens_BxL) -> logits_BxLxV` (float32): training and evaluation;
  - `init_cache(batch_size, max_len) -> cache`: a pytree of arrays holding what decoding carries
    (a Transformer's keys and values, a recurrent model's state) and the next position;
  - `decode(tokens_BxT, cache) -> (logits_BxTxV, cache)`: continues the sequence from the cache's
    position by T tokens. Decoding a prefix in any chunks gives the logits `__call__` gives on it.
  """

  module: Callable
  param_counts: Callable  # ModelConfig -> {"total", "embedding", "non_embedding"}
  flops_per_token: Callable  # ModelConfig -> {convention: training FLOPs per token}


_ARCHITECTURES: dict[str, Architecture] = {}


def register(name: str, architecture: Architecture) -> None:
  if name in _ARCHITECTURES:
    raise ValueError(f"architecture {name!r} is registered twice")
  _ARCHITECTURES[name] = architecture


def get(name: str) -> Architecture:
  if name not in _ARCHITECTURES:
    raise InputError(f"model.arch: unknown architecture {name!r} (known: {', '.join(names())})")
  return _ARCHITECTURES[name]


def names() -> list[str]:
  return sorted(_ARCHITECTURES)

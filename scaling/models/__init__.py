"""Model families. Importing this package registers every architecture.

Shape letters of array names (`x_BxLxD` is [B, L, D]) here, in scaling/data and scaling/train:
  B  rows of a batch (the global batch)
  L  positions one call processes: a training row's seq_len, or the chunk a decode call feeds
  M  key positions attention reads: L in training, the KV cache's length when decoding
  W  = L + 1, a data window: L inputs and, shifted by one, their L targets;  R  a split's windows
  T  tokens on one flat axis: a batch's B·L flattened (projections, the chunked loss), or a stream
  D  d_model, a recurrent model's hidden size too;  I, O  a weight's input and output features
  H  heads;  K  head dim;  F  MLP hidden width;  V  vocabulary
  C  the projections stacked in one fused weight (3: q, k, v; 2: gate, up);  G  an LSTM's 4 gates
  Z  layers (depth), the leading axis of a stacked cache;  P  processes;  a digit: that size
Lowercase is a part of its capital and the count of parts: b rows of one process (B/P) or one of
m microbatches (B/m); v one of c vocabulary slices (the chunked loss); l positions of one of n
attention blocks (blockwise attention). N is never a shape letter: it is a parameter count (the
scaling law's N).
"""

from scaling.models import transformer  # noqa: F401  registers "transformer"
from scaling.models import lstm  # noqa: F401  registers "lstm"
from scaling.models import rnn  # noqa: F401  registers "rnn"
from scaling.models.config import ModelConfig
from scaling.models.registry import get, names

__all__ = ["ModelConfig", "get", "names"]

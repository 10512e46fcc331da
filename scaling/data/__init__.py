"""Training data: a corpus of two splits (token streams or lazily read documents), and batches.

Names are imported on first use, so `scaling data prepare` and `scaling tokenizer` (which need the
tokenizers, not grain's batches) start without importing grain and JAX.
"""

import importlib

_HOMES = {
    "eval_batches": "batches", "iterate_from": "batches", "train_batches": "batches",
    "Corpus": "corpus", "DataConfig": "corpus", "load_corpus": "corpus",
    "ByteTokenizer": "tokenizer", "SentencePieceTokenizer": "tokenizer",
    "load_tokenizer": "tokenizer",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
  if name not in _HOMES:
    raise AttributeError(f"module 'scaling.data' has no attribute {name!r}")
  return getattr(importlib.import_module(f"scaling.data.{_HOMES[name]}"), name)

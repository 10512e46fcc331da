"""Tokenizers: bytes (no vocabulary file) and SentencePiece (a trained model file).

Both append `eos_id` after every document, so packed windows carry document boundaries. For bytes
that is token 0 (NUL, which text does not normally contain; file bytes are kept exactly as they are,
so a NUL inside a file also reads as a boundary); for SentencePiece it is the model's own eos piece,
a real id of its vocabulary. `data.tokenizer` names one: "bytes" or "spm:PATH".
"""

import dataclasses
import hashlib
import io
from collections.abc import Iterable, Iterator

import numpy as np
from etils import epath

from scaling.errors import InputError

SPM_PREFIX = "spm:"
# Lines longer than this are skipped by SentencePiece training (its default is 4192 bytes).
_MAX_SENTENCE_BYTES = 1 << 14


@dataclasses.dataclass(frozen=True)
class ByteTokenizer:
  """Text <-> utf-8 bytes as token ids (vocab 256)."""

  vocab_size: int = 256
  eos_id: int = 0  # ends every document; prepend it to a prompt to condition on a document start
  unk_id: int = -1  # none: every text has bytes

  @property
  def identity(self) -> dict:
    """What the corpus fingerprint records about the tokenizer."""
    return {"kind": "bytes", "vocab_size": self.vocab_size, "eos_id": self.eos_id}

  def bytes_per_token(self) -> np.ndarray:
    """int32 [V]: every id is one byte (eos is the NUL byte), so bits per byte is bits per token."""
    return np.ones(self.vocab_size, np.int32)

  def encode(self, text: str) -> np.ndarray:
    """The utf-8 bytes of `text` as int32 ids (what the model embeds)."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)

  def decode(self, ids) -> str:
    """Text of `ids`; a byte sequence cut mid-character decodes to U+FFFD instead of failing."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
      raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got {ids.min()}..{ids.max()}")
    return ids.astype(np.uint8).tobytes().decode("utf-8", errors="replace")

  def encode_document(self, document: bytes) -> np.ndarray:
    """One document's uint8 ids followed by `eos_id` (what a lazily read source packs)."""
    return np.frombuffer(document + bytes([self.eos_id]), dtype=np.uint8)

  def encode_documents(self, documents: Iterable[bytes]) -> np.ndarray:
    """One uint8 token stream: each document's bytes followed by `eos_id`."""
    separator = bytes([self.eos_id])
    return np.frombuffer(b"".join(doc + separator for doc in documents), dtype=np.uint8)


class SentencePieceTokenizer:
  """A SentencePiece model; documents are separated by the model's eos id."""

  def __init__(self, model_proto: bytes, path: str = ""):
    import sentencepiece as spm

    self._processor = spm.SentencePieceProcessor(model_proto=model_proto)
    self.path = path
    self.sha256 = hashlib.sha256(model_proto).hexdigest()
    self.vocab_size = int(self._processor.vocab_size())
    self.eos_id = int(self._processor.eos_id())
    self.unk_id = int(self._processor.unk_id())  # text outside the vocabulary encodes to it (-1: none)
    if self.eos_id < 0:
      raise InputError(f"data.tokenizer: {path} has no eos piece to separate documents; train one "
                       f"with `scaling tokenizer train`, or a model with eos_id >= 0")
    # Streams of a vocabulary that fits 16 bits take half the memory of int32 ones.
    self._stream_dtype = np.uint16 if self.vocab_size <= 1 << 16 else np.int32

  @property
  def identity(self) -> dict:
    return {"kind": "spm", "path": self.path, "sha256": self.sha256,
            "vocab_size": self.vocab_size, "eos_id": self.eos_id}

  def bytes_per_token(self) -> np.ndarray:
    """int32 [V]: the UTF-8 bytes each piece stands for (what bits per byte divides by).

    A byte-fallback piece is one byte; eos counts as one, the document separator it replaces, as
    the byte tokenizer's NUL does, so both tokenizers count the same bytes for the same documents;
    unk (text the model cannot spell, absent with byte fallback) counts as one; other control
    pieces (bos, pad) as none. "▁" is SentencePiece's escaped space.
    """
    processor = self._processor
    counts = np.zeros(self.vocab_size, np.int32)
    for i in range(self.vocab_size):
      if processor.is_byte(i) or processor.is_unknown(i) or i == self.eos_id:
        counts[i] = 1
      elif not processor.is_control(i):
        counts[i] = len(processor.id_to_piece(i).replace("\u2581", " ").encode("utf-8"))
    return counts

  def encode(self, text: str) -> np.ndarray:
    return np.asarray(self._processor.encode(text), dtype=np.int32)

  def decode(self, ids) -> str:
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
      raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got {ids.min()}..{ids.max()}")
    return self._processor.decode(ids.tolist())

  def encode_document(self, document: bytes) -> np.ndarray:
    ids = self._processor.encode(document.decode("utf-8", errors="replace"))
    ids.append(self.eos_id)
    return np.asarray(ids, dtype=np.int32)

  def encode_documents(self, documents: Iterable[bytes]) -> np.ndarray:
    """One token stream (uint16, or int32 past 65536 pieces): each document's ids, then eos."""
    texts = [doc.decode("utf-8", errors="replace") for doc in documents]
    pieces = self._processor.encode(texts, num_threads=-1) if texts else []
    lengths = np.array([len(ids) + 1 for ids in pieces], dtype=np.int64)
    stream = np.full(int(lengths.sum()), self.eos_id, dtype=self._stream_dtype)
    starts = np.cumsum(lengths) - lengths
    for start, ids in zip(starts, pieces):
      stream[start:start + len(ids)] = ids
    return stream


Tokenizer = ByteTokenizer | SentencePieceTokenizer


def load_tokenizer(spec: str) -> Tokenizer:
  """The tokenizer `data.tokenizer` names: "bytes" or "spm:PATH" (local or gs://)."""
  if spec == "bytes":
    return ByteTokenizer()
  if not isinstance(spec, str) or not spec.startswith(SPM_PREFIX) or spec == SPM_PREFIX:
    raise InputError(f"data.tokenizer must be 'bytes' or 'spm:PATH', got {spec!r}")
  path = spec.removeprefix(SPM_PREFIX)
  try:
    model_proto = epath.Path(path).read_bytes()
  except (OSError, ImportError) as e:
    raise InputError(f"data.tokenizer: cannot read {path} ({e})") from None
  try:
    return SentencePieceTokenizer(model_proto, path)
  except RuntimeError as e:
    raise InputError(f"data.tokenizer: {path} is not a SentencePiece model "
                     f"({str(e).splitlines()[0]})") from None


def train_sentencepiece(documents: Iterable[bytes], *, vocab_size: int, model_type: str = "unigram",
                        max_sentences: int = 10_000_000) -> bytes:
  """Trains a SentencePiece model on `documents`; returns the serialized model.

  Documents are fed line by line (SentencePiece's unit of training text). The model keeps text exactly
  (identity normalization, whitespace kept, no dummy prefix, so decode(encode(x)) == x), falls back to
  bytes for characters outside its vocabulary (no unknown tokens), and reserves id 0 for unk and id 1
  for eos, the document separator. Sampling of lines is seeded, so the model is reproducible.
  """
  import sentencepiece as spm

  def lines() -> Iterator[str]:
    for document in documents:
      for line in document.decode("utf-8", errors="replace").splitlines():
        if line.strip():
          yield line

  spm.set_random_generator_seed(0)
  model = io.BytesIO()
  try:
    spm.SentencePieceTrainer.train(
        sentence_iterator=lines(), model_writer=model, vocab_size=vocab_size,
        model_type=model_type, byte_fallback=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=False, allow_whitespace_only_pieces=True,
        split_digits=True, unk_id=0, eos_id=1, bos_id=-1, pad_id=-1,
        max_sentence_length=_MAX_SENTENCE_BYTES, input_sentence_size=max_sentences,
        shuffle_input_sentence=True, minloglevel=2)
  except RuntimeError as e:
    raise InputError(f"--vocab-size {vocab_size}: SentencePiece training failed "
                     f"({str(e).splitlines()[-1]})") from None
  return model.getvalue()

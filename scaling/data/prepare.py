"""`scaling data prepare`: documents -> tokenized shards + a manifest, once, for `data.source=tokens:DIR`.

Format: flat little-endian token arrays (`train-00000.bin`, ...; uint8 for bytes, uint16 up to
65,536 pieces, else uint32) and manifest.json. Flat arrays, not ArrayRecord, because the reader's
unit is a window of L + 1 tokens at any offset of the split's stream (as for an in-memory stream):
with a flat array that is one byte-range read (np.memmap locally, a ranged GET on gs://), with no
record framing, index or decompression to go through; the manifest's per-shard token counts are
the index.

The two splits are written one after the other (train, then validation), each one stream of its
documents in source order, each followed by eos, cut into shards at document boundaries once a
shard holds `shard_tokens`. Every shard is written whole (a temporary file renamed, or one upload),
then progress.json records it and where the next document is; a re-run after a kill resumes there
(the same inputs) or refuses (other inputs: one line naming what differs). manifest.json is written
last and names only complete shards; a re-run on a finished DIR changes nothing.
"""

import dataclasses
import hashlib
import json
import time
import zlib
from collections.abc import Iterator

import numpy as np

from scaling import storage
from scaling.data import documents as documents_lib
from scaling.data.tokenizer import Tokenizer
from scaling.errors import InputError

MANIFEST = "manifest.json"
PROGRESS = "progress.json"
FORMAT = "scaling-tokens/1"
SPLITS = ("train", "validation")
_ENCODE_BATCH_BYTES = 1 << 22  # documents tokenized together (SentencePiece's threads share them)


@dataclasses.dataclass(frozen=True)
class Request:
  """What to prepare: every field goes into the manifest; any change means another corpus."""

  source: str  # KIND:GLOB
  text_field: str
  tokenizer: str  # bytes | spm:PATH
  validation_percent: int
  shard_tokens: int
  invalid_utf8: str


def token_dtype(vocab_size: int) -> np.dtype:
  """The narrowest unsigned integer type that holds every id."""
  for dtype in (np.uint8, np.uint16, np.uint32):
    if vocab_size <= np.iinfo(dtype).max + 1:
      return np.dtype(dtype)
  raise InputError(f"a vocabulary of {vocab_size} does not fit 32 bits")


def tokenizer_record(tokenizer: Tokenizer) -> dict:
  """The manifest's tokenizer: its identity and sha256 (of the model file; for bytes, of the
  identity, which is all there is)."""
  identity = dict(tokenizer.identity)
  if "sha256" not in identity:
    identity["sha256"] = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
  return identity


def is_validation(name: str, validation_percent: int) -> bool:
  """The text source's rule (scaling/data/corpus.py): crc32 of the document's name mod 100."""
  return zlib.crc32(name.encode("utf-8", "surrogateescape")) % 100 < validation_percent


def _identity(request: Request, tokenizer: Tokenizer, files) -> dict:
  """What must be the same for a re-run to resume (or to find DIR already prepared)."""
  return {"format": FORMAT, "source": request.source, "text_field": request.text_field,
          "tokenizer": tokenizer_record(tokenizer), "validation_percent": request.validation_percent,
          "shard_tokens": request.shard_tokens, "invalid_utf8": request.invalid_utf8,
          "dtype": token_dtype(tokenizer.vocab_size).name,
          "files": [{"name": f.name, "bytes": f.size} for f in files]}


def _difference(recorded: dict, wanted: dict) -> str | None:
  for key, value in wanted.items():
    if recorded.get(key) != value:
      if key == "tokenizer":
        return (f"the tokenizer differs (recorded {recorded[key].get('kind')} "
                f"sha256 {str(recorded[key].get('sha256'))[:12]}, now {value['kind']} "
                f"sha256 {value['sha256'][:12]})")
      if key == "files":
        return "the source files differ (names or sizes)"
      return f"{key} differs (recorded {recorded.get(key)!r}, now {value!r})"
  return None


def _split_documents(kind, files, request, split, start) -> Iterator[tuple[tuple[int, int], bytes | None]]:
  """(position after it, UTF-8 bytes, or None when the policy skips it) of each of `split`'s
  documents from position `start`; a position is (file index, documents of that file before it)."""
  held_out = split == "validation"
  for file_index in range(start[0], len(files)):
    skip = start[1] if file_index == start[0] else 0
    for offset, (name, value) in enumerate(
        documents_lib.read(kind, files[file_index], request.text_field, skip)):
      if is_validation(name, request.validation_percent) == held_out:
        where = f"{files[file_index].path} document {name}"
        yield (file_index, skip + offset + 1), documents_lib.utf8(value, where, request.invalid_utf8)


def prepare(request: Request, tokenizer: Tokenizer, out: str, *,
            progress: bool = True) -> tuple[dict, int]:
  """Writes the shards and the manifest of `request` under `out`; returns the manifest and the
  tokens this call tokenized (0: `out` was already prepared)."""
  kind, pattern = documents_lib.parse(request.source)
  files = documents_lib.list_files(pattern)
  identity = _identity(request, tokenizer, files)
  manifest_path, progress_path = storage.join(out, MANIFEST), storage.join(out, PROGRESS)
  if storage.exists(manifest_path):
    recorded = storage.read_json(manifest_path)
    reason = _difference(recorded, identity)
    if reason:
      raise InputError(f"--out {out} holds a prepared corpus of other inputs: {reason}; "
                       f"use another --out")
    return recorded, 0
  state = {**identity, "splits": {s: {"shards": [], "documents": 0, "skipped": 0} for s in SPLITS},
           "split": "train", "position": [0, 0]}
  if storage.exists(progress_path):
    recorded = storage.read_json(progress_path)
    reason = _difference(recorded, identity)
    if reason:
      raise InputError(f"--out {out} holds an unfinished prepare of other inputs: {reason}; "
                       f"run it with the same inputs to resume, or use another --out")
    state = recorded
  from tqdm import tqdm  # deferred: only prepare needs it

  bar = tqdm(unit="tok", unit_scale=True, dynamic_ncols=True, disable=not progress,
             desc="tokens")
  writer = _ShardWriter(out, state, token_dtype(tokenizer.vocab_size), progress_path)
  started = time.perf_counter()
  for split in SPLITS[SPLITS.index(state["split"]):]:
    position = tuple(state["position"]) if split == state["split"] else (0, 0)
    writer.begin(split, position)
    batch, batch_bytes = [], 0
    for position, content in _split_documents(kind, files, request, split, position):
      if content is None:
        writer.skipped += 1
        continue
      batch.append(content)
      batch_bytes += len(content)
      # Tokens are at most bytes + one eos per document: encode once the batch may fill the shard.
      if batch_bytes + len(batch) >= min(_ENCODE_BATCH_BYTES,
                                          request.shard_tokens - writer.pending_tokens):
        bar.update(writer.add(tokenizer.encode_documents(batch), len(batch)))
        batch, batch_bytes = [], 0
        if writer.pending_tokens >= request.shard_tokens:
          writer.write_shard(position)
    if batch:
      bar.update(writer.add(tokenizer.encode_documents(batch), len(batch)))
    if writer.pending_tokens:
      writer.write_shard((len(files), 0))
    state["splits"][split]["skipped"] += writer.skipped
  bar.close()
  manifest = {**identity, "splits": state["splits"],
              "documents": sum(state["splits"][s]["documents"] for s in SPLITS),
              "seconds": round(time.perf_counter() - started, 3)}
  manifest["sha256"] = corpus_sha256(manifest)
  storage.write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
  storage.remove(progress_path)
  return manifest, writer.tokenized


def corpus_sha256(manifest: dict) -> str:
  """The corpus fingerprint: every shard's sha256, in order, with the tokenizer's."""
  digest = hashlib.sha256(manifest["tokenizer"]["sha256"].encode())
  for split in SPLITS:
    for shard in manifest["splits"][split]["shards"]:
      digest.update(f"{split}:{shard['file']}:{shard['tokens']}:{shard['sha256']}".encode())
  return digest.hexdigest()


class _ShardWriter:
  """Buffers one split's token streams and writes them as whole shards, recording progress."""

  def __init__(self, out: str, state: dict, dtype: np.dtype, progress_path: str):
    self._out, self._state, self._dtype, self._progress_path = out, state, dtype, progress_path
    self.split, self.pending, self.pending_tokens, self.documents, self.skipped = None, [], 0, 0, 0
    self.tokenized = 0  # by this call, for its tokens/s

  def begin(self, split: str, position):
    self.split, self.pending, self.pending_tokens, self.documents, self.skipped = split, [], 0, 0, 0
    self._state.update(split=split, position=list(position))

  def add(self, stream_T: np.ndarray, documents: int) -> int:
    self.pending.append(stream_T)
    self.pending_tokens += stream_T.size
    self.tokenized += stream_T.size
    self.documents += documents
    return stream_T.size

  def write_shard(self, next_position):
    """The pending documents as the split's next shard, then progress.json (after the shard is
    complete: a kill between the two re-writes the same shard on resume)."""
    record = self._state["splits"][self.split]
    tokens_T = (np.concatenate(self.pending) if self.pending else np.zeros(0)).astype(
        self._dtype.newbyteorder("<"))
    data = tokens_T.tobytes()
    name = f"{self.split}-{len(record['shards']):05d}.bin"
    storage.write_bytes(storage.join(self._out, name), data)
    record["shards"].append({"file": name, "tokens": int(tokens_T.size),
                             "documents": self.documents, "sha256": hashlib.sha256(data).hexdigest()})
    record["documents"] += self.documents
    record["skipped"] += self.skipped
    self._state.update(split=self.split, position=list(next_position))
    storage.write_text(self._progress_path, json.dumps(self._state, indent=1) + "\n")
    self.pending, self.pending_tokens, self.documents, self.skipped = [], 0, 0, 0

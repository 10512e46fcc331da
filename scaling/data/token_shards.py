"""`data.source = "tokens:DIR"`: a split of a `scaling data prepare` directory as one token stream,
read by range, never whole.

Letters in shape names: T tokens, W window length (L + 1).

`TokenStream` has what `scaling.data.batches` needs of an in-memory stream (`size`, and windows by
index), so batches are built exactly as for the text source: the same windows, the same shuffle by
(seed, step), each process reading only its own rows. A window is one ranged read of the shard (or
two, across a shard boundary): np.memmap locally, a seek and read through etils.epath on gs://.
"""

import bisect
import threading

import grain
import numpy as np
from etils import epath

from scaling import storage
from scaling.data import prepare
from scaling.errors import InputError, first_line

PREFIX = "tokens:"


def is_tokens(source: str) -> bool:
  return isinstance(source, str) and source.startswith(PREFIX)


def directory(source: str) -> str:
  path = source.removeprefix(PREFIX)
  if not path:
    raise InputError("data.source=tokens:DIR needs a directory written by `scaling data prepare`")
  return path


def read_manifest(root: str) -> dict:
  """The manifest of a finished prepare, or an InputError saying what is there instead."""
  path = storage.join(root, prepare.MANIFEST)
  try:
    manifest = storage.read_json(path)
  except FileNotFoundError:
    unfinished = storage.exists(storage.join(root, prepare.PROGRESS))
    raise InputError(f"data.source=tokens:{root}: no {prepare.MANIFEST}" + (
        " (its prepare is unfinished: run it again to resume)" if unfinished else
        " (write one with `scaling data prepare`)")) from None
  except (OSError, ValueError) as e:
    raise InputError(f"{path}: unreadable ({first_line(e)})") from None
  if manifest.get("format") != prepare.FORMAT:
    raise InputError(f"{path}: format {manifest.get('format')!r}, expected {prepare.FORMAT!r}")
  return manifest


class TokenStream:
  """One split's shards end to end, as one stream of `size` tokens."""

  def __init__(self, root: str, shards: list[dict], dtype: str):
    self._root, self._dtype = root, np.dtype(dtype).newbyteorder("<")
    self._files = [shard["file"] for shard in shards]
    counts = [int(shard["tokens"]) for shard in shards]
    self._starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).tolist()
    self.size = self._starts[-1]
    self.dtype = np.dtype(dtype)
    self._maps, self._lock = {}, threading.Lock()

  def read(self, start: int, stop: int) -> np.ndarray:
    """Tokens [start, stop) of the stream."""
    parts = []
    shard = bisect.bisect_right(self._starts, start) - 1
    while start < stop:
      offset, end = start - self._starts[shard], min(stop, self._starts[shard + 1])
      parts.append(self._read_shard(shard, offset, offset + end - start))
      start, shard = end, shard + 1
    return np.concatenate(parts).astype(self.dtype) if len(parts) > 1 else parts[0].astype(self.dtype)

  def _read_shard(self, shard: int, start: int, stop: int) -> np.ndarray:
    path = storage.join(self._root, self._files[shard])
    if not storage.is_remote(path):
      with self._lock:
        if shard not in self._maps:
          self._maps[shard] = np.memmap(path, dtype=self._dtype, mode="r")
      return np.array(self._maps[shard][start:stop])
    itemsize = self._dtype.itemsize
    with epath.Path(path).open("rb") as f:
      f.seek(start * itemsize)
      return np.frombuffer(f.read((stop - start) * itemsize), dtype=self._dtype)


class Windows:
  """A grain random-access source: window i is tokens [i·W, (i + 1)·W) of the stream."""

  def __init__(self, stream: TokenStream, width: int):
    self._stream, self._width = stream, width

  def __len__(self) -> int:
    return self._stream.size // self._width

  def __getitem__(self, i: int) -> np.ndarray:
    if not 0 <= i < len(self):
      raise IndexError(i)
    return self._stream.read(i * self._width, (i + 1) * self._width)


def windows(stream: TokenStream, seq_len: int) -> grain.MapDataset:
  return grain.MapDataset.source(Windows(stream, seq_len + 1))


def open_splits(root: str) -> tuple[dict, TokenStream, TokenStream]:
  """(manifest, train stream, validation stream) of a prepared directory."""
  manifest = read_manifest(root)
  train, validation = (TokenStream(root, manifest["splits"][s]["shards"], manifest["dtype"])
                       for s in prepare.SPLITS)
  return manifest, train, validation

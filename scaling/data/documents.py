"""Documents from files a researcher already has: parquet, jsonl (plain, .gz, .zst) or text files,
local or gs://, streamed one at a time (a corpus never has to fit in memory).

A source spec is KIND:GLOB. Each document gets a name, the key of the train/validation split: a text
file is one document named by its path relative to the glob's leading directories (as
`data.source=text` names it, so both split the same files the same way); a jsonl line or parquet row
is named "PATH:INDEX". Text must be UTF-8: `invalid_utf8` says what a document that is not does
(error: one line naming it; replace: U+FFFD; skip: left out, counted).
"""

import dataclasses
import gzip
import io
import json
import os
from collections.abc import Iterator

from etils import epath

from scaling import storage
from scaling.data import sources
from scaling.errors import InputError, first_line

KINDS = ("parquet", "jsonl", "text")
POLICIES = ("error", "replace", "skip")
_GLOB_MAGIC = "*?["


@dataclasses.dataclass(frozen=True)
class SourceFile:
  name: str  # relative to the glob's root, '/'-separated
  path: str  # where to read it (local or gs://)
  size: int  # bytes on disk (compressed as stored)


def parse(spec: str) -> tuple[str, str]:
  """(kind, glob) of "KIND:GLOB", or an InputError naming --source."""
  kind, _, pattern = spec.partition(":")
  if kind not in KINDS or not pattern:
    raise InputError(f"--source must be KIND:GLOB with KIND one of {', '.join(KINDS)}, got {spec!r}")
  return kind, pattern


def list_files(pattern: str) -> list[SourceFile]:
  """The files matching `pattern` (local or gs://, `**` recursive), sorted by relative name."""
  if not storage.is_remote(pattern):
    root, names = sources.glob_files(pattern)
    return [SourceFile(n, os.path.join(root, n), os.path.getsize(os.path.join(root, n)))
            for n in names]
  parts = pattern.split("/")
  literal = next((i for i, part in enumerate(parts) if any(c in part for c in _GLOB_MAGIC)),
                 len(parts) - 1)
  root = "/".join(parts[:literal])
  rest = "/".join(parts[literal:])
  try:
    paths = sorted(p for p in epath.Path(root).glob(rest) if p.is_file())
  except OSError as e:
    raise InputError(f"--source {pattern}: cannot list ({first_line(e)})") from None
  if not paths:
    raise InputError(f"--source: no files match {pattern!r}")
  files = []
  for path in paths:
    name = os.fspath(path)[len(root):].lstrip("/")
    files.append(SourceFile(name, os.fspath(path), path.stat().length))
  return files


def utf8(value, where: str, policy: str) -> bytes | None:
  """`value` (str or bytes) as UTF-8 bytes under `policy`; None: skip it."""
  try:
    if isinstance(value, str):
      return value.encode("utf-8")
    value.decode("utf-8")
    return value
  except UnicodeError:
    if policy == "error":
      raise InputError(f"{where}: not valid UTF-8 (--invalid-utf8 replace or skip to go on)"
                       ) from None
    if policy == "skip":
      return None
    if isinstance(value, str):  # undecodable bytes read as lone surrogates: those bytes again
      try:
        value = value.encode("utf-8", "surrogateescape")
      except UnicodeError:  # a surrogate escaped in the JSON text itself ("\ud800")
        value = value.encode("utf-8", "surrogatepass")
    return value.decode("utf-8", "replace").encode("utf-8")


def _open(path: str):
  raw = epath.Path(path).open("rb")
  if path.endswith(".gz"):
    return gzip.GzipFile(fileobj=raw)
  if path.endswith(".zst"):
    import zstandard

    return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
  return raw


def read(kind: str, file: SourceFile, text_field: str, skip: int = 0
         ) -> Iterator[tuple[str, object]]:
  """(name, str | bytes) of each document of `file`, from the `skip`-th on (the split's key and the
  document before the UTF-8 policy)."""
  try:
    if kind == "text":
      if not skip:
        yield file.name, epath.Path(file.path).read_bytes()
    elif kind == "jsonl":
      yield from _jsonl(file, text_field, skip)
    else:
      yield from _parquet(file, text_field, skip)
  except (OSError, EOFError) as e:
    raise InputError(f"{file.path}: cannot read ({first_line(e)})") from None


def _jsonl(file: SourceFile, text_field: str, skip: int):
  with _open(file.path) as f:
    index = 0
    for line_number, line in enumerate(f, 1):
      if not line.strip():
        continue
      if index >= skip:
        where = f"{file.path} line {line_number}"
        try:  # bytes that are not UTF-8 become lone surrogates, which `utf8` then judges
          record = json.loads(line.decode("utf-8", "surrogateescape"))
        except ValueError as e:
          raise InputError(f"{where}: not JSON ({first_line(e)})") from None
        if not isinstance(record, dict) or text_field not in record:
          raise InputError(f"{where}: no {text_field!r} field (--text-field names it)")
        if not isinstance(record[text_field], str):
          raise InputError(f"{where}: {text_field!r} is not a string")
        yield f"{file.name}:{index}", record[text_field]
      index += 1


def _parquet(file: SourceFile, text_field: str, skip: int):
  import pyarrow.parquet as pq

  with epath.Path(file.path).open("rb") as raw:
    try:
      parquet = pq.ParquetFile(raw)
    except Exception as e:  # noqa: BLE001  pyarrow raises its own error types
      raise InputError(f"{file.path}: not a parquet file ({first_line(e)})") from None
    if text_field not in parquet.schema_arrow.names:
      raise InputError(f"{file.path}: no {text_field!r} column (columns: "
                       f"{', '.join(parquet.schema_arrow.names)}; --text-field names it)")
    index = 0
    for batch in parquet.iter_batches(batch_size=1024, columns=[text_field]):
      values = batch.column(0).to_pylist()
      for value in values:
        if index >= skip:
          if not isinstance(value, (str, bytes)):
            raise InputError(f"{file.path} row {index}: {text_field!r} is {value!r}, not text")
          yield f"{file.name}:{index}", value
        index += 1

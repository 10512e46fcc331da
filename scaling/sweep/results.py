"""results.csv: one row per finished run of a sweep, the points a scaling-law fit reads.

Its columns are documented with the sweep directory's layout (docs/sweeps.md). The file is parsed
by `rows` alone, here and by `scaling fit` (scaling/fit/points.py), so a value it lacks means one
thing: where a run may not know it (a run that logged no `bpb`, a file older than a column), it
is unknown, written blank and read as None (an older file's seed as the default 0, its trunk as
none); anywhere else it is an InputError naming the file and line, never a number no run had.
"""

import csv
import io

from scaling import rundir, storage
from scaling.errors import InputError

COLUMNS = ("name", "params", "params_non_embedding", "tokens", "flops", "flops_kaplan", "loss",
           "budget", "seed", "bpb", "trunk", "learning_rate", "batch_size")
_TYPES = {"name": str, "params": int, "params_non_embedding": int, "tokens": int, "flops": float,
          "flops_kaplan": float, "loss": float, "budget": float, "seed": int, "bpb": float,
          "trunk": str, "learning_rate": float, "batch_size": int}
# What a blank cell means, in the columns that may hold one: a run trained alone has no trunk;
# one that logged no eval_bpb (or whose config was not recorded) has the value unknown.
_BLANK = {"trunk": "", "bpb": None, "learning_rate": None, "batch_size": None}
# What a column means in a file written before it existed.
_ABSENT = {**_BLANK, "seed": 0}


def write(path: str, rows: list[dict]) -> None:
  """Replaces `path` whole (local or gs://), so a sweep killed mid-write keeps the previous file.

  A value a row lacks is written blank where `read` reads a blank back (`_BLANK`); elsewhere it
  is a ValueError, as `read` would refuse the file."""
  with io.StringIO(newline="") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
      missing = [key for key in COLUMNS if key not in _BLANK and row.get(key) in (None, "")]
      if missing:
        raise ValueError(f"results row {row.get('name')!r} has no {', '.join(missing)}")
      writer.writerow({key: row.get(key) for key in COLUMNS})  # None: blank
    storage.write_text(path, f.getvalue())


def read(path: str) -> list[dict]:
  """The rows of a results.csv (or of DIR/results.csv for a sweep directory), typed."""
  if storage.is_dir(path):
    path = rundir.SweepDir(path).results_file
  header, lines = rows(path, [key for key in COLUMNS if key not in _ABSENT])
  absent = {key: _ABSENT[key] for key in COLUMNS if key not in header}
  return [{key: absent[key] if key in absent else _value(f"{path} line {line}", key, row[key])
           for key in COLUMNS} for line, row in lines]


def rows(path: str, required=()) -> tuple[list[str], list[tuple[int, dict]]]:
  """(header, [(line, {column: text})]) of a CSV file, local or gs://: results.csv, or any CSV of
  points `scaling fit` reads. A byte-order mark is skipped and column names are stripped; a row
  short of cells has None in the rest. An empty file, a JSON one or one without the `required`
  columns is an InputError."""
  with io.StringIO(storage.read_text(path).removeprefix("\ufeff"), newline="") as f:
    reader = csv.DictReader(f)
    if not reader.fieldnames:
      raise InputError(f"{path}: empty file")
    reader.fieldnames = header = [name.strip() for name in reader.fieldnames]
    if header[0].startswith(("{", "[")):
      raise InputError(f"{path}: not a CSV file: it reads as JSON (a metrics.jsonl belongs to a "
                       "run directory; pass the directory)")
    missing = [key for key in required if key not in header]
    if missing:
      raise InputError(f"{path}: missing column{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(map(repr, missing))}")
    return header, [(reader.line_num, row) for row in reader]


def _value(where: str, key: str, text: str | None):
  if not text:
    if key in _BLANK:
      return _BLANK[key]
    raise InputError(f"{where}: {key} is missing")
  try:
    return _TYPES[key](text)
  except ValueError:
    kind = "an integer" if _TYPES[key] is int else "a number"
    raise InputError(f"{where}: {key} {text!r} is not {kind}") from None

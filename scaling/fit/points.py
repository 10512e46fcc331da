"""Points to fit, read from a CSV file, a run directory or a sweep directory.

- CSV (.csv, .txt or no suffix): a header row; `params`, `tokens`, `loss` (and `flops` for
  isoflop/envelope); a `budget` column groups isoFLOP rows by nominal budget; a `seed` column (any
  labels) marks replicate runs; other columns are ignored.
- Run directory (written by `scaling train`): run.json and metrics.jsonl. The points are its eval
  rows, a training curve: params from run.json, tokens and flops from the row, loss = eval_loss.
- Sweep directory (written by `scaling sweep`): results.csv, one row per finished run (its final
  eval loss), plus one run directory per run. `curves=True` reads every run's eval rows instead,
  which is what the envelope approach needs.

Which column is N is the caller's choice: `params` (all parameters, as Hoffmann et al. 2022 count)
or `params_non_embedding` (Kaplan et al. 2020's N). Every value read must be finite and positive;
anything else is an InputError naming the file, the line and the column.
"""

import csv
import json
import os
import sys
from collections.abc import Sequence

import numpy as np

from scaling.errors import InputError

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.csv"
_RUN_KEYS = ("params", "params_non_embedding")  # run.json values, the same for every eval row
_ROW_KEYS = {"tokens": "tokens", "flops": "flops", "flops_kaplan": "flops_kaplan", "loss": "eval_loss"}
LABELS = ("seed",)  # columns read as labels (any text), not as positive numbers
CSV_SUFFIXES = ("", ".csv", ".txt")


def warn(message: str) -> None:
  """One line on stderr: the data were usable, but not all of it or not as asked."""
  print(f"warning: {message}", file=sys.stderr)


def _number(where: str, column: str, value) -> float:
  try:
    number = float(value)
  except (TypeError, ValueError):
    raise InputError(f"{where}: {column} {value!r} is not a number") from None
  if not np.isfinite(number):
    raise InputError(f"{where}: {column} is {number}")
  if number <= 0:
    raise InputError(f"{where}: {column} must be positive, got {value}")
  return number


def _read_csv(path: str, columns: Sequence[str], optional: Sequence[str], curves: bool) -> dict:
  with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: tolerate a byte-order mark
    reader = csv.DictReader(f)
    header = reader.fieldnames
    if not header:
      raise InputError(f"{path}: empty file")
    header = [name.strip() for name in header]
    if header[0].startswith(("{", "[")):
      raise InputError(f"{path}: not a CSV file: it reads as JSON (a metrics.jsonl belongs to a run "
                       f"directory; pass the directory)")
    reader.fieldnames = header
    missing = [c for c in columns if c not in header]
    if missing:
      raise InputError(f"{path}: missing column{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(map(repr, missing))}")
    wanted = list(columns) + [c for c in optional if c in header and c not in columns]
    values = {c: [] for c in wanted}
    names = []
    for row in reader:
      for c in wanted:
        values[c].append(row[c] if c in LABELS else
                         _number(f"{path} line {reader.line_num}", c, row[c]))
      names.append(row.get("name"))
  if not names:
    raise InputError(f"{path}: no data rows")
  table = {c: np.array(v, dtype=object if c in LABELS else np.float64) for c, v in values.items()}
  if curves:
    # A curve is a run: the `name` column when there is one, else the N column (one run per size).
    keys = names if "name" in header else table[columns[0]]
    table["run"] = np.unique(np.asarray(keys), return_inverse=True)[1]
  return table


def _read_run(run_dir: str, columns: Sequence[str]) -> dict:
  """The eval rows of one run directory. A cut-off last line (a crash mid-write) is skipped."""
  run_path, metrics_path = os.path.join(run_dir, RUN_FILE), os.path.join(run_dir, METRICS_FILE)
  try:
    with open(run_path, encoding="utf-8") as f:
      run = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise InputError(f"{run_path}: unreadable ({e})") from None
  if not isinstance(run, dict):
    raise InputError(f"{run_path}: expected a JSON object")
  for key in (c for c in columns if c in _RUN_KEYS):
    if key not in run:
      raise InputError(f"{run_path}: missing {key!r}")
  with open(metrics_path, encoding="utf-8") as f:
    lines = f.read().splitlines()
  values = {c: [] for c in columns}
  for number, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError:
      if number == len(lines):
        warn(f"{metrics_path} line {number}: skipping a cut-off last line (a crash mid-write?)")
        continue
      raise InputError(f"{metrics_path} line {number}: not valid JSON") from None
    if not isinstance(row, dict) or "eval_loss" not in row:
      continue
    where = f"{metrics_path} line {number}"
    for c in columns:
      if c in _RUN_KEYS:
        values[c].append(_number(run_path, c, run[c]))
      elif _ROW_KEYS.get(c) in row:
        values[c].append(_number(where, c, row[_ROW_KEYS[c]]))
      else:
        raise InputError(f"{where}: eval row has no {_ROW_KEYS.get(c, c)!r}")
  if not values[columns[0]]:
    raise InputError(f"{metrics_path}: no eval rows (rows with eval_loss)")
  return {c: np.array(v, dtype=np.float64) for c, v in values.items()}


def _read_sweep_curves(sweep_dir: str, columns: Sequence[str]) -> dict:
  """Eval rows of every run directory of a sweep (in DIR/runs/, where `scaling sweep` puts them,
  or directly in DIR), with a `run` index per row."""
  tables = []
  runs_dir = os.path.join(sweep_dir, "runs")
  parent = runs_dir if os.path.isdir(runs_dir) else sweep_dir
  for name in sorted(os.listdir(parent)):
    run_dir = os.path.join(parent, name)
    if not os.path.isfile(os.path.join(run_dir, RUN_FILE)):
      continue
    if not os.path.isfile(os.path.join(run_dir, METRICS_FILE)):
      warn(f"{run_dir}: no {METRICS_FILE}; run skipped")
      continue
    table = _read_run(run_dir, columns)
    table["run"] = np.full(table[columns[0]].size, len(tables))
    tables.append(table)
  if not tables:
    raise InputError(f"{sweep_dir}: no run directories (with {RUN_FILE} and {METRICS_FILE})")
  return {c: np.concatenate([t[c] for t in tables]) for c in tables[0]}


def read(path: str, columns: Sequence[str], *, optional: Sequence[str] = ("budget",),
         curves: bool = False) -> dict[str, np.ndarray]:
  """Columns (name -> float64 array) of the points at `path`: a CSV file, a run or a sweep
  directory. `optional` columns are returned when present. `curves=True` wants training curves
  and adds a `run` column: every run's eval rows for a sweep; for a CSV, rows grouped by `name`,
  else by the first column asked for."""
  if os.path.isdir(path):
    if os.path.isfile(os.path.join(path, RESULTS_FILE)):
      if curves:
        return _read_sweep_curves(path, columns)
      return _read_csv(os.path.join(path, RESULTS_FILE), columns, optional, curves=False)
    if os.path.isfile(os.path.join(path, RUN_FILE)):
      if not os.path.isfile(os.path.join(path, METRICS_FILE)):
        raise InputError(f"{path}: run directory without {METRICS_FILE}")
      table = _read_run(path, columns)
      if curves:
        table["run"] = np.zeros(table[columns[0]].size, dtype=np.int64)
      return table
    raise InputError(f"{path}: neither a sweep directory ({RESULTS_FILE}) nor a run directory "
                     f"({RUN_FILE}, {METRICS_FILE})")
  if not os.path.isfile(path):
    raise InputError(f"{path}: no such file or directory")
  suffix = os.path.splitext(path)[1].lower()
  if suffix not in CSV_SUFFIXES:
    hint = (" (a metrics.jsonl belongs to a run directory: pass the directory)"
            if suffix in (".jsonl", ".json") else "")
    raise InputError(f"{path}: expected a CSV file, a run directory or a sweep directory, got a "
                     f"{suffix} file{hint}")
  try:
    return _read_csv(path, columns, optional, curves)
  except UnicodeDecodeError:
    raise InputError(f"{path}: not a text CSV file (it is not UTF-8)") from None

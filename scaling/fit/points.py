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
anything else is an InputError naming the file, the line and the column. Paths are local or gs://
(scaling.rundir reads them).
"""

import os
import sys
import warnings
from collections.abc import Sequence

import numpy as np

from scaling import checks, rundir, storage
from scaling.errors import InputError
from scaling.rundir import METRICS_FILE, RESULTS_FILE, RUN_FILE
from scaling.sweep import results
_RUN_KEYS = ("params", "params_non_embedding")  # run.json values, the same for every eval row
_ROW_KEYS = {"tokens": "tokens", "flops": "flops", "flops_kaplan": "flops_kaplan", "loss": "eval_loss",
             "bpb": "eval_bpb"}
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
  if not np.isfinite(number):  # "nan", "inf" parse as floats: a CSV cell says which it was
    raise InputError(f"{where}: {column} is {number}")
  return checks.number(number, f"{where}: {column}", above=0)


def _read_csv(path: str, columns: Sequence[str], optional: Sequence[str], curves: bool) -> dict:
  header, rows = results.rows(path, columns)
  wanted = list(columns) + [c for c in optional if c in header and c not in columns]
  values = {c: [] for c in wanted}
  names = []
  for line, row in rows:
    for c in wanted:
      values[c].append(row[c] if c in LABELS else _number(f"{path} line {line}", c, row[c]))
    names.append(row.get("name"))
  if not names:
    raise InputError(f"{path}: no data rows")
  table = {c: np.array(v, dtype=object if c in LABELS else np.float64) for c, v in values.items()}
  if curves:
    # A curve is a run: the `name` column when there is one, else the N column (one run per size).
    keys = names if "name" in header else table[columns[0]]
    table["run"] = np.unique(np.asarray(keys), return_inverse=True)[1]
  return table


def read_metrics(run: rundir.RunDir) -> list[dict]:
  """A run's metrics rows (those of a run still training too); a cut-off last line (a crash
  mid-write) is skipped with a one-line warning, a garbled line before it is an InputError."""
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    rows = run.read_metrics(strict=True)
  for warning in caught:
    warn(str(warning.message))
  return rows


def _read_run(run_dir: str, columns: Sequence[str]) -> dict:
  """The eval rows of one run directory."""
  run_files = rundir.RunDir(run_dir)
  run_path, metrics_path = run_files.run_file, run_files.metrics_file
  run = run_files.record()
  run.needs(*(c for c in columns if c in _RUN_KEYS))
  values = {c: [] for c in columns}
  for row in read_metrics(run_files):
    if "eval_loss" not in row:
      continue
    where = f"{metrics_path} step {row.get('step')}"
    for c in columns:
      if c in _RUN_KEYS:
        values[c].append(_number(run_path, c, run.get(c)))
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
  for run in rundir.SweepDir(sweep_dir).run_dirs():
    if not run.has_metrics():
      warn(f"{run.root}: no {METRICS_FILE}; run skipped")
      continue
    table = _read_run(run.root, columns)
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
  if storage.is_remote(path):
    storage.check_readable(path, "--data")
  if storage.is_dir(path):
    sweep, run = rundir.SweepDir(path), rundir.RunDir(path)
    if sweep.is_sweep():
      if curves:
        return _read_sweep_curves(path, columns)
      return _read_csv(sweep.results_file, columns, optional, curves=False)
    if run.has_run():
      if not run.has_metrics():
        raise InputError(f"{path}: run directory without {METRICS_FILE}")
      table = _read_run(path, columns)
      if curves:
        table["run"] = np.zeros(table[columns[0]].size, dtype=np.int64)
      return table
    raise InputError(f"{path}: neither a sweep directory ({RESULTS_FILE}) nor a run directory "
                     f"({RUN_FILE}, {METRICS_FILE})")
  if not storage.exists(path):
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

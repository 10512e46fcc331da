"""What the figures read: training curves from run directories, final points from results.csv.

A sweep directory (`scaling sweep`) holds results.csv and one run directory per run under
`runs/` (run directories directly inside the sweep directory are found too); a run directory
(`scaling train`) holds run.json and metrics.jsonl. Both are read through scaling.rundir (local
or gs://), which skips a cut-off last line with a warning. Final points go through the fitter's
`points.read`, which checks every value.

Shapes: P points (runs of a sweep), T logged rows of one run.
"""

import dataclasses

import numpy as np

from scaling import rundir, storage
from scaling.errors import InputError
from scaling.fit import points
from scaling.rundir import METRICS_FILE, RESULTS_FILE, RUN_FILE


@dataclasses.dataclass(frozen=True)
class Curve:
  """One run's training curve: the train loss at each logged row, and its last eval loss."""

  name: str
  params: float  # the N column the caller asked for (all parameters, or non-embedding)
  flops_T: np.ndarray
  loss_T: np.ndarray
  final_flops: float | None  # where the last eval happened, and its loss (None: no eval row)
  final_eval_loss: float | None


def is_run_dir(path: str) -> bool:
  return rundir.RunDir(path).has_run()


def is_sweep_dir(path: str) -> bool:
  return rundir.SweepDir(path).is_sweep()


def check_path(path: str) -> None:
  """A path the figures can read: a sweep directory, a run directory or a CSV of points."""
  if storage.is_remote(path):
    storage.check_readable(path, "scaling plot")
  if not storage.exists(path):
    raise InputError(f"{path}: no such file or directory")
  if storage.is_dir(path) and not (is_sweep_dir(path) or is_run_dir(path)):
    raise InputError(f"{path}: neither a sweep directory ({RESULTS_FILE}) nor a run directory "
                     f"({RUN_FILE}, {METRICS_FILE})")


def run_dirs(path: str) -> list[str]:
  """The run directories of a sweep (under runs/ or directly inside), or [path] for a run."""
  if is_run_dir(path):
    return [path]
  return [run.root for run in rundir.SweepDir(path).run_dirs()]


def read_curve(run_dir: str, *, flops_column: str = "flops", n_column: str = "params") -> Curve:
  """The train-loss curve of one run against `flops_column` FLOPs."""
  run_files = rundir.RunDir(run_dir)
  run = run_files.record()
  run.needs(n_column)
  metrics_path = run_files.metrics_file
  if not run_files.has_metrics():
    raise InputError(f"{run_dir}: run directory without {METRICS_FILE}")
  rows = [row for row in run_files.read_metrics()
          if isinstance(row.get(flops_column), (int, float)) and row[flops_column] > 0]
  train = [row for row in rows if isinstance(row.get("loss"), (int, float))
           and np.isfinite(row["loss"])]
  evals = [row for row in rows if isinstance(row.get("eval_loss"), (int, float))]
  if not train:
    raise InputError(f"{metrics_path}: no rows with a finite loss and positive {flops_column!r}")
  return Curve(name=run_files.name, params=float(run.get(n_column)),
               flops_T=np.array([row[flops_column] for row in train], dtype=np.float64),
               loss_T=np.array([row["loss"] for row in train], dtype=np.float64),
               final_flops=float(evals[-1][flops_column]) if evals else None,
               final_eval_loss=float(evals[-1]["eval_loss"]) if evals else None)


def read_curves(path: str, *, flops_column: str = "flops", n_column: str = "params") -> list[Curve]:
  """Every run's curve under a sweep or run directory; runs without metrics are skipped (warned)."""
  curves = []
  for run_dir in run_dirs(path):
    if not rundir.RunDir(run_dir).has_metrics():
      points.warn(f"{run_dir}: no {METRICS_FILE} yet; run skipped")
      continue
    curves.append(read_curve(run_dir, flops_column=flops_column, n_column=n_column))
  return curves


def final_points(path: str, columns: list[str], optional=()) -> dict[str, np.ndarray]:
  """results.csv of a sweep (or a CSV of points) as float64 columns; `budget` and the `optional`
  columns when present."""
  if storage.is_dir(path) and not is_sweep_dir(path):
    raise InputError(f"{path}: no {RESULTS_FILE}")
  return points.read(path, columns, optional=("budget", *optional))


def budget_groups(table: dict[str, np.ndarray], n_column: str, flops_column: str) -> dict:
  """Budget -> number of distinct sizes: the nominal `budget` column, else equal FLOPs."""
  budget_P = table["budget"] if "budget" in table else table[flops_column]
  return {float(b): np.unique(table[n_column][budget_P == b]).size for b in np.unique(budget_P)}

"""Where a run and a sweep keep their files: the layout, the records in it, the metrics files.

A run directory (`scaling train --workdir D`):
  D/run.json              the resolved config and what the run is (written whole, by process 0)
  D/metrics.jsonl         one JSON object per logged step: every row once the run has ended
  D/metrics/F-L.jsonl     rows of steps F..L of a run still training on an object store
  D/checkpoints/          orbax checkpoints, written by every process
  D/tensorboard/          TensorBoard event files
A sweep directory (`scaling sweep --workdir S`): S/plan.json, S/results.csv, S/runs/NAME/ (one run
directory per run), S/figures/, S/compile_cache/.

Reads and writes go through scaling/storage.py (local or gs://, each file written whole). GCS has
no append, and takes about one write per second to one object, so metrics rows of a run still
training on GCS go to immutable chunk objects (`metrics/`), folded into metrics.jsonl when the run
ends; readers read metrics.jsonl and the chunks together, so they see a live run too.

The interface (paths are strings, local or gs://; this module imports no JAX):
  RunDir(root): run_file, metrics_file, metrics_chunks, checkpoints, tensorboard, name; has_run(),
    has_metrics(), record() (run.json as a records.RunRecord), read_run() (its JSON),
    write_run(record), read_metrics(strict=), metrics_writer(resume_step=)
  SweepDir(root): plan_file, results_file, runs_dir, figures, compile_cache; is_sweep(), has_plan(),
    read_plan() / write_plan(record) (plan.json as a records.PlanRecord), run(name), run_dirs()
  owner(path): the run or sweep directory whose own file `path` is.
"""

import json
import os
import sys
import time
import warnings

from etils import epath

from scaling import storage
from scaling.errors import InputError
from scaling.records import PlanRecord, RunRecord

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
METRICS_CHUNKS_DIR = "metrics"
CHECKPOINTS_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
PLAN_FILE = "plan.json"
RESULTS_FILE = "results.csv"
RUNS_DIR = "runs"
FIGURES_DIR = "figures"
COMPILE_CACHE_DIR = "compile_cache"
STATUS_FILE = "status.json"  # a run's last known state (scaling/train/runstate.py)
LEASE_PREFIX = "lease."  # lease.GENERATION: who trains the run now (runstate.py)
# How often a run on an object store writes its new metrics rows (also at every checkpoint and at
# the end): far below GCS's per-object limit, and each chunk is a new object written once.
CHUNK_SECONDS = 10.0


# What a run or sweep directory owns: files directly in it, and everything below these folders.
OWNED_FILES = (RUN_FILE, METRICS_FILE, PLAN_FILE, RESULTS_FILE, STATUS_FILE)
OWNED_PREFIXES = (LEASE_PREFIX,)
OWNED_DIRS = (METRICS_CHUNKS_DIR, CHECKPOINTS_DIR, TENSORBOARD_DIR, RUNS_DIR, COMPILE_CACHE_DIR,
              "wandb")


def _holds_run_or_sweep(directory: str) -> bool:
  return any(storage.exists(storage.join(directory, name)) for name in OWNED_FILES)


def owner(path) -> str | None:
  """The run or sweep directory whose own file `path` is (run.json, metrics.jsonl, results.csv,
  plan.json, status.json, a lease, anything under checkpoints/, runs/, ...), or None: what a
  command writing a file of the user's choice (`scaling fit --out`) must never replace."""
  child = storage.absolute(path)
  directory = storage.parent(child)
  inside = False  # whether `child` is a folder above `path`
  while directory != child and not directory.endswith("://"):  # up to / or the bucket
    name = epath.Path(child).name
    owned = (name in OWNED_DIRS if inside else
             name in OWNED_FILES or name.startswith(OWNED_PREFIXES))
    if owned and _holds_run_or_sweep(directory):
      return directory
    child, directory, inside = directory, storage.parent(directory), True
  return None


def _read_json_file(path: str):
  """A run's or sweep's own JSON file, parsed; unreadable is an InputError naming it."""
  try:
    return storage.read_json(path)
  except (OSError, ValueError) as e:
    raise InputError(f"{path}: unreadable ({e})") from None


class SkippedLine(UserWarning):
  """A metrics line a reader skipped (cut off mid-write, or garbled). Shown as one
  `warning: FILE line N: ...` line on stderr wherever it is not caught: never Python's warning
  format, which names this module's source line instead of the file that has the bad line."""


def _show_warning(message, category, filename, lineno, file=None, line=None):
  if issubclass(category, SkippedLine):
    print(f"warning: {message}", file=file or sys.stderr)
  else:
    _show_other_warning(message, category, filename, lineno, file, line)


_show_other_warning = warnings.showwarning
warnings.showwarning = _show_warning


def _parse_rows(where: str, text: str, strict: bool) -> list[dict]:
  """The JSON objects of a JSON-lines text; a cut-off last line (a crash mid-write) is skipped with
  a warning. A bad line before the last is an InputError when `strict`, else skipped and warned."""
  lines = text.splitlines()
  rows = []
  for number, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError:
      if number == len(lines):
        warnings.warn(f"{where} line {number}: skipping a cut-off last line (an incomplete line: "
                      "a crash mid-write?)", SkippedLine)
        continue
      if strict:
        raise InputError(f"{where} line {number}: not valid JSON") from None
      warnings.warn(f"{where} line {number}: skipping an incomplete line", SkippedLine)
      continue
    if isinstance(row, dict):
      rows.append(row)
  return rows


def rows_text(rows: list[dict]) -> str:
  return "".join(json.dumps(row) + "\n" for row in rows)


class RunDir:
  """One run directory: its paths (strings, local or gs://) and its files' reads and writes."""

  def __init__(self, root):
    self.root = os.fspath(root)

  def __repr__(self) -> str:
    return f"RunDir({self.root!r})"

  @property
  def name(self) -> str:
    return epath.Path(self.root).name

  @property
  def run_file(self) -> str:
    return storage.join(self.root, RUN_FILE)

  @property
  def metrics_file(self) -> str:
    return storage.join(self.root, METRICS_FILE)

  @property
  def metrics_chunks(self) -> str:
    return storage.join(self.root, METRICS_CHUNKS_DIR)

  @property
  def checkpoints(self) -> str:
    return storage.join(self.root, CHECKPOINTS_DIR)

  @property
  def tensorboard(self) -> str:
    return storage.join(self.root, TENSORBOARD_DIR)

  def has_run(self) -> bool:
    """Whether run.json is there, i.e. a run has started here."""
    return storage.exists(self.run_file)

  def has_metrics(self) -> bool:
    return storage.exists(self.metrics_file) or bool(self.chunk_names())

  def record(self) -> RunRecord:
    """run.json, typed; unreadable, not an object or a key of the wrong type is an InputError
    naming the file."""
    return RunRecord.from_json(_read_json_file(self.run_file), self.run_file)

  def read_run(self) -> dict:
    """run.json as a dict (the record's JSON)."""
    return self.record().to_json()

  def write_run(self, run: RunRecord | dict) -> None:
    storage.write_json(self.run_file, run.to_json() if isinstance(run, RunRecord) else run)

  def chunk_names(self) -> list[str]:
    """The metrics chunk objects of a run still training (or cut off) on an object store."""
    return [name for name in storage.list_names(self.metrics_chunks) if name.endswith(".jsonl")]

  def read_metrics(self, *, strict: bool = False) -> list[dict]:
    """Every logged row, in step order: metrics.jsonl and the chunks of a run still training.

    A step logged twice (rows of an attempt that was cut off, then recomputed) is listed once,
    with its latest value. `strict`: a garbled line other than a cut-off last one is an InputError.
    """
    by_step = {}
    sources = [self.metrics_file] + [storage.join(self.metrics_chunks, n) for n in self.chunk_names()]
    for source in sources:
      try:
        text = storage.read_text(source)
      except FileNotFoundError:
        continue  # no metrics.jsonl yet, or a chunk folded in since it was listed
      for row in _parse_rows(source, text, strict):
        by_step[row.get("step")] = row
    return sorted(by_step.values(), key=lambda row: row.get("step") or 0)

  def metrics_writer(self, *, resume_step: int) -> "MetricsWriter":
    return MetricsWriter(self, resume_step=resume_step)


class MetricsWriter:
  """Process 0's metrics rows: appended to metrics.jsonl on a local disk, in chunks on GCS.

  On resume, rows past the restored step are dropped (they are recomputed), so none is doubled.
  On an object store the new rows are buffered and written as a new chunk object every
  CHUNK_SECONDS, at `flush()` (the trainer calls it at each checkpoint) and at `close()`, which
  writes metrics.jsonl whole, every row, and deletes the chunks.
  """

  def __init__(self, run: RunDir, *, resume_step: int):
    self._run = run
    self._remote = storage.is_remote(run.root)
    previous = run.read_metrics()
    self._rows = [row for row in previous if row.get("step", 0) <= resume_step]
    self._pending: list[dict] = []
    self._chunks: list[str] = []
    self._last_chunk = time.monotonic()
    stale = self._rows != previous or bool(run.chunk_names())
    if not stale and not self._remote and storage.exists(run.metrics_file):  # a cut-off last line?
      stale = storage.read_text(run.metrics_file) != rows_text(self._rows)
    if stale:
      storage.write_text(run.metrics_file, rows_text(self._rows))
      for name in run.chunk_names():  # folded into metrics.jsonl above, or past the resume step
        storage.remove(storage.join(run.metrics_chunks, name))
    self._file = None
    if not self._remote:
      epath.Path(run.root).mkdir(parents=True, exist_ok=True)
      self._file = open(run.metrics_file, "a", encoding="utf-8")

  def write(self, row: dict) -> None:
    self._rows.append(row)
    if self._file is not None:
      self._file.write(json.dumps(row) + "\n")
      self._file.flush()
      return
    self._pending.append(row)
    if time.monotonic() - self._last_chunk >= CHUNK_SECONDS:
      self.flush()

  def flush(self) -> None:
    """Makes every row written so far readable (a new chunk object on GCS)."""
    if self._file is not None or not self._pending:
      return
    first, last = self._pending[0].get("step", 0), self._pending[-1].get("step", 0)
    chunk = storage.join(self._run.metrics_chunks, f"{first:010d}-{last:010d}.jsonl")
    storage.write_text(chunk, rows_text(self._pending))
    self._chunks.append(chunk)
    self._pending = []
    self._last_chunk = time.monotonic()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      return
    storage.write_text(self._run.metrics_file, rows_text(self._rows))
    for chunk in self._chunks:
      storage.remove(chunk)
    self._pending, self._chunks = [], []


class SweepDir:
  """One sweep directory: plan.json, results.csv, its run directories, figures/."""

  def __init__(self, root):
    self.root = os.fspath(root)

  @property
  def plan_file(self) -> str:
    return storage.join(self.root, PLAN_FILE)

  @property
  def results_file(self) -> str:
    return storage.join(self.root, RESULTS_FILE)

  @property
  def runs_dir(self) -> str:
    return storage.join(self.root, RUNS_DIR)

  @property
  def figures(self) -> str:
    return storage.join(self.root, FIGURES_DIR)

  @property
  def compile_cache(self) -> str:
    return storage.join(self.root, COMPILE_CACHE_DIR)

  def is_sweep(self) -> bool:
    return storage.exists(self.results_file)

  def has_plan(self) -> bool:
    return storage.exists(self.plan_file)

  def read_plan(self) -> PlanRecord:
    """plan.json, typed; unreadable, not an object, a key of the wrong type or a run entry without
    name, workdir, config or steps is an InputError naming the file."""
    return PlanRecord.from_json(_read_json_file(self.plan_file), self.plan_file)

  def write_plan(self, plan: PlanRecord) -> None:
    storage.write_json(self.plan_file, plan.to_json())

  def run(self, name: str) -> RunDir:
    """Where `scaling sweep` puts run `name`."""
    return RunDir(storage.join(self.runs_dir, name))

  def run_dirs(self) -> list[RunDir]:
    """Run directories (with run.json) under runs/, then directly inside the sweep directory."""
    found = []
    for parent in (self.runs_dir, self.root):
      for name in storage.list_names(parent):
        candidate = RunDir(storage.join(parent, name))
        if candidate.has_run():
          found.append(candidate)
    return found


def read_metrics(workdir, *, strict: bool = False) -> list[dict]:
  """`RunDir(workdir).read_metrics()`: every logged row of the run in `workdir`, in step order."""
  return RunDir(workdir).read_metrics(strict=strict)

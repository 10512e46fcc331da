"""Where a run and a sweep keep their files, and every read and write of them, local or gs://.

A run directory (`scaling train --workdir D`):
  D/run.json              the resolved config and what the run is (written whole, by process 0)
  D/metrics.jsonl         one JSON object per logged step: every row once the run has ended
  D/metrics/F-L.jsonl     rows of steps F..L of a run still training on an object store
  D/checkpoints/          orbax checkpoints, written by every process
  D/tensorboard/          TensorBoard event files
A sweep directory (`scaling sweep --workdir S`): S/plan.json, S/results.csv, S/runs/NAME/ (one run
directory per run), S/figures/, S/compile_cache/.

Everything goes through `etils.epath`, so a local path and `gs://bucket/...` are the same code,
except where an object store is not a file system: GCS has no append and no rename, and takes
about one write per second to one object. So every file here is written whole (`write_text`:
atomic rename locally, one upload on GCS, where objects appear whole), and metrics rows of a run
still training on GCS go to immutable chunk objects (`metrics/`), folded into metrics.jsonl when the
run ends; readers read metrics.jsonl and the chunks together, so they see a live run too.

The interface (paths are strings, local or gs://; this module imports no JAX):
  RunDir(root): run_file, metrics_file, metrics_chunks, checkpoints, tensorboard, name; has_run(),
    has_metrics(), record() (run.json as a records.RunRecord), read_run() (its JSON),
    write_run(record), read_metrics(strict=), metrics_writer(resume_step=)
  SweepDir(root): plan_file, results_file, runs_dir, figures, compile_cache; is_sweep(), has_plan(),
    read_plan() / write_plan(record) (plan.json as a records.PlanRecord), run(name), run_dirs()
  read_text/read_bytes/read_json, write_text/write_bytes/write_json (whole, atomic),
  create_exclusive(path, text) (exactly one of racing creators wins: FileExistsError for the
  others), remove, exists, is_dir, list_names, join, parent, absolute, is_remote,
  check_writable(path, flag) / check_readable(path, flag) (one-line InputErrors, nothing written).
"""

import contextlib
import json
import os
import sys
import tempfile
import time
import warnings

from etils import epath

from scaling.errors import InputError, first_line
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
# How often a run on an object store writes its new metrics rows (also at every checkpoint and at
# the end): far below GCS's per-object limit, and each chunk is a new object written once.
CHUNK_SECONDS = 10.0


def is_remote(path) -> bool:
  """An object store URL (gs://...), not a local path."""
  return "://" in os.fspath(path)


def absolute(path) -> str:
  """A local path made absolute (orbax wants one); a URL as it is."""
  path = os.fspath(path)
  return path if is_remote(path) else os.path.abspath(path)


def join(path, *parts) -> str:
  """`path/part/...` as a string, for a local path or a URL alike."""
  return os.fspath(epath.Path(path).joinpath(*parts))


def _gcs():
  """The gcsfs file system epath itself uses for gs:// (fsspec caches one instance)."""
  import fsspec

  return fsspec.filesystem("gcs", finalize_on_close=True)


def _fresh(path) -> epath.Path:
  """`path` as an epath, with gcsfs's cached listings of it dropped: another process (another
  host, the trainer a test watches) may have written there since this one last looked."""
  if is_remote(path):
    _gcs().invalidate_cache(os.fspath(path))
  return epath.Path(path)


def exists(path) -> bool:
  return _fresh(path).exists()


def is_dir(path) -> bool:
  return _fresh(path).is_dir()


def list_names(path) -> list[str]:
  """The sorted names directly inside directory `path`; [] if it does not exist, or stops existing
  while it is listed (on GCS a directory is its objects: another process may delete the last one,
  as process 0 of a run does with the metrics chunks while the others read the metrics)."""
  directory = _fresh(path)
  if not directory.is_dir():
    return []
  try:
    return sorted(child.name for child in directory.iterdir())
  except FileNotFoundError:
    return []


def read_text(path) -> str:
  return _fresh(path).read_text(encoding="utf-8")


def read_bytes(path) -> bytes:
  return _fresh(path).read_bytes()


def write_bytes(path, data: bytes) -> None:
  """Writes a whole file so that readers see the old content or the new, never a part.

  Locally: a temporary file of a unique name in the same directory, fsynced, renamed over `path`
  (and removed if the write fails, so a failed write leaves nothing). On GCS one upload,
  which becomes visible only once complete. Parent directories are created.
  """
  target = epath.Path(path)
  if is_remote(path):
    target.write_bytes(data)
    return
  target.parent.mkdir(parents=True, exist_ok=True)
  # A temporary name of this writer's own (two writers never share one), removed if anything fails.
  descriptor, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                     dir=os.fspath(target.parent))
  try:
    with os.fdopen(descriptor, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp's is 0600; a written file is readable as `open` makes it
    os.replace(tmp, os.fspath(target))
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp)
    raise


def upload_tree(local_dir: str, target) -> None:
  """Copies every file below the local directory `local_dir` to the same relative path below
  `target` (a bucket path), each as one whole-file write; links to directories are skipped. For
  writers (TensorBoard, W&B) that only write local files."""
  for folder, _, names in os.walk(local_dir):
    for name in names:
      path = os.path.join(folder, name)
      if os.path.isfile(path):
        with open(path, "rb") as f:
          write_bytes(join(target, *os.path.relpath(path, local_dir).split(os.sep)), f.read())


def write_text(path, text: str) -> None:
  """`write_bytes` of `text` in UTF-8."""
  write_bytes(path, text.encode("utf-8"))


def parent(path) -> str:
  """The directory holding `path` (a local path made absolute first)."""
  return os.fspath(epath.Path(absolute(path)).parent)


def create_exclusive(path, text: str) -> None:
  """Creates `path` holding `text` unless something is there already: then FileExistsError.

  Of several processes (or hosts) racing to create it, exactly one succeeds: a lock or a claim.
  Locally O_CREAT | O_EXCL; on GCS one upload with the precondition ifGenerationMatch=0 (the
  object must not exist), which GCS refuses with 412, FileExistsError through gcsfs.
  """
  if is_remote(path):
    _gcs().pipe_file(os.fspath(path), text.encode("utf-8"), mode="create")
    return
  epath.Path(path).parent.mkdir(parents=True, exist_ok=True)
  descriptor = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
  with os.fdopen(descriptor, "w", encoding="utf-8") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())


def remove(path) -> None:
  """Deletes a file (or object); a missing one is not an error."""
  target = epath.Path(path)
  try:
    target.unlink()
  except FileNotFoundError:
    pass


def _storage_endpoint() -> tuple[str, str, int]:
  """(URL, host, port) of the GCS API this process talks to: STORAGE_EMULATOR_HOST when set."""
  from urllib.parse import urlsplit

  url = os.environ.get("STORAGE_EMULATOR_HOST") or "https://storage.googleapis.com"
  parts = urlsplit(url if "://" in url else f"http://{url}")
  return url, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _check_bucket(path: str, flag: str) -> None:
  """The bucket of gs:// `path` answers: the endpoint is reachable, there are credentials and the
  bucket exists and is ours. Each failure is one InputError line; nothing is written."""
  import socket

  if not path.startswith("gs://"):
    raise InputError(f"{flag} {path}: only gs:// URLs are supported as remote paths")
  try:
    import gcsfs  # noqa: F401  what epath reads and writes gs:// with
  except ImportError:
    raise InputError(f"{flag} {path}: gs:// paths need gcsfs: pip install 'scaling[gcs]'") from None
  bucket = path[len("gs://"):].split("/")[0]
  if not bucket:
    raise InputError(f"{flag} {path}: no bucket name")
  url, host, port = _storage_endpoint()
  try:
    socket.create_connection((host, port), timeout=10).close()
  except OSError as e:
    raise InputError(f"{flag} {path}: cannot reach the storage API at {url} ({e})") from None
  if not os.environ.get("GOOGLE_AUTH_TOKEN_FOR_TESTING"):
    import google.auth
    import google.auth.exceptions

    try:
      google.auth.default()
    except google.auth.exceptions.GoogleAuthError as e:
      raise InputError(f"{flag} {path}: no Google credentials (run `gcloud auth "
                       "application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS): "
                       f"{str(e).splitlines()[0]}") from None
  try:
    _gcs().invalidate_cache(bucket)
    _gcs().info(bucket)
  except FileNotFoundError:
    raise InputError(f"{flag} {path}: bucket gs://{bucket} does not exist") from None
  except Exception as e:  # noqa: BLE001  403, 401, ...: the storage API's own words, on one line
    raise InputError(f"{flag} {path}: cannot use bucket gs://{bucket} "
                     f"({first_line(e)[:200]})") from None


def check_writable(path, flag: str = "--workdir") -> None:
  """That a directory can be created or written at `path`, writing nothing: a local path whose
  nearest existing ancestor is a writable directory, or a gs:// path in a usable bucket."""
  path = os.fspath(path)
  if not path:
    raise InputError(f"{flag} is empty; name a directory for the run's outputs")
  if is_remote(path):
    _check_bucket(path, flag)
    return
  ancestor = os.path.abspath(path)
  while not os.path.exists(ancestor):
    ancestor = os.path.dirname(ancestor)
  if not os.path.isdir(ancestor):
    raise InputError(f"{flag} {path}: {ancestor} exists and is not a directory")
  try:  # probed with an empty directory made and removed: permission bits say nothing for root
    os.rmdir(tempfile.mkdtemp(prefix=".scaling-probe-", dir=ancestor))
  except OSError as e:
    raise InputError(f"{flag} {path}: cannot create directories in {ancestor} "
                     f"({e.strerror})") from None


def check_readable(path, flag: str) -> None:
  """That `path` can be read: it exists (a gs:// path also gets the bucket checks first)."""
  path = os.fspath(path)
  if is_remote(path):
    _check_bucket(path, flag)
  if not exists(path):
    raise InputError(f"{flag} {path}: no such file or directory")


# What a run or sweep directory owns: files directly in it, and everything below these folders.
OWNED_FILES = (RUN_FILE, METRICS_FILE, PLAN_FILE, RESULTS_FILE, "status.json")
OWNED_PREFIXES = ("lease.",)
OWNED_DIRS = (METRICS_CHUNKS_DIR, CHECKPOINTS_DIR, TENSORBOARD_DIR, RUNS_DIR, COMPILE_CACHE_DIR,
              "wandb")


def _holds_run_or_sweep(directory: str) -> bool:
  return any(exists(join(directory, name)) for name in OWNED_FILES)


def owner(path) -> str | None:
  """The run or sweep directory whose own file `path` is (run.json, metrics.jsonl, results.csv,
  plan.json, status.json, a lease, anything under checkpoints/, runs/, ...), or None: what a
  command writing a file of the user's choice (`scaling fit --out`) must never replace."""
  child = absolute(path)
  directory = parent(child)
  inside = False  # whether `child` is a folder above `path`
  while directory != child and not directory.endswith("://"):  # up to / or the bucket
    name = epath.Path(child).name
    owned = (name in OWNED_DIRS if inside else
             name in OWNED_FILES or name.startswith(OWNED_PREFIXES))
    if owned and _holds_run_or_sweep(directory):
      return directory
    child, directory, inside = directory, parent(directory), True
  return None


def read_json(path):
  return json.loads(read_text(path))


def _read_json_file(path: str):
  """A run's or sweep's own JSON file, parsed; unreadable is an InputError naming it."""
  try:
    return read_json(path)
  except (OSError, ValueError) as e:
    raise InputError(f"{path}: unreadable ({e})") from None


def write_json(path, value) -> None:
  write_text(path, json.dumps(value, indent=2))


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
    return join(self.root, RUN_FILE)

  @property
  def metrics_file(self) -> str:
    return join(self.root, METRICS_FILE)

  @property
  def metrics_chunks(self) -> str:
    return join(self.root, METRICS_CHUNKS_DIR)

  @property
  def checkpoints(self) -> str:
    return join(self.root, CHECKPOINTS_DIR)

  @property
  def tensorboard(self) -> str:
    return join(self.root, TENSORBOARD_DIR)

  def has_run(self) -> bool:
    """Whether run.json is there, i.e. a run has started here."""
    return exists(self.run_file)

  def has_metrics(self) -> bool:
    return exists(self.metrics_file) or bool(self.chunk_names())

  def record(self) -> RunRecord:
    """run.json, typed; unreadable, not an object or a key of the wrong type is an InputError
    naming the file."""
    return RunRecord.from_json(_read_json_file(self.run_file), self.run_file)

  def read_run(self) -> dict:
    """run.json as a dict (the record's JSON)."""
    return self.record().to_json()

  def write_run(self, run: RunRecord | dict) -> None:
    write_json(self.run_file, run.to_json() if isinstance(run, RunRecord) else run)

  def chunk_names(self) -> list[str]:
    """The metrics chunk objects of a run still training (or cut off) on an object store."""
    return [name for name in list_names(self.metrics_chunks) if name.endswith(".jsonl")]

  def read_metrics(self, *, strict: bool = False) -> list[dict]:
    """Every logged row, in step order: metrics.jsonl and the chunks of a run still training.

    A step logged twice (rows of an attempt that was cut off, then recomputed) is listed once,
    with its latest value. `strict`: a garbled line other than a cut-off last one is an InputError.
    """
    by_step = {}
    sources = [self.metrics_file] + [join(self.metrics_chunks, n) for n in self.chunk_names()]
    for source in sources:
      try:
        text = read_text(source)
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
    self._remote = is_remote(run.root)
    previous = run.read_metrics()
    self._rows = [row for row in previous if row.get("step", 0) <= resume_step]
    self._pending: list[dict] = []
    self._chunks: list[str] = []
    self._last_chunk = time.monotonic()
    stale = self._rows != previous or bool(run.chunk_names())
    if not stale and not self._remote and exists(run.metrics_file):  # a cut-off last line?
      stale = read_text(run.metrics_file) != rows_text(self._rows)
    if stale:
      write_text(run.metrics_file, rows_text(self._rows))
      for name in run.chunk_names():  # folded into metrics.jsonl above, or past the resume step
        remove(join(run.metrics_chunks, name))
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
    chunk = join(self._run.metrics_chunks, f"{first:010d}-{last:010d}.jsonl")
    write_text(chunk, rows_text(self._pending))
    self._chunks.append(chunk)
    self._pending = []
    self._last_chunk = time.monotonic()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      return
    write_text(self._run.metrics_file, rows_text(self._rows))
    for chunk in self._chunks:
      remove(chunk)
    self._pending, self._chunks = [], []


class SweepDir:
  """One sweep directory: plan.json, results.csv, its run directories, figures/."""

  def __init__(self, root):
    self.root = os.fspath(root)

  @property
  def plan_file(self) -> str:
    return join(self.root, PLAN_FILE)

  @property
  def results_file(self) -> str:
    return join(self.root, RESULTS_FILE)

  @property
  def runs_dir(self) -> str:
    return join(self.root, RUNS_DIR)

  @property
  def figures(self) -> str:
    return join(self.root, FIGURES_DIR)

  @property
  def compile_cache(self) -> str:
    return join(self.root, COMPILE_CACHE_DIR)

  def is_sweep(self) -> bool:
    return exists(self.results_file)

  def has_plan(self) -> bool:
    return exists(self.plan_file)

  def read_plan(self) -> PlanRecord:
    """plan.json, typed; unreadable, not an object, a key of the wrong type or a run entry without
    name, workdir, config or steps is an InputError naming the file."""
    return PlanRecord.from_json(_read_json_file(self.plan_file), self.plan_file)

  def write_plan(self, plan: PlanRecord) -> None:
    write_json(self.plan_file, plan.to_json())

  def run(self, name: str) -> RunDir:
    """Where `scaling sweep` puts run `name`."""
    return RunDir(join(self.runs_dir, name))

  def run_dirs(self) -> list[RunDir]:
    """Run directories (with run.json) under runs/, then directly inside the sweep directory."""
    found = []
    for parent in (self.runs_dir, self.root):
      for name in list_names(parent):
        candidate = RunDir(join(parent, name))
        if candidate.has_run():
          found.append(candidate)
    return found


def read_metrics(workdir, *, strict: bool = False) -> list[dict]:
  """`RunDir(workdir).read_metrics()`: every logged row of the run in `workdir`, in step order."""
  return RunDir(workdir).read_metrics(strict=strict)

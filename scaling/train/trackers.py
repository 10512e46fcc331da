"""Trackers: where metrics rows go, chosen by `config.trackers` (e.g. "jsonl,tensorboard,wandb").

Each tracker is a hook (scaling.train.hooks) that opens when the run has started, takes every row,
flushes at checkpoints and closes at the end; only process 0 of a multi-host run has them.

- jsonl: metrics.jsonl (on GCS, chunk objects folded into it at the end; scaling.rundir). Sweeps,
  `scaling fit` and resume read it, so it is always on.
- tensorboard: the same scalars in WORKDIR/tensorboard. On GCS the event file is written locally
  and copied to the bucket whole (at checkpoints, at most every rundir.CHUNK_SECONDS, and at the
  end): an object cannot be appended to.
- wandb: Weights & Biases (`pip install 'scaling[wandb]'`): project, entity, run name and group
  from `config.wandb_*`, the resolved config as the run's config. Its files go to WORKDIR/wandb/
  (copied there at the end when WORKDIR is on GCS), with the run id, so a resumed run continues the
  same W&B run. WANDB_MODE=offline needs no network (`wandb sync WORKDIR/wandb/offline-run-*`).
"""

import importlib.util
import os
import secrets
import shutil
import tempfile
import time

from scaling import rundir, storage
from scaling.errors import InputError, first_line
from scaling.train.hooks import Hook, StepInfo

REQUIRED = "jsonl"
WANDB_DIR = "wandb"
WANDB_ID_FILE = "run_id"  # in WORKDIR/wandb/: the W&B run id a resumed run continues
WANDB_KEYS = ("project", "entity", "name", "group")  # config.wandb_KEY
# The config keys of this module: they change how a run reports, never what it computes.
CONFIG_KEYS = ("trackers", *(f"wandb_{key}" for key in WANDB_KEYS))


def _scalars(row: dict) -> dict:
  return {key: value for key, value in row.items()
          if key != "step" and isinstance(value, (int, float))}


class Jsonl(Hook):
  """metrics.jsonl; on resume the rows past the restored step are dropped, never doubled."""

  def __init__(self, run: rundir.RunDir, settings: dict):
    del settings
    self._run, self._rows = run, None

  def on_start(self, start: int) -> None:
    self._rows = self._run.metrics_writer(resume_step=start)

  def on_row(self, row: dict) -> None:
    self._rows.write(row)

  def on_checkpoint(self, info: StepInfo, force: bool) -> None:
    self._rows.flush()  # the rows up to this checkpoint, readable before it is

  def on_end(self, error: BaseException | None) -> None:
    if self._rows is not None:
      self._rows.close()


class TensorBoard(Hook):
  """Every numeric column of a row as a TensorBoard scalar at the row's step."""

  def __init__(self, run: rundir.RunDir, settings: dict):
    del settings
    self._directory, self._writer = run.tensorboard, None
    self._staging = None

  def on_start(self, start: int) -> None:
    from tensorboardX import SummaryWriter  # deferred: only the writing process needs it

    if storage.is_remote(self._directory):
      self._staging = tempfile.mkdtemp(prefix="tensorboard-")
    self._uploaded = time.monotonic()
    self._writer = SummaryWriter(self._staging or self._directory)

  def on_row(self, row: dict) -> None:
    for key, value in _scalars(row).items():
      self._writer.add_scalar(key, value, row["step"])

  def on_checkpoint(self, info: StepInfo, force: bool) -> None:
    if self._staging and time.monotonic() - self._uploaded >= rundir.CHUNK_SECONDS:
      self._upload()

  def _upload(self) -> None:
    self._writer.flush()
    storage.upload_tree(self._staging, self._directory)
    self._uploaded = time.monotonic()

  def on_end(self, error: BaseException | None) -> None:
    if self._writer is None:
      return
    self._writer.close()
    if self._staging:
      self._upload()
      shutil.rmtree(self._staging, ignore_errors=True)


class Wandb(Hook):
  """A Weights & Biases run: the config at the start, every row's scalars at its step."""

  def __init__(self, run: rundir.RunDir, settings: dict):
    self._run, self._settings, self._wandb_run = run, settings, None
    self._directory = storage.join(run.root, WANDB_DIR)
    self._staging = None

  def on_start(self, start: int) -> None:
    import wandb  # deferred: an optional extra, and slow to import

    id_file = storage.join(self._directory, WANDB_ID_FILE)
    run_id = storage.read_text(id_file).strip() if storage.exists(id_file) else secrets.token_hex(6)
    if storage.is_remote(self._run.root):  # wandb writes a local directory; copied over at the end
      self._staging = tempfile.mkdtemp(prefix="wandb-")
    local_root = self._staging or self._run.root  # wandb.init(dir=D) writes D/wandb/
    os.makedirs(os.path.join(local_root, WANDB_DIR), exist_ok=True)
    s = self._settings
    try:
      self._wandb_run = wandb.init(
          project=s["project"], entity=s["entity"] or None, name=s["name"] or self._run.name,
          group=s["group"] or None, config=s["config"], id=run_id, resume="allow", dir=local_root)
    except wandb.errors.Error as e:  # not logged in, unknown entity, no network: say how to go on
      raise InputError(f"trackers has wandb, but W&B refused the run ({first_line(e)}); run "
                       "`wandb login`, or set WANDB_MODE=offline") from None
    storage.write_text(id_file, run_id)

  def on_row(self, row: dict) -> None:
    self._wandb_run.log(_scalars(row), step=row["step"])

  def on_end(self, error: BaseException | None) -> None:
    if self._wandb_run is None:
      return
    self._wandb_run.finish(exit_code=0 if error is None else 1)
    if self._staging:
      storage.upload_tree(os.path.join(self._staging, WANDB_DIR), self._directory)
      shutil.rmtree(self._staging, ignore_errors=True)


TRACKERS = {"jsonl": Jsonl, "tensorboard": TensorBoard, "wandb": Wandb}


def parse(config) -> tuple[str, ...]:
  """The tracker names of `config.trackers`, checked, and the wandb_* keys."""
  value = config.trackers
  if not isinstance(value, str):
    raise InputError(f"trackers must be a comma-separated string such as 'jsonl,tensorboard', "
                     f"got {value!r}")
  names = tuple(name.strip() for name in value.split(","))
  for name in names:
    if name not in TRACKERS:
      raise InputError(f"trackers={value!r}: unknown tracker {name!r} "
                       f"(known: {', '.join(TRACKERS)})")
  if len(set(names)) != len(names):
    raise InputError(f"trackers={value!r} names a tracker twice")
  if REQUIRED not in names:
    raise InputError(f"trackers={value!r} must include {REQUIRED}: metrics.jsonl is what resume, "
                     "sweeps and scaling fit read")
  for key in WANDB_KEYS:
    if not isinstance(config[f"wandb_{key}"], str):
      raise InputError(f"wandb_{key} must be a string, got {config[f'wandb_{key}']!r}")
  if "wandb" in names and importlib.util.find_spec("wandb") is None:
    raise InputError(f"trackers={value!r} needs the wandb package, which is not installed: "
                     "pip install 'scaling[wandb]'")
  if "wandb" in names:
    _check_wandb_environment(os.environ)
  return names


def _check_wandb_environment(environ) -> None:
  """W&B reads its settings from WANDB_* variables when the run starts (after run.json and the
  metrics file are written); one it would refuse (WANDB_MODE=bogus) is named here, before."""
  import wandb  # only for a run that tracks to W&B

  for variable, value in sorted(environ.items()):
    if not variable.startswith("WANDB_"):
      continue
    try:
      wandb.Settings().update_from_env_vars({variable: value})
    except Exception as e:  # noqa: BLE001  pydantic's ValidationError: its first complaint
      errors = getattr(e, "errors", None)
      reason = errors()[0]["msg"] if callable(errors) and errors() else first_line(e)
      raise InputError(f"trackers has wandb, but W&B refuses {variable}={value!r}: {reason}"
                       ) from None


def build(names: tuple[str, ...], run: rundir.RunDir, wandb_settings: dict,
          config: dict) -> list[Hook]:
  """The trackers named, in order; `config` is what W&B records as the run's config."""
  settings = {"wandb": {**wandb_settings, "config": config}}
  return [TRACKERS[name](run, settings.get(name, {})) for name in names]

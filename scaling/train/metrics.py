"""Loss against compute: the run directory's metrics rows (scaling.rundir) and TensorBoard.

Every row is made durable as soon as the storage allows: appended and flushed on a local disk, in
the next chunk object on GCS (at the latest at the next checkpoint). TensorBoard gets the same
scalars in WORKDIR/tensorboard. On GCS the event file is written locally and copied to the bucket
whole (at checkpoints, at most every rundir.CHUNK_SECONDS, and at the end): an object cannot be
appended to.
"""

import os
import shutil
import tempfile
import time

from scaling import rundir


class MetricsLog:
  """Writes rows to the run directory's metrics and mirrors the scalars to TensorBoard."""

  def __init__(self, run: rundir.RunDir, *, resume_step: int):
    self._rows = run.metrics_writer(resume_step=resume_step)
    self._bucket_dir = run.tensorboard if rundir.is_remote(run.tensorboard) else None
    self._staging = tempfile.mkdtemp(prefix="tensorboard-") if self._bucket_dir else None
    self._uploaded = time.monotonic()
    from tensorboardX import SummaryWriter  # deferred: only the writing process needs it

    self._tensorboard = SummaryWriter(self._staging or run.tensorboard)

  def write(self, row: dict) -> None:
    self._rows.write(row)
    for key, value in row.items():
      if key != "step" and isinstance(value, (int, float)):
        self._tensorboard.add_scalar(key, value, row["step"])

  def flush(self) -> None:
    """Every row so far readable by others (the trainer calls it with each checkpoint)."""
    self._rows.flush()
    if self._bucket_dir and time.monotonic() - self._uploaded >= rundir.CHUNK_SECONDS:
      self._upload_events()

  def _upload_events(self) -> None:
    self._tensorboard.flush()
    for name in os.listdir(self._staging):
      with open(os.path.join(self._staging, name), "rb") as f:
        rundir.write_bytes(rundir.join(self._bucket_dir, name), f.read())
    self._uploaded = time.monotonic()

  def close(self) -> None:
    self._rows.close()
    self._tensorboard.close()
    if self._bucket_dir:
      self._upload_events()
      shutil.rmtree(self._staging, ignore_errors=True)


class NullLog:
  """What non-zero processes of a multi-host run write: nothing."""

  def write(self, row: dict) -> None:
    del row

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass

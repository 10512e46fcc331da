"""Loss against compute: the run directory's metrics rows (scaling.rundir) and TensorBoard.

Every row is made durable as soon as the storage allows: appended and flushed on a local disk, in
the next chunk object on GCS (at the latest at the next checkpoint). TensorBoard gets the same
scalars, in WORKDIR/tensorboard, local or gs://.
"""

from scaling import rundir


class MetricsLog:
  """Writes rows to the run directory's metrics and mirrors the scalars to TensorBoard."""

  def __init__(self, run: rundir.RunDir, *, resume_step: int):
    self._rows = run.metrics_writer(resume_step=resume_step)
    from tensorboardX import SummaryWriter  # deferred: only the writing process needs it

    self._tensorboard = SummaryWriter(run.tensorboard)

  def write(self, row: dict) -> None:
    self._rows.write(row)
    for key, value in row.items():
      if key != "step" and isinstance(value, (int, float)):
        self._tensorboard.add_scalar(key, value, row["step"])

  def flush(self) -> None:
    """Every row so far readable by others (the trainer calls it with each checkpoint)."""
    self._rows.flush()

  def close(self) -> None:
    self._rows.close()
    self._tensorboard.close()


class NullLog:
  """What non-zero processes of a multi-host run write: nothing."""

  def write(self, row: dict) -> None:
    del row

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass

"""The loop calls hooks at their named moments, in order, with what each moment promises."""

import os
import signal
import subprocess

import jax
import jax.numpy as jnp
import pytest

from scaling.rundir import read_metrics
from scaling.train import hooks, trainer
from small_runs import small_config

# 6 steps: rows every 2 (and at eval steps), eval every 3, checkpoints every 4, and the last step.
SCHEDULE = {"train_steps": 6, "log_every": 2, "eval_every": 3, "checkpoint_every": 4}


class Recorder(hooks.Hook):
  """Notes every moment with its step, and what the workdir holds at the moments that promise it."""

  every = 5

  def __init__(self, workdir, signal_at=None, fail_at=None):
    self.workdir, self.signal_at, self.fail_at = workdir, signal_at, fail_at
    self.moments = []

  def on_start(self, start):
    assert os.path.exists(os.path.join(self.workdir, "run.json"))  # the run record opened first
    self.moments.append(("start", start))

  def on_step(self, info):
    self.moments.append(("step", info.step))
    if info.step == self.fail_at:
      raise RuntimeError("a hook failed")

  def on_eval(self, info):
    self.moments.append(("eval", info.step))
    return {"eval_probe": jnp.float32(info.step) / 2}  # joins the row of this step

  def on_row(self, row):
    self.moments.append(("row", row["step"]))
    if row["step"] == self.signal_at:
      os.kill(os.getpid(), signal.SIGTERM)  # as a preemption would, mid-run

  def on_checkpoint(self, info, force):
    # The trackers flushed before this hook; the checkpointer saves after it.
    assert read_metrics(self.workdir)[-1]["step"] == info.step
    assert not os.path.exists(os.path.join(self.workdir, "checkpoints", str(info.step)))
    self.moments.append(("checkpoint", info.step, force))

  def on_end(self, error):
    self.moments.append(("end", type(error).__name__ if error else None))


def test_hooks_run_at_their_named_moments(text_corpus, tmp_path):
  recorder = Recorder(str(tmp_path))
  last = trainer.train(small_config(text_corpus, **SCHEDULE), str(tmp_path),
                       devices=jax.devices()[:1], hooks=[recorder])
  # Rows reach hooks one step late (the device runs ahead), at once at a checkpoint.
  assert recorder.moments == [
      ("start", 0), ("row", 2), ("eval", 3), ("row", 3), ("row", 4), ("checkpoint", 4, False),
      ("step", 5), ("eval", 6), ("row", 6), ("checkpoint", 6, False), ("step", 6), ("end", None)]
  rows = read_metrics(tmp_path)
  assert [row["step"] for row in rows] == [2, 3, 4, 6]
  assert [row.get("eval_probe") for row in rows] == [None, 1.5, None, 3.0]
  assert last == rows[-1]


def test_a_preemption_is_a_forced_checkpoint_then_the_end(text_corpus, tmp_path):
  recorder = Recorder(str(tmp_path), signal_at=3)
  last = trainer.train(small_config(text_corpus, **SCHEDULE), str(tmp_path),
                       devices=jax.devices()[:1], hooks=[recorder])
  assert recorder.moments == [("start", 0), ("row", 2), ("eval", 3), ("row", 3),
                              ("row", 4), ("checkpoint", 4, True), ("end", None)]
  assert last["preempted"] and last["signal"] == "SIGTERM" and last["step"] == 4


def test_a_failing_run_still_ends_every_hook(text_corpus, tmp_path):
  first, second = Recorder(str(tmp_path)), Recorder(str(tmp_path), fail_at=5)
  with pytest.raises(RuntimeError, match="a hook failed"):
    trainer.train(small_config(text_corpus, **SCHEDULE), str(tmp_path),
                  devices=jax.devices()[:1], hooks=[first, second])
  assert first.moments[-1] == second.moments[-1] == ("end", "RuntimeError")
  assert os.path.isdir(os.path.join(tmp_path, "checkpoints", "4"))  # closed, so the save completed


@pytest.fixture
def small_disk(tmp_path):
  """A 900 kB tmpfs: room for one checkpoint of the small run (~600 kB), not for two."""
  disk = tmp_path / "disk"
  disk.mkdir()
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=900k", "tmpfs", str(disk)],
                           capture_output=True)
  if mounted.returncode:
    pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
  yield disk
  subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_stops_the_run_in_one_line_keeping_the_complete_checkpoints(
    text_corpus, small_disk):
  workdir = str(small_disk / "run")
  config = small_config(text_corpus, train_steps=10, checkpoint_every=5, eval_every=5)
  for attempt in ("first", "resume"):  # the resume restores checkpoint 5, then fails as the first
    with pytest.raises(hooks.DiskFull) as failure:
      trainer.train(config, workdir, devices=jax.devices()[:1])
    assert str(failure.value) == (
        f"no space left on {small_disk} writing checkpoint 10; the last complete checkpoint is 5 "
        f"(in {workdir}/checkpoints): free space there and run the same command to resume"), attempt
    assert os.listdir(os.path.join(workdir, "checkpoints")) == ["5"], attempt  # no 10.orbax-...-tmp
  assert [row["step"] for row in read_metrics(workdir)][-1] == 10

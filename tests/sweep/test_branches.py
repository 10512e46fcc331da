"""Branching sweeps (sweep.branches=cooldown): the plan's trunks and costs (plan.py), and trunks and
branches trained by the local executor (runner.py through core.py), killed and resumed."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from scaling import rundir, storage
from scaling.errors import InputError
from scaling.launch import local
from scaling.rundir import read_metrics
from scaling.sweep import plan as plan_lib
from scaling.sweep import results, runner
from scaling.train import trainer
from test_runner import TINY_SWEEP, tiny_sweep, watch_train

STEPS_T = 10  # the shortest horizon, in steps of 16 sequences × 32 tokens


def curves(text_corpus, sizes=(4e3,), branches="cooldown"):
  """Curves at horizons T, 2T, 4T; every step logged, only forced checkpoints, one kept."""
  config = tiny_sweep(text_corpus)
  config.base.mesh.fsdp = 1
  config.base.log_every = 1
  config.base.keep_checkpoints = 1
  config.sweep.kind = "curves"
  config.sweep.sizes = sizes
  config.sweep.tokens = tuple(STEPS_T * k * 16 * 32 for k in (1, 2, 4))
  config.sweep.branches = branches
  return config


def comparable(rows):
  return [{k: v for k, v in row.items() if k != "tokens_per_sec"} for row in rows]


def test_a_branched_curves_sweep_trains_each_size_once_plus_the_shorter_cooldowns(text_corpus,
                                                                                 tmp_path):
  plan = plan_lib.build(curves(text_corpus, sizes=(4e3, 5.2e3, 7e3)), str(tmp_path / "s"))
  assert len(plan.runs) == 9 and len(plan.trunks) == 3
  # The trunk once (the longest run but its cooldown), then each run's cooldown: 4 + 0.2·(1+2+4)
  # - 0.2·4 = 4 + 0.2·(1+2) horizons T of the 1 + 2 + 4 = 7 trained alone.
  assert plan.flops_trained / plan.flops_independent == pytest.approx((4 + 0.2 * 3) / 7, abs=0.01)
  for trunk in plan.trunks:
    branches = [run for run in plan.runs if run.trunk == trunk.name]
    assert [run.fork_step for run in branches] == [8, 16, 32] == list(trunk.config.checkpoint_steps)
    assert trunk.steps == 32 and trunk.config.decay_fraction == 0.0
    # One warmup for all, the shortest run's; the same everything else but the length.
    assert {run.config.warmup_steps for run in (trunk, *branches)} == {1}
    assert {run.config.schedule for run in (trunk, *branches)} == {"wsd"}
  plan_json = plan.to_json()
  assert plan_json["flops_ratio"] == plan.flops_trained / plan.flops_independent
  assert [entry["fork_step"] for entry in plan_json["runs"][:3]] == [8, 16, 32]
  assert [entry["name"] for entry in plan_json["trunks"]] == [t.name for t in plan.trunks]
  table = plan.table()
  assert table.splitlines()[0].split()[-2:] == ["trunk", "fork"]
  assert f"{plan.flops_trained / plan.flops_independent:.3f}" in table

  plain = plan_lib.build(curves(text_corpus, branches="none"), str(tmp_path / "p"))
  assert not plain.trunks and plain.flops_trained == plain.flops_independent
  assert {run.config.schedule for run in plain.runs} == {"cosine"}


def test_a_branch_that_would_fork_inside_its_warmup_is_refused(text_corpus, tmp_path):
  config = curves(text_corpus)
  config.base.decay_fraction = 0.95
  with pytest.raises(InputError, match="sweep.branches: run .* would fork at step 0"):
    plan_lib.build(config, str(tmp_path / "s"))


def test_branches_fork_off_their_trunk_bitwise_and_equal_runs_trained_alone(text_corpus, tmp_path,
                                                                           monkeypatch):
  plan = plan_lib.build(curves(text_corpus), str(tmp_path / "s"))
  [trunk] = plan.trunks
  calls = watch_train(monkeypatch)
  outcome = runner.run(plan)
  assert calls == [trunk.name, *(run.name for run in plan.runs)]  # the trunk, then its branches
  assert outcome.finished == tuple(run.name for run in plan.runs) and not outcome.failed
  rows = results.read(outcome.results_path)
  assert [row["trunk"] for row in rows] == [trunk.name] * 3
  assert [row["tokens"] for row in rows] == [run.tokens for run in plan.runs]  # trunk part included
  # Every fork checkpoint outlived keep_checkpoints=1.
  assert storage.list_names(rundir.RunDir(trunk.workdir).checkpoints) == ["16", "32", "8"]

  trunk_rows = comparable(read_metrics(trunk.workdir))
  for run in plan.runs:
    branch_rows = comparable(read_metrics(run.workdir))
    assert [row["step"] for row in branch_rows] == list(range(1, run.steps + 1))
    assert branch_rows[:run.fork_step] == trunk_rows[:run.fork_step]
    assert rundir.RunDir(run.workdir).read_run()["resumed_from_step"] == run.fork_step

  # The middle branch is the run its config trains alone, from scratch: the trunk's shared part is
  # bitwise that run's own training ...
  branch = plan.runs[1]
  alone = str(tmp_path / "alone")
  trainer.train(branch.config, alone)
  assert comparable(read_metrics(alone)) == comparable(read_metrics(branch.workdir))
  # ... and it is what a plain run of its config restored from the trunk's checkpoint trains.
  restored = rundir.RunDir(str(tmp_path / "restored"))
  shutil.copytree(os.path.join(trunk.workdir, "checkpoints", str(branch.fork_step)),
                  os.path.join(restored.checkpoints, str(branch.fork_step)))
  trainer.train(branch.config, restored.root)
  assert (comparable(read_metrics(restored.root))
          == comparable(read_metrics(branch.workdir))[branch.fork_step:])

  # A re-run trains nothing.
  calls.clear()
  assert runner.run(plan).finished == outcome.finished and calls == []


def sweep_command(text_corpus, workdir, steps_t):
  """`scaling sweep` of 3 sizes at horizons T, 2T, 4T with branches, in a fresh one-device process."""
  tokens = tuple(steps_t * k * 16 * 32 for k in (1, 2, 4))
  argv = [sys.executable, "-m", "scaling.cli", "sweep", "--config", str(TINY_SWEEP),
          "--workdir", str(workdir), f"--config.base.data.glob={text_corpus}",
          "--config.base.mesh.fsdp=1", "--config.base.log_every=1",
          "--config.base.keep_checkpoints=1", "--config.sweep.kind=curves",
          "--config.sweep.sizes=(4e3,5.2e3,7e3)", f"--config.sweep.tokens={tokens}",
          "--config.sweep.branches=cooldown"]
  env = {**local.child_env(os.environ, 1), "PYTHONUNBUFFERED": "1"}
  return argv, env


@pytest.mark.slow
def test_a_trunk_killed_mid_way_resumes_and_every_row_equals_the_uninterrupted_sweep(
    text_corpus, tmp_path):
  argv, env = sweep_command(text_corpus, tmp_path / "reference", steps_t=20)
  done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  reference = results.read(str(tmp_path / "reference"))
  assert len(reference) == 9

  workdir = tmp_path / "killed"
  argv, env = sweep_command(text_corpus, workdir, steps_t=20)
  config = curves(text_corpus, sizes=(4e3, 5.2e3, 7e3))
  config.sweep.tokens = tuple(20 * k * 16 * 32 for k in (1, 2, 4))
  plan = plan_lib.build(config, str(workdir))
  first_trunk, second_trunk, _ = plan.trunks
  process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
  deadline = time.time() + 300
  while len(read_metrics(second_trunk.workdir)) < 40:  # past its first two forks (16, 32)
    assert time.time() < deadline and process.poll() is None, process.communicate()[0][-2000:]
    time.sleep(0.02)
  process.send_signal(signal.SIGKILL)
  process.wait()
  killed_at = len(read_metrics(second_trunk.workdir))
  assert killed_at < second_trunk.steps
  first_size = [run for run in plan.runs if run.trunk == first_trunk.name]
  before = {run.name: storage.read_text(rundir.RunDir(run.workdir).metrics_file)
            for run in first_size}

  done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  assert results.read(str(workdir)) == reference  # every row, bitwise
  # No run trained twice: the finished size was left alone, the killed trunk resumed.
  assert {name: storage.read_text(rundir.RunDir(run.workdir).metrics_file)
          for name, run in zip(before, first_size)} == before
  assert 0 < rundir.RunDir(second_trunk.workdir).read_run()["resumed_from_step"] <= killed_at
  for run in plan.runs:
    assert rundir.RunDir(run.workdir).read_run()["resumed_from_step"] == run.fork_step
    assert [row["step"] for row in read_metrics(run.workdir)] == list(range(1, run.steps + 1))


def test_a_trunk_that_fails_fails_the_branches_that_had_not_forked(text_corpus, tmp_path,
                                                                  monkeypatch):
  plan = plan_lib.build(curves(text_corpus), str(tmp_path / "s"))
  [trunk] = plan.trunks

  def failing(config, workdir, devices=None):
    raise trainer.Diverged("non-finite loss or gradient at step 3; last good checkpoint: none")

  calls = watch_train(monkeypatch, failing)
  outcome = runner.run(plan)
  assert calls == [trunk.name]  # no branch trained: none had its fork checkpoint
  reason = "Diverged: non-finite loss or gradient at step 3; last good checkpoint: none"
  assert outcome.failed == {trunk.name: reason,
                            **{run.name: f"its trunk {trunk.name} failed: {reason}"
                               for run in plan.runs}}
  assert outcome.finished == () and results.read(outcome.results_path) == []

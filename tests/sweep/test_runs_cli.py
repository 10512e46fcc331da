"""`scaling runs DIR`: one line per run from what the run directories hold, in flight or not."""

import json
import time

import pytest
from test_runner import tiny_sweep

from scaling import rundir, storage
from scaling.cli import main
from scaling.sweep import plan as plan_lib
from scaling.train import runstate


def write_rows(workdir, steps, total):
  rows = [{"step": s, "tokens": 512 * s, "flops": 1e6 * s, "loss": 5.0 - 0.1 * s,
           "tokens_per_sec": 1000.0 + s} for s in steps]
  if steps[-1] == total:
    rows[-1]["eval_loss"] = 4.0
  storage.write_text(storage.join(workdir, rundir.METRICS_FILE), rundir.rows_text(rows))


def test_every_state_of_a_sweep_in_flight(text_corpus, tmp_path, capsys):
  config = tiny_sweep(text_corpus)
  config.sweep.sizes = (4e3, 5.2e3, 6.4e3, 9.5e3, 1.26e4)
  plan = plan_lib.build(config, str(tmp_path / "sweep"))
  storage.write_json(rundir.SweepDir(plan.workdir).plan_file, plan.to_json())
  pending, running, stalled, failed, finished = plan.runs

  lease = runstate.acquire(running.workdir, "driver/run/1", 60.0)
  runstate.write_status(running.workdir, "running", where=runstate.where(), attempts=[{}])
  write_rows(running.workdir, [1, 2, 3], running.steps)

  runstate.acquire(stalled.workdir, "driver/run/1", 0.01)  # then never renewed
  runstate.write_status(stalled.workdir, "running", where="gone:1", attempts=[{}])
  runstate.write_status(failed.workdir, "failed", reason="ValueError: boom", attempts=[{}])
  write_rows(finished.workdir, list(range(1, finished.steps + 1)), finished.steps)
  time.sleep(0.05)  # the stalled run's lease is past its 0.01 s

  assert main(["runs", plan.workdir, "--json"]) == 0
  lines = {line["name"]: line for line in json.loads(capsys.readouterr().out)}
  assert [lines[r.name]["state"] for r in plan.runs] == [
      "pending", "running", "stalled", "failed", "finished"]
  line = lines[running.name]
  assert (line["step"], line["total_steps"], line["tokens"], line["loss"]) == (
      3, running.steps, 1536, pytest.approx(4.7))
  assert line["eval_loss"] is None and line["tokens_per_sec"] == 1003.0
  assert line["where"] == runstate.where() and 0 <= line["lease_age_s"] < 60
  assert lines[failed.name]["reason"] == "ValueError: boom"
  assert lines[finished.name]["eval_loss"] == 4.0

  runstate.write_status(running.workdir, "preempted", reason="SIGTERM")  # as its holder does
  lease.release()
  assert main(["runs", plan.workdir]) == 0
  table = capsys.readouterr().out.splitlines()
  assert table[0].split()[:3] == ["name", "state", "step"] and len(table) == 1 + len(plan.runs)
  assert table[2].split()[:3] == [running.name, "preempted", f"3/{running.steps}"]

  assert main(["runs", finished.workdir, "--json"]) == 0  # one run's directory
  [one] = json.loads(capsys.readouterr().out)
  assert one["name"] == finished.name and one["step"] == finished.steps


def test_a_directory_with_no_sweep_or_run_is_one_line_exit_2(tmp_path, capsys):
  assert main(["runs", str(tmp_path)]) == 2
  assert main(["runs", str(tmp_path / "missing")]) == 2
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 2 and "neither a sweep" in err[0] and "missing" in err[1]


def test_a_file_or_a_corrupt_plan_is_one_line_exit_2(tmp_path, capsys):
  (tmp_path / "results.csv").write_text("name,loss\n")
  (tmp_path / "sweep").mkdir()
  (tmp_path / "sweep" / rundir.PLAN_FILE).write_text('{"runs": [{"name": ')  # cut off mid-write
  assert main(["runs", str(tmp_path / "results.csv")]) == 2
  assert main(["runs", str(tmp_path / "sweep")]) == 2
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 2 and "results.csv is a file" in err[0]
  assert "plan.json is corrupt" in err[1] and "neither" not in err[1]


def test_a_local_sweep_shows_its_run_training_and_its_failed_run_failed(text_corpus, tmp_path,
                                                                         monkeypatch, capsys):
  """The local executor keeps the same status and lease files as the Ray one: while a run trains,
  `scaling runs` says running (not pending), and a run the sweep failed says failed and why."""
  from test_runner import stand_in_train

  from scaling.sweep import runner
  from scaling.train import trainer

  plan = plan_lib.build(tiny_sweep(text_corpus), str(tmp_path / "sweep"))
  failing, good = plan.runs
  seen = {}

  def train(config, workdir, devices=None, claim=None):
    del claim
    capsys.readouterr()  # what the sweep printed so far
    assert main(["runs", plan.workdir, "--json"]) == 0
    seen[workdir] = {line["name"]: line for line in json.loads(capsys.readouterr().out)}
    if workdir == failing.workdir:
      raise ValueError("boom")
    return stand_in_train(config, workdir, devices)

  monkeypatch.setattr(trainer, "train", train)
  outcome = runner.run(plan)
  assert outcome.failed == {failing.name: "ValueError: boom"}
  capsys.readouterr()
  while_training = seen[good.workdir]
  assert while_training[good.name]["state"] == "running"
  assert while_training[good.name]["where"] == runstate.where()
  assert while_training[failing.name]["state"] == "failed"
  assert while_training[failing.name]["reason"] == "ValueError: boom"
  assert main(["runs", plan.workdir, "--json"]) == 0
  after = {line["name"]: line for line in json.loads(capsys.readouterr().out)}
  assert (after[failing.name]["state"], after[good.name]["state"]) == ("failed", "finished")
  assert after[failing.name]["attempts"] == 1

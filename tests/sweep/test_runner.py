"""The runner trains a plan in-process: failures, skips, interrupts, preemption, results.csv."""

import csv
import importlib.util
import json
import os
import pathlib
import time

import jax
import pytest

from scaling import rundir, storage
from scaling.errors import InputError
from scaling.launch import local
from scaling.sweep import cli, core, results, runner
from scaling.train import runstate
from scaling.sweep import plan as plan_lib
from scaling.train import trainer
from scaling.rundir import read_metrics

TINY_SWEEP = pathlib.Path(__file__).resolve().parent / "tiny_sweep.py"


def tiny_sweep(text_corpus):
  spec = importlib.util.spec_from_file_location("tiny_sweep", TINY_SWEEP)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.base.data.glob = text_corpus
  return config


def watch_train(monkeypatch, train=None) -> list[str]:
  """Replaces trainer.train (by `train`, default the real one) and records the runs it is given;
  the run's lease (`claim`) goes to the real one only."""
  calls, real = [], train is None
  train = train or trainer.train

  def watched(config, workdir, devices=None, claim=None):
    calls.append(os.path.basename(workdir))
    return train(config, workdir, devices, claim=claim) if real else train(config, workdir, devices)

  monkeypatch.setattr(trainer, "train", watched)
  return calls


def stand_in_train(config, workdir, devices=None):
  """Writes what a finished run leaves behind (run.json, a final metrics row), instantly, through
  scaling.rundir (so to a gs:// workdir too)."""
  del devices
  steps, tokens = config.train_steps, config.train_steps * config.batch_size * config.model.seq_len
  row = {"step": steps, "tokens": tokens, "flops": 2.0 * tokens, "flops_kaplan": 1.0 * tokens,
         "loss": 3.0, "eval_loss": 3.5}
  run = rundir.RunDir(workdir)
  run.write_run({"config": config.to_dict(), "params": 1, "params_non_embedding": 1})
  storage.write_text(run.metrics_file, json.dumps(row) + "\n")
  return row


def test_a_failing_run_does_not_stop_the_sweep_and_finished_runs_are_skipped(
    text_corpus, tmp_path, monkeypatch, capsys):
  workdir = str(tmp_path / "sweep")
  plan = plan_lib.build(tiny_sweep(text_corpus), workdir)
  failing, good = (run.name for run in plan.runs)
  assert [run.config.model.d_model for run in plan.runs] == [18, 16]

  # 1. The first run fails inside trainer.train; the sweep goes on and trains the second.
  with monkeypatch.context() as patch:
    calls = watch_train(patch)
    outcome = runner.run(plan)
  assert calls == [failing, good]
  assert outcome.finished == (good,) and list(outcome.failed) == [failing]
  assert "model.d_model=18" in outcome.failed[failing] and "mesh.fsdp" in outcome.failed[failing]
  # Nothing of the run is written; the sweep records that it failed and why (scaling runs shows it).
  assert sorted(os.listdir(os.path.join(workdir, "runs", failing))) == ["lease.0", "status.json"]
  status = runstate.read_status(os.path.join(workdir, "runs", failing))
  assert status["state"] == "failed" and "model.d_model=18" in status["reason"]
  assert os.listdir(os.path.join(workdir, rundir.COMPILE_CACHE_DIR))
  with open(os.path.join(workdir, rundir.PLAN_FILE)) as f:
    assert [r["name"] for r in json.load(f)["runs"]] == [failing, good]

  # results.csv: exactly these columns, one row per finished run, from run.json + the last row.
  with open(outcome.results_path, newline="") as f:
    assert tuple(next(csv.reader(f))) == results.COLUMNS
  [row] = results.read(outcome.results_path)
  run = plan.runs[1]
  metrics = read_metrics(run.workdir)
  assert row["name"] == good
  assert row["loss"] == metrics[-1]["eval_loss"]
  assert row["bpb"] == metrics[-1]["eval_bpb"]
  assert row["tokens"] == metrics[-1]["tokens"] == run.tokens == 8 * 16 * 32
  assert (row["learning_rate"], row["batch_size"]) == (run.config.learning_rate, 16)
  assert row["flops"] == metrics[-1]["flops"]
  assert row["flops_kaplan"] == metrics[-1]["flops_kaplan"]
  assert (row["params"], row["params_non_embedding"]) == (run.params, run.params_non_embedding)
  assert row["budget"] == run.budget
  assert row["seed"] == run.config.seed

  # 2. The CLI on the same directory: the finished run is skipped but still listed, the bad one is
  # tried again, and the failure makes the exit code 1.
  argv = ["--config", str(TINY_SWEEP), "--workdir", workdir,
          f"--config.base.data.glob={text_corpus}"]
  with monkeypatch.context() as patch:
    calls = watch_train(patch)
    capsys.readouterr()
    code = cli.main(argv)
  out, err = capsys.readouterr()
  assert code == 1 and calls == [failing]
  assert f"failed: {failing}: " in err
  assert "1 of 2 runs finished" in out
  assert [row["name"] for row in results.read(workdir)] == [good]

  # 3. The same names under another config are not this plan's runs: the plan is refused before
  # anything is trained or written, and plan.json and results.csv stay as they were.
  before = {name: storage.read_text(storage.join(workdir, name)) for name in ("plan.json",
                                                                          "results.csv")}
  with monkeypatch.context() as patch:
    calls = watch_train(patch)
    with pytest.raises(InputError, match="holds a run N[^ ]* with seed=0, the plan has 1"):
      cli.main([*argv, "--config.base.seed=1"])
  assert calls == []
  assert {name: storage.read_text(storage.join(workdir, name)) for name in before} == before


def test_an_interrupted_sweep_keeps_what_finished_and_resumes(text_corpus, tmp_path, monkeypatch):
  plan = plan_lib.build(tiny_sweep(text_corpus), str(tmp_path / "sweep"))
  first, second = (run.name for run in plan.runs)

  def interrupted(config, workdir, devices=None):
    if os.path.basename(workdir) == second:
      raise KeyboardInterrupt
    return stand_in_train(config, workdir, devices)

  with monkeypatch.context() as patch:
    watch_train(patch, interrupted)
    with pytest.raises(KeyboardInterrupt):
      runner.run(plan)
  assert [row["name"] for row in results.read(plan.workdir)] == [first]

  calls = watch_train(monkeypatch, stand_in_train)
  outcome = runner.run(plan)
  assert calls == [second]
  assert outcome.finished == (first, second) and not outcome.failed
  assert [row["name"] for row in results.read(plan.workdir)] == [first, second]


def test_a_diverged_run_is_a_failure_and_a_preemption_stops_the_sweep(text_corpus, tmp_path,
                                                                        monkeypatch):
  """The first run diverges; the second is preempted (SIGTERM), which ends the sweep there."""
  config = tiny_sweep(text_corpus)
  config.sweep.sizes = (4e3, 5.2e3, 6.4e3)
  plan = plan_lib.build(config, str(tmp_path / "sweep"))
  diverging, preempted, _ = (run.name for run in plan.runs)

  def train(config, workdir, devices=None):
    if os.path.basename(workdir) == diverging:
      raise trainer.Diverged("non-finite loss or gradient at step 3; last good checkpoint: none")
    return {"step": 2, "preempted": True, "signal": "SIGTERM"}

  calls = watch_train(monkeypatch, train)
  outcome = runner.run(plan)
  assert calls == [diverging, preempted]
  assert outcome.failed == {diverging: "Diverged: non-finite loss or gradient at step 3; last good "
                                       "checkpoint: none"}
  assert outcome.preempted == preempted and outcome.signal == "SIGTERM" and outcome.finished == ()
  assert results.read(outcome.results_path) == []


def test_dry_run_prints_the_plan_and_writes_nothing(text_corpus, tmp_path, monkeypatch, capsys):
  workdir = tmp_path / "sweep"
  calls = watch_train(monkeypatch)
  code = cli.main(["--config", str(TINY_SWEEP), "--workdir", str(workdir), "--dry-run",
                   f"--config.base.data.glob={text_corpus}"])
  out = capsys.readouterr().out
  assert code == 0 and calls == []
  assert not workdir.exists()
  lines = out.splitlines()
  assert lines[0].split()[:4] == ["name", "d_model", "n_layers", "n_heads"]
  assert [line.split()[0] for line in lines[1:3]] == [
      run.name for run in plan_lib.build(tiny_sweep(text_corpus), str(workdir)).runs]


@pytest.mark.parametrize("args,named", [
    ([], "--config"),
    (["--config", str(TINY_SWEEP)], "--workdir"),
    (["--config", "no/such/sweep.py", "--workdir", "w"], "sweep.py"),
    (["--config", str(TINY_SWEEP), "--workdir", "w", "--config.sweep.budgts=1e9"],
     "--config.sweep.budgts"),
    (["--config", str(TINY_SWEEP), "--workdir", "w", "--config.sweep.kind=grid",
      "--config.base.data.glob=*.txt"], "sweep.kind"),
], ids=["no_config", "no_workdir", "missing_file", "unknown_key", "bad_kind"])
def test_bad_command_line_is_an_input_error(args, named, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(InputError, match=named):
    cli.main(args)
  assert not (tmp_path / "w").exists()


def test_compile_cache_is_scoped_to_the_sweep(tmp_path):
  before = jax.config.jax_compilation_cache_dir
  with runner.compile_cache(str(tmp_path / "cache")):
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache")
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
  assert jax.config.jax_compilation_cache_dir == before


@pytest.mark.slow
def test_a_signalled_sweep_saves_and_exits_128_plus_the_signal(text_corpus, tmp_path):
  """`scaling sweep` stopped by SIGTERM mid-run exits 143, as `scaling train` does (130 for
  SIGINT, the same code path), after the run saved; re-running resumes and finishes it."""
  import signal
  import subprocess
  import sys
  import time

  workdir = tmp_path / "sweep"
  argv = [sys.executable, "-m", "scaling.cli", "sweep", "--config", str(TINY_SWEEP),
          "--workdir", str(workdir), f"--config.base.data.glob={text_corpus}",
          "--config.base.mesh.fsdp=1", "--config.base.log_every=1",
          "--config.sweep.tokens=(20480,)"]
  env = local.child_env(os.environ, 1)
  process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
  metrics = workdir / "runs"
  deadline = time.time() + 240
  while time.time() < deadline and process.poll() is None:
    rows = [read_metrics(str(p.parent)) for p in metrics.glob("*/metrics.jsonl")]
    if any(len(r) >= 3 for r in rows):
      break
    time.sleep(0.05)
  process.send_signal(signal.SIGTERM)
  out, err = process.communicate(timeout=120)
  assert process.returncode == 143, err[-2000:]
  assert "preempted: saved step" in err and "(SIGTERM)" in err and "Traceback" not in err
  done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "2 of 2 runs finished" in done.stdout


@pytest.mark.parametrize("where", ["local", "gs"])
def test_a_subset_rerun_keeps_every_finished_row_and_a_conflict_rewrites_nothing(
    where, text_corpus, tmp_path, monkeypatch, request):
  """results.csv lists every finished run of the directory's plans, on a local disk and on GCS."""
  workdir = str(tmp_path / "sweep") if where == "local" else request.getfixturevalue("gcs_dir")
  config = tiny_sweep(text_corpus)
  config.sweep.sizes = (4e3, 5.2e3, 6.4e3)
  full = plan_lib.build(config, workdir)
  calls = watch_train(monkeypatch, stand_in_train)
  assert runner.run(full).finished == tuple(run.name for run in full.runs)
  names = [row["name"] for row in results.read(workdir)]
  assert names == [run.name for run in full.runs] and calls == names

  config.sweep.sizes = (5.2e3,)  # the middle run only: it is finished, nothing trains
  subset = plan_lib.build(config, workdir)
  assert runner.run(subset).finished == (subset.runs[0].name,) and calls == names
  assert [row["name"] for row in results.read(workdir)] == names
  planned = storage.read_json(storage.join(workdir, "plan.json"))["runs"]
  assert [run["name"] for run in planned] == names

  config.sweep.sizes = (5.2e3, 8e3)
  config.base.seed = 1  # conflicts with the recorded run of size 5.2e3
  before = {name: storage.read_text(storage.join(workdir, name)) for name in ("plan.json",
                                                                          "results.csv")}
  with pytest.raises(InputError, match="seed=0, the plan has 1"):
    runner.run(plan_lib.build(config, workdir))
  assert {name: storage.read_text(storage.join(workdir, name)) for name in before} == before
  assert calls == names


@pytest.mark.slow
def test_a_tiny_sweep_trains_into_a_bucket_and_fit_and_plot_read_it(text_corpus, gcs_dir, capsys):
  from scaling.fit import cli as fit_cli
  from scaling.plots import cli as plots_cli

  config = tiny_sweep(text_corpus)
  config.base.mesh.fsdp = 1  # every run trains
  config.sweep.sizes = (4e3, 5.2e3, 6.4e3)
  plan = plan_lib.build(config, gcs_dir)
  outcome = runner.run(plan)
  assert outcome.finished == tuple(run.name for run in plan.runs) and not outcome.failed
  rows = results.read(gcs_dir)
  assert [row["name"] for row in rows] == list(outcome.finished)
  for run, row in zip(plan.runs, rows):
    assert row["loss"] == read_metrics(run.workdir)[-1]["eval_loss"]
    assert storage.list_names(storage.join(run.workdir, "checkpoints")) == [str(run.steps)]
  capsys.readouterr()
  assert fit_cli.main(["--data", gcs_dir, "--approach", "parametric", "--law", "power"]) == 0
  assert plots_cli.main([gcs_dir]) == 0
  assert storage.join(gcs_dir, "figures", "training_curves.png") in capsys.readouterr().out


def test_a_shapes_sweep_trains_each_architecture_as_planned_and_plots_it(text_corpus, tmp_path):
  """Kaplan Fig. 7 in miniature: a Transformer and an LSTM, each counted by its own architecture
  (what plan.json says is what run.json records), drawn by `scaling plot` with its table."""
  from scaling.plots import figures

  config = tiny_sweep(text_corpus)
  config.base.mesh.fsdp = 1
  config.base.eval_loss_by_position = True
  config.sweep.update(kind="shapes", sizes=(), shapes=("transformer:16:1", "lstm:16:1"),
                      tokens=(2048,), batch_size=8)  # 8 steps of 8 sequences × 32 tokens
  workdir = str(tmp_path / "sweep")
  plan = plan_lib.build(config, workdir)
  assert runner.run(plan).finished == ("transformer_d16_l1_D2.05e3", "lstm_d16_l1_D2.05e3")
  for run in plan.runs:
    recorded = rundir.RunDir(run.workdir).read_run()
    assert (recorded["params"], recorded["params_non_embedding"]) == (
        run.params, run.params_non_embedding)
    assert recorded["config"]["model"]["arch"] == run.model.arch and run.steps == 8
  drawn, _ = figures.draw(workdir)
  table = [row for row in csv.DictReader(open(drawn["architectures"][-1]))]
  assert [(row["run"], row["family"]) for row in table] == [
      ("transformer_d16_l1_D2.05e3", "transformer"), ("lstm_d16_l1_D2.05e3", "lstm")]
  assert all(row["loss_positions_65_plus"] == "" and float(row["loss_position_1"]) > 0
             for row in table)  # a 32-token context has no position beyond 64


def test_a_run_another_process_holds_is_put_off_then_listed_once_it_finished_there(
    text_corpus, tmp_path, monkeypatch, capsys):
  """Two sweeps on one directory never train a run twice: a run whose lease another process holds
  is trained by neither this sweep nor put in its results until that process finished it."""
  import threading

  from scaling.train import runstate

  plan = plan_lib.build(tiny_sweep(text_corpus), str(tmp_path / "sweep"))
  held, free = plan.runs
  other = runstate.Attempt(held.workdir, "other-sweep/run", 30.0)
  assert other.take()
  monkeypatch.setattr(runner, "POLL_S", 0.05)

  def other_finishes():  # once this sweep has trained the free run
    deadline = time.monotonic() + 300
    while not core.finished_row(free):
      if time.monotonic() > deadline:  # let the sweep go on, so the test fails instead of hanging
        other.end("failed", "the free run never finished")
        return
      time.sleep(0.02)
    stand_in_train(held.config, held.workdir)
    other.end("finished")

  finisher = threading.Thread(target=other_finishes)
  finisher.start()
  calls = watch_train(monkeypatch, stand_in_train)
  outcome = runner.run(plan)
  finisher.join()
  assert calls == [free.name]  # never the held one
  assert outcome.finished == (held.name, free.name) and not outcome.failed
  assert [row["name"] for row in results.read(plan.workdir)] == [held.name, free.name]
  assert f"{held.name}: held by {runstate.where()} (another process trains it)" in (
      capsys.readouterr().out)
  assert [a["owner"] for a in runstate.read_status(held.workdir)["attempts"]] == ["other-sweep/run"]


@pytest.mark.slow
def test_two_sweeps_started_a_second_apart_train_each_run_once(text_corpus, tmp_path):
  import subprocess
  import sys

  from scaling.train import runstate

  workdir = tmp_path / "sweep"
  argv = [sys.executable, "-m", "scaling.cli", "sweep", "--config", str(TINY_SWEEP),
          "--workdir", str(workdir), f"--config.base.data.glob={text_corpus}",
          "--config.base.mesh.fsdp=1", "--config.base.log_every=1"]
  env = local.child_env(os.environ, 1)
  first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
  time.sleep(1)
  second = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
  outs = [process.communicate(timeout=600)[0] for process in (first, second)]
  assert [first.returncode, second.returncode] == [0, 0], outs
  plan = plan_lib.build(tiny_sweep(text_corpus), str(workdir))
  for run in plan.runs:  # each run trained once, by one of them: no row doubled or interleaved
    assert [row["step"] for row in read_metrics(run.workdir)] == list(range(1, run.steps + 1))
    assert [a["outcome"] for a in runstate.read_status(run.workdir)["attempts"]] == ["finished"]
  assert all("2 of 2 runs finished" in out for out in outs)
  assert any("another process trains it" in out for out in outs)

"""Faults injected into real training processes: SIGTERM, SIGKILL (also mid-checkpoint), NaN.

Each check compares against an uninterrupted run: the resumed metrics.jsonl must have the same rows,
none missing or repeated, with bitwise-equal values (timings aside).
"""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import pytest

from scaling import storage
from scaling.launch import local
from scaling.train import trainer
from scaling.rundir import read_metrics
from small_runs import small_config

STEPS = 24
# Run in a child process so a signal hits a real trainer. One device keeps it quick; every run of a
# comparison uses the same environment, so the compiled programs are the same.
ENV = {**local.child_env(os.environ, 1), "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module", autouse=True)
def shared_compiles(child_compile_cache):
  """Every child of the module compiles the same programs: the first compiles, the others load."""
  ENV.update(child_compile_cache)
  yield
  for key in child_compile_cache:
    del ENV[key]


# Kills the process inside orbax's commit of checkpoint KILL_AT_STEP: the data is written to a
# temporary directory that is never renamed into place, as when a machine dies mid-save.
DRIVER = """
import os, signal, sys
from orbax.checkpoint._src.path import atomicity
kill_at = os.environ.get("KILL_AT_STEP")
finalize = atomicity.AtomicRenameTemporaryPath.finalize
async def finalize_or_die(self):
  if kill_at and self._final_path.name == kill_at:
    os.kill(os.getpid(), signal.SIGKILL)
  return await finalize(self)
atomicity.AtomicRenameTemporaryPath.finalize = finalize_or_die
hold = os.environ.get("HOLD_AFTER_LEASE")  # a path: once the run holds its lease, say so, wait
if hold:
  import time
  from scaling.train import trainer
  take = trainer.Claim.on_start
  def take_then_wait(self, start):
    take(self, start)
    open(hold + ".held", "w").close()
    while not os.path.exists(hold):
      time.sleep(0.05)
  trainer.Claim.on_start = take_then_wait
hold_rows = os.environ.get("HOLD_AFTER_ROWS")  # STEP:PATH: once the rows through STEP are in the
if hold_rows:  # store (a metrics chunk on GCS), say so at PATH and wait there to be killed
  import time
  from scaling import rundir
  step, path = hold_rows.split(":", 1)
  flush = rundir.MetricsWriter.flush
  def flush_then_hold(self):
    flush(self)
    if self._rows and self._rows[-1]["step"] >= int(step):
      open(path, "w").close()
      while True:
        time.sleep(1)
  rundir.MetricsWriter.flush = flush_then_hold
from scaling import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def train_args(text_corpus, workdir):
  overrides = dict(train_steps=STEPS, eval_every=8, checkpoint_every=4, keep_checkpoints=10,
                   warmup_steps=4, log_every=1)
  args = ["train", "--config", os.path.join(os.path.dirname(__file__), "..", "..", "configs",
                                            "tiny.py"), "--workdir", str(workdir)]
  config = small_config(text_corpus, **overrides)
  for group in ("model", "data"):
    args += [f"--config.{group}.{k}={v}" for k, v in config[group].items()]
  args += [f"--config.{k}={v}" for k, v in config.items() if k not in ("model", "data", "mesh",
                                                                       "distributed")]
  return args


def start(text_corpus, workdir, kill_at_step=None, stderr=subprocess.STDOUT, **variables):
  # os.environ as it is now, with the GCS emulator's variables
  env = {**os.environ, **ENV, "KILL_AT_STEP": str(kill_at_step or ""), **variables}
  # SIGINT as a terminal delivers it: a runner started in the background (nohup, &) hands its
  # children SIGINT ignored, and the trainer rightly leaves an ignored SIGINT alone.
  return subprocess.Popen([sys.executable, "-c", DRIVER, *train_args(text_corpus, workdir)],
                          env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_rows(workdir, n, process, timeout=120):
  deadline = time.time() + timeout
  while time.time() < deadline and process.poll() is None:
    if len(read_metrics(workdir)) >= n:
      return
    time.sleep(0.25 if storage.is_remote(workdir) else 0.02)
  raise AssertionError(f"run ended or stalled before {n} rows: {process.communicate()[0][-2000:]}")


def comparable(workdir):
  """Every row with its values, except the wall-clock throughput."""
  rows = read_metrics(workdir)
  return [{k: v for k, v in row.items() if k != "tokens_per_sec"} for row in rows]


def run_to_end(text_corpus, workdir):
  process = start(text_corpus, workdir)
  out, _ = process.communicate(timeout=300)
  assert process.returncode == 0, out[-2000:]
  return out


@pytest.fixture(scope="module")
def reference(text_corpus, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("uninterrupted")
  run_to_end(text_corpus, workdir)
  rows = comparable(workdir)
  assert [row["step"] for row in rows] == list(range(1, STEPS + 1))
  return rows


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_saves_exits_128_plus_it_and_resumes_exactly(text_corpus, reference, tmp_path,
                                                               signum, code):
  """SIGTERM (preemption) and SIGINT (Ctrl-C) both finish the step, save, print one line on
  stderr and exit 128 + the signal, so a wrapper tells a stopped run from a finished one."""
  process = start(text_corpus, tmp_path, stderr=subprocess.PIPE)
  wait_for_rows(tmp_path, 6, process)
  process.send_signal(signum)
  out, err = process.communicate(timeout=120)
  assert process.returncode == code, err[-2000:]
  assert err.startswith("preempted: saved step") and err.count("\n") == 1, err
  assert signum.name in err and "Traceback" not in out + err
  saved = int(err.split("preempted: saved step ")[1].split()[0])
  assert 6 <= saved < STEPS and os.path.isdir(tmp_path / "checkpoints" / str(saved))
  assert max(row["step"] for row in comparable(tmp_path)) <= saved
  run_to_end(text_corpus, tmp_path)
  assert comparable(tmp_path) == reference


def test_a_workdir_another_process_trains_is_refused_in_one_line(text_corpus, tmp_path, capsys):
  """`scaling train` takes the run's lease, as a sweep's runs do: a second one on the same workdir
  names who trains it and exits 2, writing nothing."""
  from scaling import cli
  from scaling.train import runstate

  other = runstate.acquire(str(tmp_path), "train/other", 60.0)
  before = sorted(os.listdir(tmp_path))
  assert cli.main(train_args(text_corpus, tmp_path)) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and f"being trained by {runstate.where()}" in err
  assert sorted(os.listdir(tmp_path)) == before
  other.release()


@pytest.mark.slow
def test_a_second_train_on_a_workdir_in_training_exits_2_and_the_first_is_untouched(
    text_corpus, reference, tmp_path):
  go = tmp_path.parent / "go"  # the first run waits after taking its lease until this exists
  first = subprocess.Popen([sys.executable, "-c", DRIVER, *train_args(text_corpus, tmp_path)],
                           env={**ENV, "HOLD_AFTER_LEASE": str(go)}, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + 240
  while not os.path.exists(f"{go}.held"):
    assert time.time() < deadline and first.poll() is None, first.communicate()[0][-2000:]
    time.sleep(0.05)
  try:
    second = subprocess.run([sys.executable, "-c", DRIVER, *train_args(text_corpus, tmp_path)],
                            env=ENV, capture_output=True, text=True, timeout=300)
  finally:
    go.touch()
  assert second.returncode == 2, second.stderr[-2000:]
  assert f":{first.pid} " in second.stderr and second.stderr.count("\n") == 1
  out, _ = first.communicate(timeout=300)
  assert first.returncode == 0, out[-2000:]
  assert comparable(tmp_path) == reference  # every row once, as an uninterrupted run's
  status = json.loads((tmp_path / "status.json").read_text())
  assert status["state"] == "finished" and len(status["attempts"]) == 1


@pytest.mark.slow
def test_sigkill_at_five_points_including_mid_checkpoint(text_corpus, reference, tmp_path):
  # (rows to wait for before SIGKILL, or a checkpoint step to die inside of)
  faults = [("rows", 2), ("rows", 9), ("checkpoint", 12), ("rows", 17), ("checkpoint", 24)]
  for kind, at in faults:
    if kind == "rows":
      process = start(text_corpus, tmp_path)
      wait_for_rows(tmp_path, at, process)
      process.kill()
    else:
      process = start(text_corpus, tmp_path, kill_at_step=at)
    process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL
    if kind == "checkpoint":  # the half-written checkpoint exists but is never the one picked
      names = os.listdir(tmp_path / "checkpoints")
      assert str(at) not in names and any(n.startswith(f"{at}.orbax-checkpoint-tmp") for n in names)
  run_to_end(text_corpus, tmp_path)
  assert comparable(tmp_path) == reference


@pytest.mark.slow
def test_sigkill_on_gcs_resumes_to_the_rows_of_a_local_run(text_corpus, reference, gcs_dir,
                                                           tmp_path):
  """On gs:// (the emulator): killed once rows past step 8 are readable (so mid-run, with chunks
  and checkpoints in the bucket), resumed: bitwise the uninterrupted local run, no row doubled.

  The run waits to be killed once it has written those rows: unheld, it trains the remaining 16
  steps and folds its chunks into metrics.jsonl within 0.7 s of them (measured), less than a poll
  of the bucket can be sure to catch, and was killed after its chunks were gone."""
  held = tmp_path / "held"
  process = start(text_corpus, gcs_dir, HOLD_AFTER_ROWS=f"9:{held}")
  deadline = time.time() + 240
  while not held.exists():
    assert time.time() < deadline and process.poll() is None, process.communicate()[0][-2000:]
    time.sleep(0.05)
  assert len(read_metrics(gcs_dir)) >= 9
  process.kill()
  process.communicate(timeout=60)
  assert process.returncode == -signal.SIGKILL
  assert storage.list_names(storage.join(gcs_dir, "metrics"))  # the chunks of a run cut off
  run_to_end(text_corpus, gcs_dir)
  assert comparable(gcs_dir) == reference
  assert storage.list_names(storage.join(gcs_dir, "metrics")) == []


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(text_corpus, tmp_path):
  config = small_config(text_corpus, learning_rate=1e9, train_steps=30, eval_every=30,
                        checkpoint_every=2)
  with pytest.raises(trainer.Diverged, match=r"non-finite .* at step (\d+)") as failure:
    trainer.train(config, str(tmp_path), devices=jax.devices()[:1])
  bad_step = int(str(failure.value).split(" at step ")[1].split(";")[0])
  good = sorted(int(n) for n in os.listdir(tmp_path / "checkpoints") if n.isdigit())
  assert good and good[-1] < bad_step and f"step {good[-1]} in" in str(failure.value)
  rows = read_metrics(tmp_path)
  assert all(row["step"] < bad_step for row in rows)
  assert all(json.dumps(row).count("NaN") == 0 for row in rows)


def snapshot(workdir) -> dict:
  """Every file under workdir with its bytes: proof that a refused run changed nothing."""
  files = {}
  for root, _, names in os.walk(workdir):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, workdir)] = f.read()
  return files


def test_corrupt_checkpoint_is_one_line_exit_2_and_nothing_changes(text_corpus, reference, tmp_path):
  workdir = tmp_path / "run"
  process = start(text_corpus, workdir)
  wait_for_rows(workdir, 5, process)
  process.send_signal(signal.SIGTERM)
  process.communicate(timeout=120)
  assert process.returncode == 143
  latest = max(int(n) for n in os.listdir(workdir / "checkpoints") if n.isdigit())
  for root, _, names in os.walk(workdir / "checkpoints" / str(latest)):
    for name in names:
      with open(os.path.join(root, name), "wb") as f:
        f.write(b"\x00garbage")
  before = snapshot(workdir)
  process = subprocess.run([sys.executable, "-c", DRIVER, *train_args(text_corpus, workdir)],
                           env=ENV, capture_output=True, text=True, timeout=300)
  assert process.returncode == 2
  assert process.stderr.startswith("error: ") and process.stderr.count("\n") == 1, process.stderr
  assert f"checkpoint {latest}" in process.stderr
  assert snapshot(workdir) == before


def test_truncated_metrics_line_is_skipped_with_a_warning(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.9}\n{"step": 3, "lo')
  with pytest.warns(UserWarning, match="incomplete line"):
    rows = read_metrics(tmp_path)
  assert [row["step"] for row in rows] == [1, 2]


@pytest.mark.slow
def test_a_step_out_of_memory_is_one_line_exit_1_and_nothing_written(tmp_path, capsys):
  """The state fits (checked up front), the step's attention scores (16 × 4 × 65536² floats, 7.7 TB)
  cannot: the runtime error becomes one line, and the workdir is never made. XLA's attention, which
  stores the scores (`auto` takes the blockwise kernel at this length, which grows instead until the
  kernel's OOM killer stops the process)."""
  from scaling import cli

  tiny = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "tiny.py")
  workdir = tmp_path / "run"
  code = cli.main(["train", "--config", tiny, "--workdir", str(workdir), "--config.progress=false",
                   "--config.model.seq_len=65536", "--config.model.attention=xla",
                   "--config.train_steps=2",
                   "--config.eval_batches=1"])
  err = capsys.readouterr().err
  assert code == 1 and err.startswith("error: out of memory in step 1") and err.count("\n") == 1
  assert not workdir.exists()

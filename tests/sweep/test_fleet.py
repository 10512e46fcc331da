"""The Ray executor on a local Ray cluster started here, with a fake TPU slice.

One cluster for the module: a head node with 2 CPUs; a fake 2-host v4-16 slice of two more nodes,
each with 1 CPU, 4 TPU chips, the slice's resource and the labels Ray gives TPU hosts (slice name,
worker id, pod type), worker 0 with the slice's head resource; 4 simulated CPU devices per worker
process.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest
import ray
from test_runner import TINY_SWEEP, tiny_sweep

from scaling.errors import InputError
from scaling.launch import local
from scaling.rundir import read_metrics
from scaling.sweep import cli, fleet, resources, results, runner, runs_cli
from scaling.train import runstate
from scaling.sweep import plan as plan_lib
from scaling.train import trainer

SLICE = "fake-v4-16"
WORKER_DEVICES = 4


@pytest.fixture(scope="module")
def cluster(gcs):
  """The module's Ray cluster; its workers see the GCS emulator (`gcs`) through the environment."""
  import emulated_gcs
  from ray.cluster_utils import Cluster

  emulator = {key: os.environ[key] for key in emulated_gcs.environment(0)}  # set by the `gcs` fixture
  # A test run started in the background (`cmd &`, some CI runners) ignores SIGINT, and the
  # cluster's processes would inherit that: ray.cancel, which interrupts a task with SIGINT, would
  # then stop nothing. Started from a process with the default handler, they get the default.
  if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
  nodes = Cluster(initialize_head=True,
                  head_node_args={"num_cpus": 2, "include_dashboard": False})
  for worker in range(2):
    nodes.add_node(num_cpus=1, resources={"TPU": 4, SLICE: 1,
                                          **({"TPU-v4-16-head": 1} if worker == 0 else {})},
                   labels={fleet.SLICE_LABEL: SLICE, fleet.WORKER_LABEL: str(worker),
                           fleet.POD_TYPE_LABEL: "v4-16"})
  ray.init(address=nodes.address, log_to_driver=False, logging_level="WARNING",
           runtime_env={"env_vars": {
               **emulator, "JAX_PLATFORMS": "cpu",
               "XLA_FLAGS": local.child_env(os.environ, WORKER_DEVICES)["XLA_FLAGS"]}})
  yield nodes.address
  ray.shutdown()
  nodes.shutdown()


def placement_groups_left() -> list[str]:
  """The names of this cluster's placement groups that were not removed."""
  return [pg["name"] for pg in ray.util.placement_group_table().values()
          if pg["state"] != "REMOVED"]


def four_runs(text_corpus):
  config = tiny_sweep(text_corpus)
  config.sweep.sizes = (4e3, 6.4e3, 9.5e3, 1.26e4)  # d_model 16, 20, 24, 28: all fit mesh.fsdp=4
  config.base.log_every = 1
  return config


def losses(run) -> list[float]:
  return [row["loss"] for row in read_metrics(run.workdir)]


def attempts(run) -> list[dict]:
  return runstate.read_status(run.workdir)["attempts"]


def said(*outputs: str) -> str:
  """The lines of a driver's stdout and stderr that say how its runs ended, whole: what a failed
  assertion shows (pytest cuts a long string in the middle, Ray's log lines come in between)."""
  words = ("preempted", "finished", "failed", "stopping", "interrupted", "Error")
  return "\n".join(line for output in outputs for line in output.splitlines()
                   if any(word in line for word in words))


@pytest.mark.parametrize("sizes", [
    pytest.param((4e3, 6.4e3), id="two_runs"),  # two at once: the default suite's check
    pytest.param((4e3, 6.4e3, 9.5e3, 1.26e4), marks=pytest.mark.slow, id="four_runs"),
])
def test_a_ray_sweep_equals_the_local_one_and_a_rerun_trains_nothing(cluster, text_corpus,
                                                                      tmp_path, capsys, sizes):
  config = four_runs(text_corpus)
  config.sweep.sizes = sizes
  local_plan = plan_lib.build(config, str(tmp_path / "local"))
  ray_plan = plan_lib.build(config, str(tmp_path / "ray"))
  local = runner.run(local_plan, devices=jax.devices()[:WORKER_DEVICES])
  outcome = fleet.run(ray_plan)
  assert outcome.finished == local.finished == tuple(r.name for r in ray_plan.runs)
  assert not outcome.failed
  # Same program on the same 4-device mesh, in another process: bitwise equal.
  assert results.read(outcome.results_path) == results.read(local.results_path)
  for ours, theirs in zip(ray_plan.runs, local_plan.runs):
    assert losses(ours) == losses(theirs) and len(losses(ours)) == ours.steps
    [attempt] = attempts(ours)
    assert attempt["outcome"] == "finished" and attempt["resources"] == "cpu:1"
  starts = sorted(a["started"] for run in ray_plan.runs for a in attempts(run))
  ends = sorted(a["ended"] for run in ray_plan.runs for a in attempts(run))
  assert starts[1] < ends[0]  # two runs were in flight at once

  # A re-run finds every run finished and submits nothing.
  again = fleet.run(ray_plan)
  assert again.finished == outcome.finished
  assert [len(attempts(run)) for run in ray_plan.runs] == [1] * len(sizes)

  capsys.readouterr()
  assert runs_cli.main([str(tmp_path / "ray"), "--json"]) == 0
  lines = json.loads(capsys.readouterr().out)
  assert [line["state"] for line in lines] == ["finished"] * len(sizes)
  assert [(line["step"], line["total_steps"]) for line in lines] == [(8, 8)] * len(sizes)
  assert [line["eval_loss"] for line in lines] == [row["loss"] for row in results.read(
      outcome.results_path)]


def test_a_failing_run_fails_once_and_the_others_finish(cluster, text_corpus, tmp_path, capsys):
  workdir = tmp_path / "sweep"
  code = cli.main(["--config", str(TINY_SWEEP), "--workdir", str(workdir), "--executor", "ray",
                   f"--config.base.data.glob={text_corpus}"])
  err = capsys.readouterr().err
  failing, good = plan_lib.build(tiny_sweep(text_corpus), str(workdir)).runs
  assert code == 1
  assert f"failed: {failing.name}: model.d_model=18 is not divisible by mesh.fsdp=4" in err
  assert [row["name"] for row in results.read(str(workdir))] == [good.name]
  status = runstate.read_status(failing.workdir)
  assert status["state"] == "failed" and "mesh.fsdp=4" in status["reason"]
  assert len(status["attempts"]) == 1  # sweep.failure_retries = 0: not retried


@ray.remote(num_cpus=0)
def _host_probe() -> dict:
  """Where a host task ran: its node's labels."""
  return ray.get_runtime_context().get_node_labels()


@ray.remote(max_retries=0)
def _attempt_probe(spec, reservation) -> dict:
  """Places a slice run's hosts as fleet's attempt does, each a probe instead of a trainer."""
  began = time.time()
  hosts = ray.get([_host_probe.options(**fleet._host_options(spec, reservation, k)).remote()
                   for k in range(spec.hosts)])
  time.sleep(0.05)  # held a moment: two attempts on one slice at once would overlap
  return {"attempt": ray.get_runtime_context().get_node_labels(), "hosts": hosts,
          "held": (began, time.time())}


@pytest.mark.parametrize("submissions", [
    pytest.param(4, id="four"),  # the default suite's check
    pytest.param(30, marks=pytest.mark.slow, id="thirty"),  # ~3 s each at load 15
])
def test_slice_runs_each_hold_the_whole_slice_with_host_k_on_worker_k(cluster, submissions):
  """Attempts submitted at once, reserved as the driver reserves them and released as each ends:
  one at a time on the slice, the attempt on worker 0, host k on worker k, every reservation
  removed."""
  spec = resources.parse("v4-16")
  reservations = {}
  for i in range(submissions):
    reservation = fleet._reserve_slice(spec, f"probe/{i}")
    ref = _attempt_probe.options(**fleet._options(spec, reservation)).remote(spec, reservation)
    reservations[ref] = reservation
  placed, pending = [], list(reservations)
  while pending:
    [ready], pending = ray.wait(pending, num_returns=1, timeout=120)
    placed.append(ray.get(ready))
    fleet._release(reservations[ready])
  for attempt in placed:
    assert attempt["attempt"][fleet.WORKER_LABEL] == "0"
    assert [(host[fleet.SLICE_LABEL], host[fleet.WORKER_LABEL]) for host in attempt["hosts"]] == [
        (SLICE, "0"), (SLICE, "1")]
  assert len(placed) == submissions
  held = sorted(attempt["held"] for attempt in placed)
  assert all(end <= next_start for (_, end), (next_start, _) in zip(held, held[1:]))
  assert placement_groups_left() == []


def test_a_slice_run_that_fails_releases_its_slice(cluster, text_corpus, tmp_path):
  config = four_runs(text_corpus)
  config.sweep.sizes = (5.2e3,)  # d_model 18: not divisible by mesh.fsdp=4, on either host
  config.sweep.resources = ("v4-16",)
  plan = plan_lib.build(config, str(tmp_path / "slice"))
  [run] = plan.runs
  outcome = fleet.run(plan)
  assert outcome.failed and not outcome.finished
  status = runstate.read_status(run.workdir)
  assert status["state"] == "failed" and "not divisible by mesh.fsdp=4" in status["reason"]
  assert status["reason"].startswith("host ")
  assert len(status["attempts"]) == 1
  assert placement_groups_left() == []


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # here JAX is loaded; in Ray, not
def test_a_host_whose_slice_mates_never_join_is_preempted(text_corpus, tmp_path):
  """Host 1 of 2 whose coordinator (host 0) never comes up: JAX aborts the process when the join
  times out; that is a preemption (the run is re-queued), not a failure."""
  from scaling.launch.local import free_port

  config = four_runs(text_corpus).base
  config.distributed.initialize = True
  config.distributed.coordinator_address = f"127.0.0.1:{free_port()}"
  config.distributed.num_processes, config.distributed.process_id = 2, 1
  began = time.monotonic()
  outcome = fleet._train_process(config, str(tmp_path / "run"), str(tmp_path), [],
                                 join_timeout_s=2)
  assert outcome == {"outcome": "preempted", "reason": "jax.distributed.initialize timed out "
                     "after 2 s: a host of the slice never joined"}
  assert time.monotonic() - began < 60
  assert not (tmp_path / "run").exists()  # nothing trained, nothing written


@pytest.mark.parametrize("resources,named", [
    ('("cpu:3",)', "CPU 3 on one node"),
    ('("v4-32",)', "needs a v4-32 slice"),
    ('("v5litepod-16",)', "TPU-v5litepod-16-head"),
    ('("gpu:1",)', "GPU 1"),
])
def test_a_resource_the_cluster_lacks_is_one_clear_error(cluster, text_corpus, tmp_path,
                                                         resources, named):
  workdir = tmp_path / "sweep"
  with pytest.raises(InputError, match=named) as error:
    cli.main(["--config", str(TINY_SWEEP), "--workdir", str(workdir), "--executor", "ray",
              f"--config.base.data.glob={text_corpus}", f"--config.sweep.resources={resources}"])
  assert "\n" not in str(error.value) and "sweep.resources" in str(error.value)
  assert not workdir.exists()


def test_an_address_where_no_cluster_answers_is_one_clear_error(text_corpus, tmp_path):
  from scaling.launch.local import free_port

  address = f"127.0.0.1:{free_port()}"
  with pytest.raises(InputError, match=f"--ray-address {address}: no Ray cluster answers"):
    cli.main(["--config", str(TINY_SWEEP), "--workdir", str(tmp_path / "sweep"), "--executor",
              "ray", "--ray-address", address, f"--config.base.data.glob={text_corpus}"])
  assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("argv,named", [
    (["--executor", "slurm"], "--executor must be one of local, ray"),
    (["--ray-address", "h:1"], "--ray-address needs --executor ray"),
    (["--executor"], "--executor needs a value"),
])
def test_bad_executor_flags_are_input_errors(text_corpus, tmp_path, argv, named):
  with pytest.raises(InputError, match=named):
    cli.main(["--config", str(TINY_SWEEP), "--workdir", str(tmp_path / "sweep"),
              f"--config.base.data.glob={text_corpus}", *argv])
  assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_a_sweep_into_a_bucket_equals_the_local_one(cluster, gcs_dir, text_corpus, tmp_path,
                                                    capsys):
  config = four_runs(text_corpus)
  config.sweep.sizes = (4e3, 6.4e3)
  remote = plan_lib.build(config, f"{gcs_dir}/sweep")
  local = plan_lib.build(config, str(tmp_path / "local"))
  outcome = fleet.run(remote)
  runner.run(local, devices=jax.devices()[:WORKER_DEVICES])
  assert outcome.finished == tuple(r.name for r in remote.runs)
  assert results.read(outcome.results_path) == results.read(local.workdir)
  for ours, theirs in zip(remote.runs, local.runs):
    assert losses(ours) == losses(theirs)
  capsys.readouterr()
  assert runs_cli.main([f"{gcs_dir}/sweep", "--json"]) == 0
  assert [line["state"] for line in json.loads(capsys.readouterr().out)] == ["finished"] * 2


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_retried_and_resumes_exactly(cluster, text_corpus, tmp_path):
  config = four_runs(text_corpus)
  config.sweep.sizes = (4e3,)
  config.sweep.tokens = (64 * 512,)  # 64 steps of 16 sequences × 32 tokens
  config.base.checkpoint_every = 8
  plan = plan_lib.build(config, str(tmp_path / "ray"))
  [run] = plan.runs
  killed = []

  def kill_after_a_checkpoint():
    while not killed:
      status = runstate.read_status(run.workdir)
      rows = read_metrics(run.workdir)
      if status["state"] == "running" and rows and rows[-1]["step"] >= 10:
        pid = int(status["where"].rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)  # the Ray worker; its training process dies with it
        killed.append(rows[-1]["step"])
      time.sleep(0.02)

  killer = threading.Thread(target=kill_after_a_checkpoint, daemon=True)
  killer.start()
  outcome = fleet.run(plan)
  killer.join(timeout=1)
  assert killed and killed[0] < run.steps
  assert outcome.finished == (run.name,)
  first, second = attempts(run)
  assert first["outcome"] == "died" and second["outcome"] == "finished"

  reference = plan_lib.build(config, str(tmp_path / "local"))
  runner.run(reference, devices=jax.devices()[:WORKER_DEVICES])
  steps = [row["step"] for row in read_metrics(run.workdir)]
  assert steps == list(range(1, run.steps + 1))  # no row doubled or lost
  assert losses(run) == losses(reference.runs[0])  # exact resume from the step-8 checkpoint
  assert results.read(outcome.results_path) == results.read(reference.workdir)


@pytest.mark.slow
def test_a_run_on_a_two_host_slice_equals_one_process(cluster, text_corpus, tmp_path):
  config = four_runs(text_corpus)
  config.sweep.sizes = (4e3,)
  config.sweep.resources = ("v4-16",)  # 2 hosts × 4 chips: 2 processes × 4 devices
  plan = plan_lib.build(config, str(tmp_path / "slice"))
  [run] = plan.runs
  outcome = fleet.run(plan)
  assert outcome.finished == (run.name,) and not outcome.failed
  assert placement_groups_left() == []  # the slice is free again
  with open(os.path.join(run.workdir, "run.json")) as f:
    recorded = json.load(f)
  assert recorded["process_count"] == 2 and recorded["device_count"] == 2 * WORKER_DEVICES

  one = tmp_path / "one"
  trainer.train(run.config, str(one), jax.devices()[:2 * WORKER_DEVICES])
  ours = losses(run)
  theirs = [row["loss"] for row in read_metrics(str(one))]
  # The same mesh (data 2 × fsdp 4); across processes the reductions run in another order.
  np.testing.assert_allclose(ours, theirs, rtol=1e-5)


@pytest.mark.slow
def test_a_slice_run_stopped_by_ctrl_c_saves_its_stop_step_and_resumes_from_it(
    cluster, text_corpus, tmp_path):
  """The stop's checkpoint is a multi-process save: the attempt waits until both hosts' processes
  have finished it before the driver releases the slice (which kills what still runs there)."""
  config = four_runs(text_corpus)
  config.sweep.sizes, config.sweep.tokens = (4e3,), (204800,)  # 400 steps
  config.sweep.resources = ("v4-16",)
  config.base.checkpoint_every = 1000000
  plan = plan_lib.build(config, str(tmp_path / "slice"))
  [run] = plan.runs

  def interrupt_once_it_trains():  # Ctrl-C to this process, i.e. to the driver
    deadline = time.monotonic() + 240
    while not read_metrics(run.workdir) and time.monotonic() < deadline:
      time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)

  # Started in the background (`cmd &`) this process inherits SIGINT ignored (fleet keeps that);
  # so do the cluster's workers, where ray.cancel then interrupts nothing: run it in the foreground.
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  threading.Thread(target=interrupt_once_it_trains, daemon=True).start()
  try:
    outcome = fleet.run(plan)
  finally:
    signal.signal(signal.SIGINT, previous)
  assert outcome.signal == "SIGINT" and not outcome.finished
  status = runstate.read_status(run.workdir)
  assert status["state"] == "preempted" and status["reason"] == fleet.STOPPED_BY_DRIVER
  stopped_at = read_metrics(run.workdir)[-1]["step"]
  assert 0 < stopped_at < run.steps
  assert placement_groups_left() == []
  checkpoints = os.path.join(run.workdir, "checkpoints")
  assert sorted(os.listdir(checkpoints)) == [str(stopped_at)]  # finalized, no *-tmp left

  outcome = fleet.run(plan)  # the same command resumes from the stop's checkpoint
  assert outcome.finished == (run.name,) and not outcome.failed
  assert [a["outcome"] for a in attempts(run)] == ["preempted", "finished"]
  steps = [row["step"] for row in read_metrics(run.workdir)]
  assert steps == list(range(1, run.steps + 1))  # no row doubled or lost
  with open(os.path.join(run.workdir, "run.json")) as f:
    assert json.load(f)["resumed_from_step"] == stopped_at


@pytest.mark.slow
def test_a_second_driver_on_the_same_sweep_trains_nothing_twice(cluster, text_corpus, tmp_path):
  workdir = tmp_path / "sweep"
  config = four_runs(text_corpus)
  plan = plan_lib.build(config, str(workdir))
  argv = [sys.executable, "-m", "scaling.cli", "sweep", "--config", str(TINY_SWEEP),
          "--workdir", str(workdir), "--executor", "ray", "--ray-address", cluster,
          f"--config.base.data.glob={text_corpus}", "--config.base.log_every=1",
          "--config.sweep.sizes=(4e3,6.4e3,9.5e3,1.26e4)"]
  first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  deadline = time.monotonic() + 120
  while not any(runstate.read_status(run.workdir)["state"] == "running" for run in plan.runs):
    assert time.monotonic() < deadline and first.poll() is None
    time.sleep(0.2)
  second = subprocess.run(argv, capture_output=True, text=True, timeout=300)
  first_out = first.communicate(timeout=300)[0]
  assert first.returncode == 0, first_out[-2000:]
  assert second.returncode == 0, second.stderr[-2000:]
  for run in plan.runs:  # each run trained by exactly one of the drivers, once
    assert [a["outcome"] for a in attempts(run)] == ["finished"], attempts(run)
  assert [row["name"] for row in results.read(str(workdir))] == [run.name for run in plan.runs]


@pytest.mark.slow
def test_a_branched_ray_sweep_equals_the_local_one(cluster, text_corpus, tmp_path):
  config = four_runs(text_corpus)
  config.sweep.kind = "curves"
  config.sweep.sizes = (4e3, 6.4e3)
  config.sweep.tokens = tuple(10 * k * 16 * 32 for k in (1, 2, 4))  # 10, 20, 40 steps
  config.sweep.branches = "cooldown"
  config.base.keep_checkpoints = 1
  plan = plan_lib.build(config, str(tmp_path / "ray"))
  local = plan_lib.build(config, str(tmp_path / "local"))
  outcome = fleet.run(plan)
  runner.run(local, devices=jax.devices()[:WORKER_DEVICES])
  assert outcome.finished == tuple(run.name for run in plan.runs) and not outcome.failed
  assert results.read(outcome.results_path) == results.read(local.workdir)
  for ours, theirs in zip(plan.runs, local.runs):
    assert losses(ours) == losses(theirs)
  for unit in (*plan.trunks, *plan.runs):  # each trunk and branch trained once, by one attempt
    assert [a["outcome"] for a in attempts(unit)] == ["finished"], attempts(unit)


def test_an_address_that_accepts_but_is_no_ray_head_fails_fast_and_quietly(
    text_corpus, tmp_path, monkeypatch, capfd):
  """A port that accepts connections but never answers (as a proxy in front of an unreachable
  host does): one line within the probe's timeout, none of Ray's C++ logging, nothing written."""
  import socket

  listener = socket.socket()
  listener.bind(("127.0.0.1", 0))
  listener.listen(8)  # the kernel completes the handshake; nothing ever answers
  address = f"127.0.0.1:{listener.getsockname()[1]}"
  monkeypatch.setattr(fleet, "PROBE_TIMEOUT_S", 1.0)
  began = time.monotonic()
  try:
    with pytest.raises(InputError, match=f"--ray-address {address}: no Ray cluster answers") as e:
      cli.main(["--config", str(TINY_SWEEP), "--workdir", str(tmp_path / "sweep"), "--executor",
                "ray", "--ray-address", address, f"--config.base.data.glob={text_corpus}"])
  finally:
    listener.close()
  assert time.monotonic() - began < 15 and "\n" not in str(e.value)
  assert capfd.readouterr().err == ""
  assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signalled_driver_saves_every_run_in_flight_and_lists_the_one_that_finished(
    cluster, text_corpus, tmp_path, signum, code):
  """Ctrl-C or SIGTERM to the driver: the run in flight stops at a saved checkpoint (only saved at
  its end otherwise) and is recorded preempted; the run that finished as the signal came is
  finished, with its results row; the same command resumes the other one exactly where it stopped."""
  workdir = tmp_path / "sweep"
  argv = [sys.executable, "-m", "scaling.cli", "sweep", "--config", str(TINY_SWEEP),
          "--workdir", str(workdir), "--executor", "ray", "--ray-address", cluster,
          f"--config.base.data.glob={text_corpus}", "--config.base.log_every=1",
          "--config.base.checkpoint_every=1000000", "--config.base.eval_every=8",
          "--config.sweep.kind=curves", "--config.sweep.sizes=(4e3,)",
          "--config.sweep.tokens=(4096,204800)"]  # 8 and 400 steps
  config = four_runs(text_corpus)
  config.sweep.kind, config.sweep.sizes, config.sweep.tokens = "curves", (4e3,), (4096, 204800)
  short, long = sorted(plan_lib.build(config, str(workdir)).runs, key=lambda run: run.steps)
  driver = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
  # The signal comes once the short run has written its last row and the long one trains (it has a
  # row: compiled, so it stops at a checkpoint), far from its end. Both evaluate at step 8: with
  # the sweep's final eval only, the short run's last row waited on compiling the eval step while
  # the long run ran on, and under load it could finish all 400 steps first (issue 32).
  deadline = time.monotonic() + 240
  while len(read_metrics(short.workdir)) < short.steps or not read_metrics(long.workdir):
    assert time.monotonic() < deadline and driver.poll() is None, driver.communicate()
    time.sleep(0.01)
  long_rows = len(read_metrics(long.workdir))
  driver.send_signal(signum)
  out, err = driver.communicate(timeout=180)
  ended = f"{said(out, err)}\n(the long run had {long_rows} of {long.steps} rows at the signal)"
  assert driver.returncode == code, f"{err[-3000:]}\n{ended}"
  assert f"preempted during {long.name} ({signum.name})" in err, ended

  assert [row["name"] for row in results.read(str(workdir))] == [short.name]
  assert runstate.read_status(short.workdir)["state"] == "finished"
  status = runstate.read_status(long.workdir)
  assert status["state"] == "preempted" and "stopped by the driver" in status["reason"]
  assert not runstate.holder(long.workdir).live()
  stopped_at = read_metrics(long.workdir)[-1]["step"]
  assert 0 < stopped_at < long.steps
  saved = [n for n in os.listdir(os.path.join(long.workdir, "checkpoints")) if n.isdigit()]
  assert saved == [str(stopped_at)]  # saved at the stop (checkpoint_every is past the end)

  again = subprocess.run(argv, capture_output=True, text=True, timeout=600)
  assert again.returncode == 0, again.stderr[-3000:]
  assert [row["step"] for row in read_metrics(long.workdir)] == list(range(1, long.steps + 1))
  assert [a["outcome"] for a in attempts(long)] == ["preempted", "finished"]
  assert [a["outcome"] for a in attempts(short)] == ["finished"]
  assert [row["name"] for row in results.read(str(workdir))] == [short.name, long.name]

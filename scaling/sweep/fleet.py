"""`scaling sweep --executor ray`: every unfinished run of a plan as Ray work, as many at once as
the cluster holds, each sized by `config.sweep.resources` (resources.py).

The engine only places work; what is true about a run lives in its workdir (runstate.py): an
attempt first takes the run's lease, renews it while it trains and releases it at the end, so two
drivers, or a driver restarted after its node died, never train a run twice. Each attempt trains in
a fresh `python -m scaling.sweep.worker` process (one per host of a TPU slice, joined by
`jax.distributed`), which dies with the Ray worker that started it. A worker that dies or a run that
gets SIGTERM is re-queued and resumes from its checkpoint (`sweep.preemption_retries`); a run that
raises is failed with its one-line reason (`sweep.failure_retries`, default 0). What is done and
what may start next (a branch once its trunk's fork checkpoint is in storage) come from core.py,
as for the local executor, and so does results.csv.
"""

import ctypes
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from scaling import rundir
from scaling.errors import InputError, first_line
from scaling.sweep import core, resources, runner, runstate, worker
from scaling.sweep.plan import Plan, Run

POLL_S = 2.0  # how often the driver looks up from waiting on its runs
HELD_ELSEWHERE_S = 5.0  # how often it looks at a run whose lease someone else holds
STOP_TIMEOUT_S = 60  # how long a run asked to stop (SIGTERM) may take to save its checkpoint
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGKILL, signal.SIGINT)


def _check_reachable(address: str) -> None:
  """A head that does not answer would keep ray.init retrying for minutes: say so in seconds."""
  import socket

  host, _, port = address.split("://")[-1].rpartition(":")
  if address == "auto" or not host or not port.isdigit():
    return
  try:
    socket.create_connection((host, int(port)), timeout=10).close()
  except OSError as e:
    raise InputError(f"--ray-address {address}: no Ray cluster answers there ({e})") from None


def connect(address: str | None) -> str:
  """Joins the Ray cluster at `address`, or starts a local one; returns what the driver calls it."""
  joining = address or os.environ.get("RAY_ADDRESS")
  if joining:
    _check_reachable(joining)
  if not ray.is_initialized():
    try:  # a cluster of our own needs no dashboard; an existing one keeps its own
      ray.init(address=address or None, logging_level="WARNING",
               **({} if joining else {"include_dashboard": False}))
    except (ConnectionError, ValueError, RuntimeError) as e:
      raise InputError(
          f"--ray-address {address}: cannot join the Ray cluster ({first_line(e)})") from None
  return address or ray.get_runtime_context().gcs_address


def _demands(spec: resources.Spec) -> list[dict]:
  """Each task of one attempt, as the resources one node must have for it."""
  if spec.kind == "cpu":
    return [{"CPU": spec.count}]
  if spec.kind == "gpu":
    return [{"GPU": spec.count, "CPU": 1}]
  return [{spec.head_resource: 1}, {"TPU": spec.chips_per_host, "CPU": 1}]


def check_feasible(specs: dict[str, resources.Spec], cluster: str) -> None:
  """A run the cluster can never place would wait forever: name it and stop before anything runs."""
  nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
  for name, spec in specs.items():
    for demand in _demands(spec):
      if not any(all(node.get(key, 0) >= value for key, value in demand.items()) for node in nodes):
        wanted = ", ".join(f"{key} {value:g}" for key, value in demand.items())
        raise InputError(f"run {name} needs {spec.text} ({wanted} on one node), which no node of "
                         f"the Ray cluster at {cluster} has; add such a node or change "
                         "sweep.resources")


_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: between fork and exec, only a call
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
  """In the child, before exec: SIGKILL it when the Ray worker that started it dies (Linux)."""
  _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _train_process(config, workdir: str, sweep_workdir: str, processes: list) -> dict:
  """Trains in a fresh worker process; its outcome, or preempted/failed from how it ended."""
  with tempfile.TemporaryDirectory() as tmp:
    outcome_path = os.path.join(tmp, "outcome.json")
    child = subprocess.Popen([sys.executable, "-m", "scaling.sweep.worker", outcome_path],
                             stdin=subprocess.PIPE, preexec_fn=_die_with_parent)
    processes.append(child)
    child.stdin.write(pickle.dumps((config, workdir, sweep_workdir)))
    child.stdin.close()
    forward = threading.current_thread() is threading.main_thread()
    if forward:  # a preempted VM sends SIGTERM to this process too: let the run save first
      previous = signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    try:
      code = child.wait()
    except KeyboardInterrupt:  # ray.cancel: stop the run at a checkpoint, then give up the task
      child.send_signal(signal.SIGTERM)
      try:
        child.wait(timeout=STOP_TIMEOUT_S)
      except subprocess.TimeoutExpired:
        child.kill()
      raise
    finally:
      if forward:
        signal.signal(signal.SIGTERM, previous)
    if os.path.exists(outcome_path):
      with open(outcome_path, encoding="utf-8") as f:
        return json.load(f)
  if code == worker.PREEMPTED_EXIT or -code in PREEMPTION_SIGNALS:
    return {"outcome": "preempted", "reason": f"worker process ended with code {code}"}
  return {"outcome": "failed", "reason": f"worker process exited with code {code}"}


@ray.remote(max_retries=0)
def _host_process(config, workdir: str, sweep_workdir: str) -> dict:
  return _train_process(config, workdir, sweep_workdir, [])


def _combine(outcomes: list[dict]) -> dict:
  """A slice's outcome from its processes': a failure wins, then a preemption."""
  for kind in ("failed", "preempted"):
    for outcome in outcomes:
      if outcome["outcome"] == kind:
        return outcome
  return {"outcome": "finished", "reason": ""}


def _train_slice(config, workdir: str, sweep_workdir: str, spec: resources.Spec,
                 refs: list) -> dict:
  """One process per host of the slice this task's head resource belongs to.

  Process 0 runs on this node (worker 0 of the slice, where Ray puts the head resource). On real
  TPUs, `jax.distributed` finds the coordinator itself; elsewhere (a fake slice of CPU hosts) the
  processes are told it, as `scaling launch local` does.
  """
  from ray.util import tpu

  from scaling.launch import local

  pod = tpu.get_current_pod_name()
  if not pod:
    raise RuntimeError(f"the node holding {spec.head_resource} names no TPU slice (TPU_NAME)")
  node = ray.get_runtime_context().get_node_id()
  coordinator = f"{ray.util.get_node_ip_address()}:{local.free_port()}"
  explicit = tpu.get_num_tpu_chips_on_node() == 0
  for i in range(spec.hosts):
    host_config = config.copy_and_resolve_references()
    host_config.distributed.initialize = True
    if explicit:
      host_config.distributed.coordinator_address = coordinator
      host_config.distributed.num_processes = spec.hosts
      host_config.distributed.process_id = i
    options = {"num_cpus": 1, "resources": {pod: 1, "TPU": spec.chips_per_host}}
    if i == 0:
      options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
    refs.append(_host_process.options(**options).remote(host_config, workdir, sweep_workdir))
  outcomes, pending = [], list(refs)
  while pending:
    [ready], pending = ray.wait(pending, num_returns=1)
    try:
      outcomes.append(ray.get(ready))
    except ray.exceptions.RayError as e:  # a host died: the slice was preempted
      outcomes.append({"outcome": "preempted", "reason": runner.one_line(e)})
    if outcomes[-1]["outcome"] != "finished":  # the others would wait in a collective forever
      for ref in pending:
        ray.cancel(ref, force=True)
      break
  return _combine(outcomes)


@ray.remote(max_retries=0)
def _attempt(run: Run, trunk: Run | None, sweep_workdir: str, spec: resources.Spec, owner: str,
             dead_owners: tuple[str, ...], lease_seconds: float) -> dict:
  """One attempt at a run: take its lease (or report who has it), fork it off its trunk if it is a
  branch that has not, train, record the outcome."""
  config, workdir = run.config, run.workdir
  lease = runstate.acquire(workdir, owner, lease_seconds, dead_owners=dead_owners)
  if isinstance(lease, runstate.Holder):
    return {"outcome": "busy", "reason": f"held by {lease.where}"}
  if core.finished_row(run):  # finished by another driver since this attempt was queued
    lease.release()
    return {"outcome": "finished", "reason": ""}
  if trunk is not None:  # under the lease: one fork, never two
    core.fork(run, trunk)
  attempts = runstate.read_status(workdir).get("attempts", [])
  for earlier in attempts:  # an attempt that never recorded its end died with its worker
    earlier.setdefault("outcome", "died")
  attempt = {"owner": owner, "where": runstate.where(), "node": ray.util.get_node_ip_address(),
             "resources": spec.text, "started": time.time()}
  attempts.append(attempt)
  runstate.write_status(workdir, "running", where=attempt["where"], reason="", attempts=attempts)

  processes, refs, stop, lost = [], [], threading.Event(), threading.Event()

  def renew():
    while not stop.wait(lease_seconds / 4):
      if not lease.renew():  # taken over: whoever holds it now trains this run
        lost.set()
        for process in processes:
          process.kill()
        for ref in refs:
          ray.cancel(ref, force=True)
        return

  def record(outcome: dict) -> None:
    attempt.update(ended=time.time(), outcome=outcome["outcome"])
    runstate.write_status(workdir, outcome["outcome"], reason=outcome.get("reason", ""),
                          attempts=attempts)
    lease.release()

  renewer = threading.Thread(target=renew, daemon=True)
  renewer.start()
  try:
    if spec.kind == "tpu":
      outcome = _train_slice(config, workdir, sweep_workdir, spec, refs)
    else:
      outcome = _train_process(config, workdir, sweep_workdir, processes)
  except KeyboardInterrupt:  # the driver stopped (ray.cancel): the run stopped at a checkpoint
    stop.set()
    renewer.join()
    record({"outcome": "preempted", "reason": "stopped by the driver"})
    raise
  finally:
    stop.set()
    renewer.join()
  if lost.is_set():
    return {"outcome": "busy", "reason": "lease taken over"}
  record(outcome)
  return outcome


def _options(spec: resources.Spec) -> dict:
  if spec.kind == "cpu":
    return {"num_cpus": spec.count}
  if spec.kind == "gpu":
    return {"num_cpus": 1, "num_gpus": spec.count}
  return {"num_cpus": 0, "resources": {spec.head_resource: 1}}


class _Tries:
  """A run's attempts so far: preemptions and failures (each against its budget), dead owners."""

  def __init__(self):
    self.preemptions = self.failures = self.count = 0
    self.dead_owners: list[str] = []


def run(plan: Plan, *, address: str | None = None) -> core.Outcome:
  """Trains every unfinished run (and trunk) of `plan` on the Ray cluster at `address` (default: a
  local one); a branch is submitted once its fork checkpoint is in storage (`core.Work`), so
  branches run beside their trunk.

  Writes plan.json, and results.csv after every run that ends; returns when every run finished or
  failed. Ctrl-C stops the runs in flight at a checkpoint.
  """
  sweep = plan.sweep
  specs = {run.name: resources.for_size(sweep["resources"], run.params_non_embedding)
           for run in (*plan.trunks, *plan.runs)}
  sweep_dir = rundir.SweepDir(plan.workdir)
  rundir.check_writable(plan.workdir)
  # As the local executor: a conflicting plan is refused, earlier plans' runs keep their rows.
  every_run, plan_json = core.merge(plan, sweep_dir)
  cluster = connect(address)
  check_feasible(specs, cluster)
  rundir.write_json(sweep_dir.plan_file, plan_json)
  driver = uuid.uuid4().hex[:12]
  work = core.Work(plan, every_run)
  tries = {unit.name: _Tries() for unit in work.units}
  work.write_results()
  inflight, waiting = {}, {}  # ref -> (run, owner); run name -> (run, when to look again)

  def submit(run: Run):
    work.hold(run)
    current = runstate.holder(run.workdir)
    if current and current.live() and current.owner not in tries[run.name].dead_owners:
      waiting[run.name] = (run, time.monotonic() + HELD_ELSEWHERE_S)  # another driver has it
      return
    tries[run.name].count += 1
    owner = f"{driver}/{run.name}/{tries[run.name].count}"
    ref = _attempt.options(**_options(specs[run.name])).remote(
        run, work.trunk_of(run), plan.workdir, specs[run.name], owner,
        tuple(tries[run.name].dead_owners), float(sweep["lease_seconds"]))
    inflight[ref] = (run, owner)

  def finish(run: Run, owner: str, outcome: dict):
    kind, reason, t = outcome["outcome"], outcome.get("reason", ""), tries[run.name]
    if kind == "finished":
      if work.finish(run) and run.name in work.rows:
        print(f"{run.name}: finished, eval loss {work.rows[run.name]['loss']:.4f}", flush=True)
    elif kind == "busy":
      waiting[run.name] = (run, time.monotonic() + HELD_ELSEWHERE_S)
    elif kind == "preempted":
      t.preemptions += 1
      t.dead_owners.append(owner)
      if t.preemptions > sweep["preemption_retries"]:
        work.fail(run, f"preempted {t.preemptions} times (sweep.preemption_retries="
                       f"{sweep['preemption_retries']}); last: {reason}")
      else:
        print(f"{run.name}: preempted ({reason}); re-queued", flush=True)
        work.release(run)
    else:
      t.failures += 1
      if t.failures > sweep["failure_retries"]:
        work.fail(run, reason)
        print(f"{run.name}: failed: {reason}", flush=True)
      else:
        work.release(run)

  try:
    while work.unfinished() or inflight:
      for run in work.ready():
        submit(run)
      if inflight:
        ready, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL_S)
      else:
        ready = []
        time.sleep(POLL_S)
      for ref in ready:
        run, owner = inflight.pop(ref)
        try:
          outcome = ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # the attempt's own code raised (storage, ...)
          outcome = {"outcome": "failed", "reason": runner.one_line(e.cause or e)}
        except ray.exceptions.RayError as e:  # its worker or node died
          outcome = {"outcome": "preempted", "reason": runner.one_line(e)}
        finish(run, owner, outcome)
        work.write_results()
      for name, (run, when) in list(waiting.items()):
        if time.monotonic() >= when:
          del waiting[name]
          if work.settle(run):
            work.write_results()
          else:
            work.release(run)
  except KeyboardInterrupt:
    for ref in inflight:
      ray.cancel(ref, recursive=True)
    ray.wait(list(inflight), num_returns=len(inflight), timeout=STOP_TIMEOUT_S)
    raise
  work.write_results()
  return work.outcome()

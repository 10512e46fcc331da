"""`scaling sweep --executor ray`: every unfinished run of a plan as Ray work, as many at once as
the cluster holds, each sized by `config.sweep.resources` (resources.py).

The engine only places work; what is true about a run lives in its workdir (runstate.py): an
attempt first takes the run's lease, renews it while it trains and releases it at the end, so two
drivers, or a driver restarted after its node died, never train a run twice. Each attempt trains in
a fresh `python -m scaling.sweep.worker` process (one per host of a TPU slice, joined by
`jax.distributed`), which dies with the Ray worker that started it. A TPU-slice run reserves its
hosts together first (`_reserve_slice`: one placement group, host k on worker k of one slice),
removed when the attempt ends. A worker that dies, a host whose slice-mates never join its
`jax.distributed` group, or a run that gets SIGTERM is re-queued and resumes from its checkpoint
(`sweep.preemption_retries`); a run that raises is failed with its one-line reason
(`sweep.failure_retries`, default 0). What is done and what may start next (a branch once its
trunk's fork checkpoint is in storage) come from core.py, as for the local executor, and so does
results.csv. SIGINT or SIGTERM to the driver stops every run in flight at a saved checkpoint (each
attempt is cancelled; its process gets SIGTERM) and records it preempted, as the local executor's
run is.
"""

import concurrent.futures
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
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from scaling import rundir, storage
from scaling.errors import InputError, first_line
from scaling.sweep import core, resources, worker
from scaling.train import runstate
from scaling.sweep.plan import Plan, Run

POLL_S = 2.0  # how often the driver looks up from waiting on its runs
HELD_ELSEWHERE_S = 5.0  # how often it looks at a run whose lease someone else holds
STOP_TIMEOUT_S = 60  # how long a run asked to stop (SIGTERM) may take to save its checkpoint
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGKILL, signal.SIGINT)
PROBE_TIMEOUT_S = 5.0  # how long --ray-address may take to answer at all
# An HTTP/2 client's connection preface, then an empty SETTINGS frame (RFC 9113 3.4, 6.5).
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_HTTP2_SETTINGS = 4  # the frame type a server's preface starts with
STOPPED_BY_DRIVER = "stopped by the driver (SIGINT/SIGTERM); saved a checkpoint"
JOIN_TIMEOUT_S = 300  # how long a slice's host waits for the others in jax.distributed (JAX's own)
# The labels Ray gives every TPU host (ray._private.accelerators.tpu), and the node id's.
SLICE_LABEL = "ray.io/tpu-slice-name"
WORKER_LABEL = "ray.io/tpu-worker-id"
POD_TYPE_LABEL = "ray.io/tpu-pod-type"
NODE_LABEL = "ray.io/node-id"


def _check_reachable(address: str) -> None:
  """A head that does not answer keeps ray.init retrying for minutes, with a screenful of Ray's C++
  logging: find out first, quietly, within PROBE_TIMEOUT_S. Ray's head (its GCS) is a gRPC server,
  and any HTTP/2 server answers a client's connection preface with a SETTINGS frame (RFC 9113
  3.4): a port that accepts but does not answer so (a proxy, another service) is not a Ray head."""
  import socket

  host, _, port = address.split("://")[-1].rpartition(":")
  if address == "auto" or not host or not port.isdigit():
    return
  try:
    with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S) as conn:
      conn.settimeout(PROBE_TIMEOUT_S)
      conn.sendall(_HTTP2_PREFACE)
      header = b""
      while len(header) < 4 and (data := conn.recv(9 - len(header))):
        header += data
  except OSError as e:
    raise InputError(f"--ray-address {address}: no Ray cluster answers there within "
                     f"{PROBE_TIMEOUT_S:g} s ({e.strerror or e})") from None
  if len(header) < 4 or header[3] != _HTTP2_SETTINGS:
    raise InputError(f"--ray-address {address}: something listens there, but not a Ray cluster's "
                     "head (it does not speak gRPC); give the head's GCS address, host:6379")


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


def _slice_bundles(spec: resources.Spec) -> list[dict]:
  """What each host of a slice run holds: its chips and a CPU; worker 0 also the slice's head
  resource, which the attempt itself takes (so one attempt per slice)."""
  host = {"TPU": spec.chips_per_host, "CPU": 1}
  return [{spec.head_resource: 1, **host}] + [dict(host) for _ in range(1, spec.hosts)]


def _fits(node: dict, demand: dict) -> bool:
  return all(node.get(key, 0) >= value for key, value in demand.items())


def _has_slice(nodes: list[dict], spec: resources.Spec) -> bool:
  """Whether one slice of `nodes` (ray.nodes()) has a host for each bundle of its reservation."""
  bundles, workers = _slice_bundles(spec), {}
  for node in nodes:
    labels = node.get("Labels") or {}
    worker = labels.get(WORKER_LABEL, "")
    if (labels.get(POD_TYPE_LABEL) == spec.text and worker.isdigit()
        and int(worker) < spec.hosts and _fits(node["Resources"], bundles[int(worker)])):
      workers.setdefault(labels.get(SLICE_LABEL), set()).add(int(worker))
  return any(len(found) == spec.hosts for found in workers.values())


def check_feasible(specs: dict[str, resources.Spec], cluster: str) -> None:
  """A run the cluster can never place would wait forever: name it and stop before anything runs."""
  nodes = [node for node in ray.nodes() if node["Alive"]]
  for name, spec in specs.items():
    if spec.kind == "tpu":
      if not _has_slice(nodes, spec):
        raise InputError(
            f"run {name} needs a {spec.text} slice ({spec.hosts} hosts labelled "
            f"{POD_TYPE_LABEL}={spec.text} under one {SLICE_LABEL}, each with TPU "
            f"{spec.chips_per_host:g} and CPU 1, worker 0 with {spec.head_resource}), which the "
            f"Ray cluster at {cluster} lacks; add such a slice or change sweep.resources")
      continue
    demand = {"CPU": spec.count} if spec.kind == "cpu" else {"GPU": spec.count, "CPU": 1}
    if not any(_fits(node["Resources"], demand) for node in nodes):
      wanted = ", ".join(f"{key} {value:g}" for key, value in demand.items())
      raise InputError(f"run {name} needs {spec.text} ({wanted} on one node), which no node of "
                       f"the Ray cluster at {cluster} has; add such a node or change "
                       "sweep.resources")


def _reserve_slice(spec: resources.Spec, name: str) -> PlacementGroup:
  """A whole slice for one attempt: a placement group with bundle k on worker k (Ray's worker-id
  label), every bundle on one slice (STRICT_PACK over the slice-name label) and each on its own
  host (STRICT_SPREAD). Ray places all bundles or none, so a host task cannot take another host's
  slot, nor land on another slice, as free-standing tasks could.

  Not Ray's `ray.util.tpu.SlicePlacementGroup` (2.60 has it): it reserves the slice's head in a
  blocking call first, needs the topology (2x2x2) rather than the type, and its bundle k lands on
  any host of the slice, not worker k. The driver removes the group when the attempt ends.
  """
  return placement_group(
      _slice_bundles(spec), name=name,
      bundle_label_selector=[{POD_TYPE_LABEL: spec.text, WORKER_LABEL: str(k)}
                             for k in range(spec.hosts)],
      topology_strategy={NODE_LABEL: "STRICT_SPREAD", SLICE_LABEL: "STRICT_PACK"})


def _host_options(spec: resources.Spec, reservation: PlacementGroup, host: int) -> dict:
  """Where host `host` of a slice run goes: its bundle of the run's reservation (worker `host`)."""
  return {"num_cpus": 1, "resources": {"TPU": spec.chips_per_host},
          "scheduling_strategy": PlacementGroupSchedulingStrategy(
              reservation, placement_group_bundle_index=host)}


def _release(reservation: PlacementGroup | None) -> None:
  """Removes a slice's reservation, ending whatever still runs in it (nothing, once its attempt
  has ended)."""
  if reservation is not None:
    remove_placement_group(reservation)


_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: between fork and exec, only a call
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
  """In the child, before exec: SIGKILL it when the Ray worker that started it dies (Linux)."""
  _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _wait(child: subprocess.Popen) -> int:
  """The child's exit code. Waits in short slices: ray.cancel raises KeyboardInterrupt in this task
  only when it runs Python, never inside one long blocking wait."""
  while True:
    try:
      return child.wait(timeout=0.5)
    except subprocess.TimeoutExpired:
      pass


def _stop(child: subprocess.Popen) -> int:
  """SIGTERM: the run saves a checkpoint and exits (143), or is killed after STOP_TIMEOUT_S."""
  child.send_signal(signal.SIGTERM)
  try:
    return child.wait(timeout=STOP_TIMEOUT_S)
  except subprocess.TimeoutExpired:
    child.kill()
    return child.wait()


def _train_process(config, workdir: str, sweep_workdir: str, processes: list,
                   join_timeout_s: float = JOIN_TIMEOUT_S) -> dict:
  """Trains in a fresh worker process; its outcome, or preempted/failed from how it ended. A host
  of a slice waits `join_timeout_s` for the others in `jax.distributed` (worker.py).

  Stopped by the driver (ray.cancel: KeyboardInterrupt here), the run saves a checkpoint first;
  the outcome is still what the process says (a run that reached its end meanwhile finished)."""
  stopped = False
  with tempfile.TemporaryDirectory() as tmp:
    outcome_path = os.path.join(tmp, "outcome.json")
    child = subprocess.Popen([sys.executable, "-m", "scaling.sweep.worker", outcome_path],
                             stdin=subprocess.PIPE, preexec_fn=_die_with_parent)
    processes.append(child)
    child.stdin.write(pickle.dumps((config, workdir, sweep_workdir, join_timeout_s)))
    child.stdin.close()
    forward = threading.current_thread() is threading.main_thread()
    if forward:  # a preempted VM sends SIGTERM to this process too: let the run save first
      previous = signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    try:
      try:
        code = _wait(child)
      except KeyboardInterrupt:
        stopped, code = True, _stop(child)
    finally:
      if forward:
        signal.signal(signal.SIGTERM, previous)
    if os.path.exists(outcome_path):
      with open(outcome_path, encoding="utf-8") as f:
        outcome = json.load(f)
      if stopped and outcome["outcome"] == "preempted":
        outcome["reason"] = STOPPED_BY_DRIVER
      return outcome
  if stopped:  # it ended without saying it saved (killed after STOP_TIMEOUT_S, or crashed)
    return {"outcome": "preempted", "reason": "stopped by the driver (SIGINT/SIGTERM); worker "
            f"process ended with code {code} without saving a checkpoint"}
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
                 reservation: PlacementGroup, refs: list) -> dict:
  """One process per host of the slice `reservation` holds, process k in bundle k (worker k).

  This task runs in bundle 0, so on worker 0, where process 0 runs too. On real TPUs,
  `jax.distributed` finds the coordinator and the process ids itself; elsewhere (a fake slice of
  CPU hosts) the processes are told them, as `scaling launch local` does.
  """
  from ray.util import tpu

  from scaling.launch import local

  coordinator = f"{ray.util.get_node_ip_address()}:{local.free_port()}"
  explicit = tpu.get_num_tpu_chips_on_node() == 0
  for i in range(spec.hosts):
    host_config = config.copy_and_resolve_references()
    host_config.distributed.initialize = True
    if explicit:
      host_config.distributed.coordinator_address = coordinator
      host_config.distributed.num_processes = spec.hosts
      host_config.distributed.process_id = i
    refs.append(_host_process.options(**_host_options(spec, reservation, i)).remote(
        host_config, workdir, sweep_workdir))
  outcomes, pending = [], list(refs)
  try:
    while pending:
      ready, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)  # slices: see _wait
      if not ready:
        continue
      try:
        outcome = ray.get(ready[0])
      except ray.exceptions.RayError as e:  # a host died: the slice was preempted
        outcome = {"outcome": "preempted", "reason": first_line(e, with_type=True)}
      if outcome["outcome"] != "finished":
        outcome["reason"] = f"host {refs.index(ready[0])}: {outcome['reason']}"
      outcomes.append(outcome)
      if outcomes[-1]["outcome"] != "finished":  # the others would wait in a collective forever
        for ref in pending:
          ray.cancel(ref, force=True)
        break
  except KeyboardInterrupt:  # the driver stops: the hosts (cancelled with this task) save first
    outcomes += _stopped_hosts(refs, pending)
  return _combine(outcomes)


def _stopped_hosts(refs: list, pending: list) -> list[dict]:
  """The outcomes of a stopped slice's hosts still running, once their processes have exited.

  Not ray.wait: in a cancelled task it raises at once, this task would end, the driver would
  release the slice and exit, and Ray would kill the hosts' workers with their training processes
  (same process group) in the middle of the stop's multi-process checkpoint. Futures still wait.
  """
  futures = {ref.future(): ref for ref in pending}
  done, _ = concurrent.futures.wait(futures, timeout=STOP_TIMEOUT_S + 2 * POLL_S)
  outcomes = []
  for future, ref in futures.items():
    if future not in done:
      outcome = {"outcome": "preempted", "reason": f"did not stop within {STOP_TIMEOUT_S} s"}
    elif future.exception() is not None:
      outcome = {"outcome": "preempted", "reason": first_line(future.exception(), with_type=True)}
    else:
      outcome = future.result()
    if outcome["outcome"] != "finished" and outcome["reason"] != STOPPED_BY_DRIVER:  # unsaved
      outcome["reason"] = f"host {refs.index(ref)}: {outcome['reason']}"
    outcomes.append(outcome)
  return outcomes or [{"outcome": "preempted", "reason": STOPPED_BY_DRIVER}]


@ray.remote(max_retries=0)
def _attempt(run: Run, trunk: Run | None, sweep_workdir: str, spec: resources.Spec,
             reservation: PlacementGroup | None, owner: str, dead_owners: tuple[str, ...],
             lease_seconds: float) -> dict:
  """One attempt at a run: take its lease (or report who has it), fork it off its trunk if it is a
  branch that has not, train, record the outcome. A slice run's `reservation` holds its hosts."""
  processes, refs = [], []

  def stop_now():  # the lease was taken over: whoever holds it now trains this run
    for process in processes:
      process.kill()
    for ref in refs:
      ray.cancel(ref, force=True)

  attempt = runstate.Attempt(run.workdir, owner, lease_seconds, dead_owners=dead_owners,
                             on_lost=stop_now, node=ray.util.get_node_ip_address(),
                             resources=spec.text)
  try:
    try:
      if not attempt.take(finished=lambda: core.finished_row(run)):
        return {"outcome": "finished", "reason": ""}  # by another driver since it was queued
    except runstate.Busy as busy:
      return {"outcome": "busy", "reason": f"held by {busy.holder.where}"}
    if trunk is not None:  # under the lease: one fork, never two
      core.fork(run, trunk)
    if spec.kind == "tpu":
      outcome = _train_slice(run.config, run.workdir, sweep_workdir, spec, reservation, refs)
    else:
      outcome = _train_process(run.config, run.workdir, sweep_workdir, processes)
  except KeyboardInterrupt:  # the driver stopped (ray.cancel) before the run's process started
    outcome = {"outcome": "preempted", "reason": STOPPED_BY_DRIVER}
  except Exception as e:  # storage, the fork, a process that would not start: recorded, released
    attempt.end("failed", first_line(e, with_type=True))
    raise
  if attempt.lost():
    return {"outcome": "busy", "reason": "lease taken over"}
  if outcome["outcome"] != "finished" and core.finished_row(run):
    outcome = {"outcome": "finished", "reason": ""}  # stopped at its last step: it finished
  attempt.end(outcome["outcome"], outcome.get("reason", ""))
  return outcome


def _options(spec: resources.Spec, reservation: PlacementGroup | None) -> dict:
  """Where an attempt runs: on its CPUs or GPU, or in bundle 0 of its slice's reservation."""
  if spec.kind == "cpu":
    return {"num_cpus": spec.count}
  if spec.kind == "gpu":
    return {"num_cpus": 1, "num_gpus": spec.count}
  return {"num_cpus": 0, "resources": {spec.head_resource: 1},
          "scheduling_strategy": PlacementGroupSchedulingStrategy(
              reservation, placement_group_bundle_index=0)}


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
  failed. SIGINT (Ctrl-C) or SIGTERM stops the runs in flight at a checkpoint, records them
  preempted and returns (Outcome.preempted names them, Outcome.signal the signal).
  """
  specs = {run.name: resources.for_size(plan.sweep["resources"], run.params_non_embedding)
           for run in (*plan.trunks, *plan.runs)}
  sweep_dir = rundir.SweepDir(plan.workdir)
  storage.check_writable(plan.workdir)
  # As the local executor: a conflicting plan is refused, earlier plans' runs keep their rows.
  every_run, plan_json = core.merge(plan, sweep_dir)
  cluster = connect(address)
  check_feasible(specs, cluster)
  sweep_dir.write_plan(plan_json)
  driver = _Driver(plan, core.Work(plan, every_run), specs)
  work = driver.work
  work.write_results()
  stop, stopped = _StopOnSignal(), []
  try:
    while (work.unfinished() or driver.inflight) and not stop.signal:
      driver.step()
    if stop.signal:  # every run in flight saves a checkpoint; what finished meanwhile is listed
      stop.close()  # a second Ctrl-C stops at once
      stopped = driver.stop_in_flight(stop.signal)
  except KeyboardInterrupt:
    driver.cancel_in_flight()
    raise
  finally:
    stop.close()
    driver.release_reservations()  # the runs stopped (or the driver gave up on them)
  work.write_results()
  preempted = None
  if stop.signal:
    preempted = ", ".join(run.name for run in stopped if run.name not in work.done) or "no run"
  return work.outcome(preempted, stop.signal)


class _Driver:
  """What the driver keeps while it runs a plan: the work (`core.Work`), each run's tries, the
  attempts in flight (with the reservations of their slices) and the runs another driver holds,
  looked at again every HELD_ELSEWHERE_S."""

  def __init__(self, plan: Plan, work: core.Work, specs: dict[str, resources.Spec]):
    self.plan, self.work, self.specs, self.sweep = plan, work, specs, plan.sweep
    self.id = uuid.uuid4().hex[:12]
    self.tries = {unit.name: _Tries() for unit in work.units}
    self.inflight, self.waiting = {}, {}  # ref -> (run, owner); run name -> (run, when to look)
    self.reservations = {}  # ref -> the placement group holding its slice (TPU runs)

  def step(self) -> None:
    """Submits what may start, records the attempts that ended within POLL_S, looks again at the
    runs held elsewhere whose time has come."""
    for run in self.work.ready():
      self.submit(run)
    if self.inflight:
      ready, _ = ray.wait(list(self.inflight), num_returns=1, timeout=POLL_S)
    else:
      ready = []
      time.sleep(POLL_S)
    for ref in ready:
      run, owner = self.inflight.pop(ref)
      outcome = _outcome(ref)
      _release(self.reservations.pop(ref, None))
      self.finish(run, owner, outcome)
      self.work.write_results()
    for name, (run, when) in list(self.waiting.items()):
      if time.monotonic() >= when:
        del self.waiting[name]
        if self.work.settle(run):
          self.work.write_results()
        else:
          self.work.release(run)

  def submit(self, run: Run) -> None:
    """An attempt at `run`, unless another driver's live lease holds it (then: wait and see)."""
    self.work.hold(run)
    tries = self.tries[run.name]
    current = runstate.holder(run.workdir)
    if current and current.live() and current.owner not in tries.dead_owners:
      self.waiting[run.name] = (run, time.monotonic() + HELD_ELSEWHERE_S)  # another driver has it
      return
    tries.count += 1
    owner = f"{self.id}/{run.name}/{tries.count}"
    spec = self.specs[run.name]
    reservation = _reserve_slice(spec, owner) if spec.kind == "tpu" else None
    ref = _attempt.options(**_options(spec, reservation)).remote(
        run, self.work.trunk_of(run), self.plan.workdir, spec, reservation, owner,
        tuple(tries.dead_owners), float(self.sweep["lease_seconds"]))
    self.inflight[ref] = (run, owner)
    if reservation is not None:
      self.reservations[ref] = reservation

  def finish(self, run: Run, owner: str, outcome: dict) -> None:
    """Records an attempt's outcome: finished, put off (busy), re-queued or failed, each against
    its budget of retries."""
    kind, reason, t = outcome["outcome"], outcome.get("reason", ""), self.tries[run.name]
    work, sweep = self.work, self.sweep
    if kind == "finished":
      if work.finish(run) and run.name in work.rows:
        print(f"{run.name}: finished, eval loss {work.rows[run.name]['loss']:.4f}", flush=True)
    elif kind == "busy":
      self.waiting[run.name] = (run, time.monotonic() + HELD_ELSEWHERE_S)
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

  def stop_in_flight(self, signal_name: str) -> list[Run]:
    """Stops every run in flight at a checkpoint and records what each did; returns those runs."""
    stopped = [run for run, _ in self.inflight.values()]
    print(f"{signal_name}: stopping {len(stopped)} runs in flight at a checkpoint", flush=True)
    _stop_all(list(self.inflight), stopped)
    for run in stopped:
      self.work.settle(run)
    return stopped

  def cancel_in_flight(self) -> None:
    """A second Ctrl-C: cancels every attempt and waits (at most STOP_TIMEOUT_S) for them."""
    for ref in self.inflight:
      ray.cancel(ref, recursive=True)
    ray.wait(list(self.inflight), num_returns=len(self.inflight), timeout=STOP_TIMEOUT_S)

  def release_reservations(self) -> None:
    for reservation in self.reservations.values():
      _release(reservation)


def _outcome(ref) -> dict:
  """An ended attempt's outcome; failed if its own code raised, preempted if its worker died."""
  try:
    return ray.get(ref)
  except ray.exceptions.RayTaskError as e:  # the attempt's own code raised (storage, ...)
    return {"outcome": "failed", "reason": first_line(e.cause or e, with_type=True)}
  except ray.exceptions.RayError as e:  # its worker or node died
    return {"outcome": "preempted", "reason": first_line(e, with_type=True)}


class _StopOnSignal:
  """SIGINT (Ctrl-C) and SIGTERM (preemption) to the driver: noted here, then every run in flight
  is stopped at a checkpoint (as the local executor's run is) before the driver exits 130 / 143."""

  def __init__(self):
    self.signal: str | None = None
    self._previous = {}
    if threading.current_thread() is threading.main_thread():
      for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # ignored: started in background
          self._previous[signum] = signal.signal(signum, self._note)

  def _note(self, signum, frame):
    del frame
    self.signal = signal.Signals(signum).name

  def close(self):
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    self._previous = {}


def _stop_all(refs: list, runs: list[Run]) -> None:
  """Cancels the attempts (KeyboardInterrupt in each: its run saves and stops), then waits until
  each run's lease is released, i.e. its outcome is recorded (at most STOP_TIMEOUT_S and a bit)."""
  for ref in refs:
    ray.cancel(ref, recursive=True)
  deadline = time.monotonic() + STOP_TIMEOUT_S + 10
  ray.wait(refs, num_returns=len(refs), timeout=STOP_TIMEOUT_S)
  for run in runs:
    while ((current := runstate.holder(run.workdir)) is not None and current.live()
           and time.monotonic() < deadline):
      time.sleep(0.2)

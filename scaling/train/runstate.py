"""A run's state in its own workdir, so any number of drivers and workers agree on it.

- `status.json`: the run's last known state (running, finished, failed with its reason, preempted)
  and every attempt at it, written only by whoever holds the run's lease.
- `lease.N` (N = 0, 1, ...): who may train the run. Taking a lease means creating the next
  generation's file exclusively (`O_EXCL` on a local disk, a generation-0 precondition on GCS), so
  of any number of takers exactly one wins; the holder rewrites its file every few seconds. A lease
  that was released, or not renewed for its `seconds`, may be taken over by creating generation
  N + 1; the old holder sees N + 1 on its next renewal and stops. A holder on this host whose
  process is gone (killed) is taken over at once. Files are probed by name, never listed, so a
  storage listing cache cannot hide a newer generation.

Every executor keeps these files the same way (`Attempt`): the Ray executor's attempts, the local
executor's runs and `scaling train`, so none of them trains a run another one holds, and
`scaling runs` reads the same truth whichever trained it.

Ages compare the reader's clock with the writer's: hosts need NTP-synchronized clocks.
JAX-free: `scaling runs` and the Ray driver read these without starting a backend.
"""

import dataclasses
import json
import os
import socket
import threading
import time

from etils import epath

from scaling import storage
from scaling.errors import InputError
from scaling.rundir import LEASE_PREFIX, STATUS_FILE

DEFAULT_SECONDS = 60.0  # `scaling train`'s lease; a sweep's is sweep.lease_seconds (the same)


def _read_json(path: str) -> dict | None:
  try:
    value = json.loads(storage.read_text(path))
  except (FileNotFoundError, ValueError):  # absent, or created a moment ago and still empty
    return None
  return value if isinstance(value, dict) else None


def read_status(workdir) -> dict:
  """The run's status.json, or {"state": "pending"} when nobody has started it."""
  return _read_json(storage.join(workdir, STATUS_FILE)) or {"state": "pending", "attempts": []}


def write_status(workdir, state: str, **fields) -> dict:
  """Sets the run's state (and fields such as `reason`, `where`); only a lease holder calls this."""
  status = read_status(workdir)
  status.update(fields, state=state, updated=time.time())
  storage.write_json(storage.join(workdir, STATUS_FILE), status)
  return status


def where() -> str:
  """host:pid of this process, what `scaling runs` shows as where a run trains."""
  return f"{socket.gethostname()}:{os.getpid()}"


def _gone(where_: str) -> bool:
  """Whether `where_` (host:pid) names a process of this host that no longer exists."""
  host, _, pid = where_.rpartition(":")
  if host != socket.gethostname() or not pid.isdigit():
    return False  # another host's process (or not yet written): only its renewals tell
  try:
    os.kill(int(pid), 0)
  except ProcessLookupError:
    return True
  except PermissionError:  # exists, another user's
    return False
  return False


@dataclasses.dataclass(frozen=True)
class Holder:
  """What a lease file says: who holds it, where, when it was last renewed."""

  generation: int
  owner: str
  where: str
  renewed: float
  seconds: float
  released: bool

  def age(self, now: float | None = None) -> float:
    return (time.time() if now is None else now) - self.renewed

  def live(self, now: float | None = None) -> bool:
    """Held: not released, renewed within its `seconds`, and not by a process of this host that
    died (killed holders are taken over at once, not after `seconds`)."""
    return not self.released and self.age(now) <= self.seconds and not _gone(self.where)

  def describe(self) -> str:
    return (f"{self.where} (lease {self.generation}, renewed {self.age():.0f} s ago; taken over "
            f"once not renewed for {self.seconds:.0f} s)")


class Busy(InputError):
  """The run's lease is held by another live process: this one must not train it."""

  def __init__(self, workdir, current: Holder):
    super().__init__(f"{workdir} is being trained by {current.describe()}; wait for it or stop it")
    self.holder = current


class LeaseLost(RuntimeError):
  """This process's lease was taken over (it stopped renewing it): another process trains the run."""


def _lease_path(workdir, generation: int) -> str:
  return storage.join(workdir, f"{LEASE_PREFIX}{generation}")


def _latest_generation(workdir) -> int:
  """The highest N with a lease.N (−1 if none), probing upwards: generations are never deleted."""
  generation = -1
  while storage.exists(_lease_path(workdir, generation + 1)):
    generation += 1
  return generation


def _holder_at(workdir, generation: int, seconds: float) -> Holder:
  path = _lease_path(workdir, generation)
  value = _read_json(path)
  if value is None:  # created a moment ago and not yet written: its file's age stands in
    try:
      renewed = epath.Path(path).stat().mtime
    except FileNotFoundError:
      renewed = time.time()
    return Holder(generation, owner="?", where="?", renewed=renewed, seconds=seconds,
                  released=False)
  return Holder(generation=generation, owner=value["owner"], where=value["where"],
                renewed=value["renewed"], seconds=value["seconds"], released=value["released"])


def holder(workdir, seconds: float = 60.0) -> Holder | None:
  """The latest lease of the run, or None if it never had one."""
  generation = _latest_generation(workdir)
  return _holder_at(workdir, generation, seconds) if generation >= 0 else None


class Lease:
  """A held lease: `renew()` while training (False once taken over), `release()` at the end."""

  def __init__(self, workdir, generation: int, owner: str, seconds: float):
    self.workdir, self.generation, self.owner, self.seconds = workdir, generation, owner, seconds
    self.path = _lease_path(workdir, generation)

  def _content(self, released: bool) -> dict:
    return {"owner": self.owner, "where": where(), "renewed": time.time(), "seconds": self.seconds,
            "released": released}

  def lost(self) -> bool:
    return storage.exists(_lease_path(self.workdir, self.generation + 1))

  def renew(self) -> bool:
    if self.lost():
      return False
    storage.write_json(self.path, self._content(released=False))
    return True

  def release(self) -> None:
    if not self.lost():
      storage.write_json(self.path, self._content(released=True))


def acquire(workdir, owner: str, seconds: float, *, dead_owners=()) -> Lease | Holder:
  """Takes the run's lease, or returns the live Holder that has it.

  A lease held by one of `dead_owners` (attempts the caller knows have died, e.g. a Ray worker that
  crashed) is taken over at once instead of after `seconds`.
  """
  generation = _latest_generation(workdir)
  if generation >= 0:
    current = _holder_at(workdir, generation, seconds)
    if current.live() and current.owner not in dead_owners:
      return current
  lease = Lease(workdir, generation + 1, owner, seconds)
  try:
    storage.create_exclusive(lease.path, json.dumps(lease._content(released=False), indent=2))
  except FileExistsError:
    # Another taker won this generation; what it holds now is the answer.
    return _holder_at(workdir, generation + 1, seconds)
  return lease


class Attempt:
  """One attempt by this process at a run: takes its lease, records the attempt in status.json,
  renews the lease from a thread while the run trains, records how it ended and releases it.

  `fields` (resources, node, ...) join the attempt's record. `on_lost` is called (from the renewer
  thread) if the lease is taken over; `check()` raises LeaseLost from then on.
  """

  def __init__(self, workdir, owner: str, seconds: float = DEFAULT_SECONDS, *, dead_owners=(),
               on_lost=None, **fields):
    self.workdir, self.owner, self.seconds = workdir, owner, seconds
    self.dead_owners, self.on_lost, self.fields = tuple(dead_owners), on_lost, fields
    self.lease: Lease | None = None
    self._stop, self._lost = threading.Event(), threading.Event()
    self._renewer: threading.Thread | None = None
    self._attempts: list[dict] = []

  def refuse_if_held(self) -> None:
    """Raises Busy if another process holds the run now (reads only: nothing is written)."""
    current = holder(self.workdir, self.seconds)
    if current is not None and current.live() and current.owner not in self.dead_owners:
      raise Busy(self.workdir, current)

  def take(self, finished=lambda: False) -> bool:
    """Takes the lease and records the attempt as running; Busy if a live holder has it. False
    (lease released, nothing recorded) if `finished()` says the run finished before it was taken."""
    taken = acquire(self.workdir, self.owner, self.seconds, dead_owners=self.dead_owners)
    if isinstance(taken, Holder):
      raise Busy(self.workdir, taken)
    if finished():  # finished by its last holder since the caller looked
      taken.release()
      return False
    self.lease = taken
    self._attempts = read_status(self.workdir).get("attempts", [])
    for earlier in self._attempts:  # an attempt that never recorded its end died with its process
      earlier.setdefault("outcome", "died")
    self._attempts.append({"owner": self.owner, "where": where(), **self.fields,
                           "started": time.time()})
    write_status(self.workdir, "running", where=where(), reason="", attempts=self._attempts)
    self._renewer = threading.Thread(target=self._renew, daemon=True)
    self._renewer.start()
    return True

  @property
  def taken(self) -> bool:
    return self.lease is not None

  def _renew(self) -> None:
    while not self._stop.wait(self.seconds / 4):
      if not self.lease.renew():  # taken over: whoever holds it now trains this run
        self._lost.set()
        if self.on_lost:
          self.on_lost()
        return

  def lost(self) -> bool:
    return self._lost.is_set()

  def check(self) -> None:
    if self.lost():
      raise LeaseLost(f"the lease of {self.workdir} was taken over (not renewed for "
                      f"{self.seconds:.0f} s); the run trains there now")

  def end(self, outcome: str, reason: str = "") -> None:
    """Records how the attempt ended (finished, failed, preempted) and releases the lease; a lost
    lease's run belongs to its new holder, whose records stand."""
    if self.lease is None or self._stop.is_set():
      return
    self._stop.set()
    if self._renewer is not None:
      self._renewer.join()
    if self.lost():
      return
    self._attempts[-1].update(ended=time.time(), outcome=outcome)
    write_status(self.workdir, outcome, reason=reason, attempts=self._attempts)
    self.lease.release()

"""A run's state in its own workdir, so any number of drivers and workers agree on it.

- `status.json`: the run's last known state (running, finished, failed with its reason, preempted)
  and every attempt at it, written only by whoever holds the run's lease.
- `lease.N` (N = 0, 1, ...): who may train the run. Taking a lease means creating the next
  generation's file exclusively (`O_EXCL` on a local disk, a generation-0 precondition on GCS), so
  of any number of takers exactly one wins; the holder rewrites its file every few seconds. A lease
  that was released, or not renewed for its `seconds`, may be taken over by creating generation
  N + 1; the old holder sees N + 1 on its next renewal and stops. Files are probed by name, never
  listed, so a storage listing cache cannot hide a newer generation.

Ages compare the reader's clock with the writer's: hosts need NTP-synchronized clocks.
JAX-free: `scaling runs` and the Ray driver read these without starting a backend.
"""

import dataclasses
import json
import os
import socket
import time

from etils import epath

from scaling import rundir

STATUS_FILE = "status.json"
LEASE_PREFIX = "lease."
STATES = ("pending", "running", "finished", "failed", "preempted")


def _read_json(path: str) -> dict | None:
  try:
    value = json.loads(rundir.read_text(path))
  except (FileNotFoundError, ValueError):  # absent, or created a moment ago and still empty
    return None
  return value if isinstance(value, dict) else None


def read_status(workdir) -> dict:
  """The run's status.json, or {"state": "pending"} when nobody has started it."""
  return _read_json(rundir.join(workdir, STATUS_FILE)) or {"state": "pending", "attempts": []}


def write_status(workdir, state: str, **fields) -> dict:
  """Sets the run's state (and fields such as `reason`, `where`); only a lease holder calls this."""
  status = read_status(workdir)
  status.update(fields, state=state, updated=time.time())
  rundir.write_json(rundir.join(workdir, STATUS_FILE), status)
  return status


def where() -> str:
  """host:pid of this process, what `scaling runs` shows as where a run trains."""
  return f"{socket.gethostname()}:{os.getpid()}"


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
    return not self.released and self.age(now) <= self.seconds


def _lease_path(workdir, generation: int) -> str:
  return rundir.join(workdir, f"{LEASE_PREFIX}{generation}")


def _latest_generation(workdir) -> int:
  """The highest N with a lease.N (−1 if none), probing upwards: generations are never deleted."""
  generation = -1
  while rundir.exists(_lease_path(workdir, generation + 1)):
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
    return rundir.exists(_lease_path(self.workdir, self.generation + 1))

  def renew(self) -> bool:
    if self.lost():
      return False
    rundir.write_json(self.path, self._content(released=False))
    return True

  def release(self) -> None:
    if not self.lost():
      rundir.write_json(self.path, self._content(released=True))


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
    rundir.create_exclusive(lease.path, json.dumps(lease._content(released=False), indent=2))
  except FileExistsError:
    # Another taker won this generation; what it holds now is the answer.
    return _holder_at(workdir, generation + 1, seconds)
  return lease

"""Run status and the exclusive lease, on a local disk and on GCS (the emulator of tests/emulated_gcs.py):
one winner, renewal, takeover, release."""

import multiprocessing
import time

import pytest

from scaling import storage
from scaling.train import runstate


@pytest.fixture(params=["local", "gs"])
def workdir(request, tmp_path):
  """A run directory on a local disk, or on gs://test (the GCS emulator)."""
  if request.param == "local":
    return str(tmp_path)
  return request.getfixturevalue("gcs_dir")


def _race(workdir, owner, queue):
  lease = runstate.acquire(workdir, owner, 30.0)
  queue.put((owner, isinstance(lease, runstate.Lease)))


def test_of_many_processes_taking_a_lease_at_once_exactly_one_wins(workdir):
  context = multiprocessing.get_context("spawn")  # children inherit the emulator's environment
  queue = context.Queue()
  racers = [context.Process(target=_race, args=(workdir, f"p{i}", queue)) for i in range(6)]
  for racer in racers:
    racer.start()
  outcomes = dict(queue.get(timeout=60) for _ in racers)
  for racer in racers:
    racer.join()
  winners = [owner for owner, won in outcomes.items() if won]
  assert len(winners) == 1
  assert runstate.holder(workdir).owner == winners[0]


def test_a_live_lease_is_respected_a_released_or_stale_one_taken_over(workdir):
  first = runstate.acquire(workdir, "a", 2.0)
  assert isinstance(first, runstate.Lease) and first.generation == 0
  busy = runstate.acquire(workdir, "b", 2.0)
  assert isinstance(busy, runstate.Holder) and busy.owner == "a" and busy.live()
  assert first.renew()

  time.sleep(2.2)  # not renewed for longer than its 2 s: stale
  assert not runstate.holder(workdir).live()
  second = runstate.acquire(workdir, "b", 2.0)
  assert isinstance(second, runstate.Lease) and second.generation == 1
  assert not first.renew() and first.lost()  # the old holder learns it lost the run
  first.release()  # and its release does not free the new holder's lease
  assert runstate.holder(workdir).owner == "b" and runstate.holder(workdir).live()

  second.release()
  assert not runstate.holder(workdir).live()
  third = runstate.acquire(workdir, "c", 30.0)
  assert isinstance(third, runstate.Lease) and third.generation == 2


def test_a_lease_of_an_attempt_known_dead_is_taken_over_at_once(workdir):
  runstate.acquire(workdir, "driver/run/1", 30.0)
  assert isinstance(runstate.acquire(workdir, "driver/run/2", 30.0), runstate.Holder)
  lease = runstate.acquire(workdir, "driver/run/2", 30.0, dead_owners=("driver/run/1",))
  assert isinstance(lease, runstate.Lease) and lease.generation == 1


def test_status_starts_pending_and_keeps_its_fields(workdir):
  assert runstate.read_status(workdir) == {"state": "pending", "attempts": []}
  runstate.write_status(workdir, "running", where="host:1", attempts=[{"owner": "a"}])
  runstate.write_status(workdir, "failed", reason="ValueError: bad")
  status = runstate.read_status(workdir)
  assert status["state"] == "failed" and status["reason"] == "ValueError: bad"
  assert status["where"] == "host:1" and status["attempts"] == [{"owner": "a"}]
  assert storage.list_names(workdir) == [runstate.STATUS_FILE]  # no temporary file left


def _hold_and_die(workdir, queue):
  runstate.acquire(workdir, "killed", 30.0)
  queue.put("held")  # then exits without releasing, as a process killed with SIGKILL does


def test_a_holder_on_this_host_whose_process_died_is_taken_over_at_once(workdir):
  """A re-run right after `kill -9` must not wait out the lease: its holder is known dead."""
  context = multiprocessing.get_context("spawn")
  queue = context.Queue()
  holder = context.Process(target=_hold_and_die, args=(workdir, queue))
  holder.start()
  assert queue.get(timeout=60) == "held"
  holder.join()
  dead = runstate.holder(workdir)
  assert dead.owner == "killed" and not dead.released and dead.age() < 30 and not dead.live()
  lease = runstate.acquire(workdir, "rerun", 30.0)
  assert isinstance(lease, runstate.Lease) and lease.generation == 1


def test_an_attempt_records_running_then_how_it_ended_and_a_second_one_is_busy(workdir):
  attempt = runstate.Attempt(workdir, "sweep/run", 30.0, executor="local")
  assert attempt.take()
  status = runstate.read_status(workdir)
  assert status["state"] == "running" and status["where"] == runstate.where()
  [record] = status["attempts"]
  assert record["owner"] == "sweep/run" and record["executor"] == "local"

  other = runstate.Attempt(workdir, "train/x", 30.0)
  with pytest.raises(runstate.Busy, match=f"being trained by {runstate.where()}") as busy:
    other.refuse_if_held()
  assert "\n" not in str(busy.value)
  with pytest.raises(runstate.Busy):
    other.take()

  attempt.end("preempted", "SIGTERM")
  status = runstate.read_status(workdir)
  assert status["state"] == "preempted" and status["reason"] == "SIGTERM"
  assert status["attempts"][0]["outcome"] == "preempted" and not runstate.holder(workdir).live()
  # The next attempt finds the run finished by its last holder: it takes nothing, records nothing.
  assert not other.take(finished=lambda: True)
  assert len(runstate.read_status(workdir)["attempts"]) == 1 and not runstate.holder(workdir).live()

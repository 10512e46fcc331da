"""Run status and the exclusive lease on a local disk: one winner, renewal, takeover, release."""

import multiprocessing
import time

from scaling.sweep import runstate


def _race(workdir, owner, queue):
  lease = runstate.acquire(workdir, owner, 30.0)
  queue.put((owner, isinstance(lease, runstate.Lease)))


def test_of_many_processes_taking_a_lease_at_once_exactly_one_wins(tmp_path):
  context = multiprocessing.get_context("spawn")
  queue = context.Queue()
  racers = [context.Process(target=_race, args=(str(tmp_path), f"p{i}", queue)) for i in range(6)]
  for racer in racers:
    racer.start()
  outcomes = dict(queue.get(timeout=60) for _ in racers)
  for racer in racers:
    racer.join()
  winners = [owner for owner, won in outcomes.items() if won]
  assert len(winners) == 1
  assert runstate.holder(tmp_path).owner == winners[0]


def test_a_live_lease_is_respected_a_released_or_stale_one_taken_over(tmp_path):
  first = runstate.acquire(tmp_path, "a", 0.5)
  assert isinstance(first, runstate.Lease) and first.generation == 0
  busy = runstate.acquire(tmp_path, "b", 0.5)
  assert isinstance(busy, runstate.Holder) and busy.owner == "a" and busy.live()
  assert first.renew()

  time.sleep(0.7)  # not renewed for longer than its 0.5 s: stale
  assert not runstate.holder(tmp_path).live()
  second = runstate.acquire(tmp_path, "b", 0.5)
  assert isinstance(second, runstate.Lease) and second.generation == 1
  assert not first.renew() and first.lost()  # the old holder learns it lost the run
  first.release()  # and its release does not free the new holder's lease
  assert runstate.holder(tmp_path).owner == "b" and runstate.holder(tmp_path).live()

  second.release()
  assert not runstate.holder(tmp_path).live()
  third = runstate.acquire(tmp_path, "c", 30.0)
  assert isinstance(third, runstate.Lease) and third.generation == 2


def test_a_lease_of_an_attempt_known_dead_is_taken_over_at_once(tmp_path):
  runstate.acquire(tmp_path, "driver/run/1", 30.0)
  assert isinstance(runstate.acquire(tmp_path, "driver/run/2", 30.0), runstate.Holder)
  lease = runstate.acquire(tmp_path, "driver/run/2", 30.0, dead_owners=("driver/run/1",))
  assert isinstance(lease, runstate.Lease) and lease.generation == 1


def test_status_starts_pending_and_keeps_its_fields(tmp_path):
  assert runstate.read_status(tmp_path) == {"state": "pending", "attempts": []}
  runstate.write_status(tmp_path, "running", where="host:1", attempts=[{"owner": "a"}])
  runstate.write_status(tmp_path, "failed", reason="ValueError: bad")
  status = runstate.read_status(tmp_path)
  assert status["state"] == "failed" and status["reason"] == "ValueError: bad"
  assert status["where"] == "host:1" and status["attempts"] == [{"owner": "a"}]
  assert sorted(p.name for p in tmp_path.iterdir()) == [runstate.STATUS_FILE]  # no temp left

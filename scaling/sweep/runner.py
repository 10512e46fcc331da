"""Runs a plan one run after another in this process, and keeps results.csv current.

A re-run skips the runs that finished (it still lists them) and resumes a run cut off mid-way from
its checkpoint; a run that fails is recorded with a one-line reason and the sweep goes on. Compiled
steps are reused through JAX's persistent compilation cache under the sweep directory.

Results are never lost to a re-run: a plan whose runs conflict with those already in the directory
(same name, another config) is refused before anything is written, and a plan that names only some
of the directory's runs adds to plan.json instead of replacing it, so results.csv keeps listing
every finished run of every plan run there.

Each run is trained holding its lease (runstate.py), as the Ray executor's are: two sweeps on one
directory (or a sweep and a `scaling train`) never train a run twice. A run another process holds
is put off until the others are done, then waited for; its result is listed once its holder is done.
"""

import contextlib
import os
import time
import traceback
import uuid

import jax
from jax.experimental import multihost_utils
from tqdm import tqdm

from scaling import jax_cache, rundir, storage
from scaling.errors import InputError, first_line
from scaling.sweep import core
from scaling.sweep.plan import Plan, Run
from scaling.train import runstate, trainer

POLL_S = 2.0  # how often a run another process holds is looked at again

Outcome = core.Outcome  # where both executors share it


@contextlib.contextmanager
def compile_cache(path: str):
  """JAX's persistent compilation cache in `path` for the duration, every program cached.

  Compilation dominates small CPU runs; a re-run or a run with the same program (same shape and
  hyperparameters) then loads its steps instead of compiling them (jax_cache.py). A cache the user
  chose through JAX_COMPILATION_CACHE_DIR is left in place.
  """
  if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    yield
    return
  restore = jax_cache.cache_every_program(path)
  try:
    yield
  finally:
    restore()


def _train_once(run: Run, trunk: Run | None, devices, attempt: runstate.Attempt | None
                ) -> tuple[str | None, str | None]:
  """(failure reason, the signal that stopped it) of one run, trained holding its lease through
  `attempt` (None: a multi-process sweep takes none), a branch forked off `trunk` first (under the
  lease: one fork, never two). runstate.Busy if another process holds it."""
  if attempt and not attempt.take(finished=lambda: core.finished_row(run)):
    return None, None  # another process finished it since this sweep looked
  try:
    if trunk is not None:
      if jax.process_index() == 0:
        core.fork(run, trunk)
      if jax.process_count() > 1:  # the others read the forked checkpoint once it is complete
        multihost_utils.sync_global_devices(f"fork {run.name}")
    # Every process gets the same last row back (only process 0 writes metrics.jsonl).
    last = trainer.train(run.config, run.workdir, devices,
                         claim=attempt and trainer.Claim(attempt))
  except KeyboardInterrupt:
    if attempt:
      attempt.end("preempted", "interrupted (KeyboardInterrupt)")
    raise
  except runstate.LeaseLost:  # taken over: its new holder trains it, this sweep waits for it
    if (current := runstate.holder(run.workdir)) is not None:
      raise runstate.Busy(run.workdir, current) from None
    return "its lease was taken over, and then released unfinished", None
  except Exception as e:  # noqa: BLE001  one run's failure must not end the sweep
    if not isinstance(e, InputError):
      tqdm.write(traceback.format_exc().rstrip())
    finished, reason, stopped_by = False, first_line(e, with_type=True), None
  else:
    finished = core.is_final(run, last)  # a run stopped at its last step finished
    # The machine is going away: the sweep stops too; the same command resumes this run.
    stopped_by = (last.get("preempted") and last.get("signal", "SIGTERM")) or None
    reason = None if finished or stopped_by else (
        f"{run.workdir} has no final metrics row after its last step (killed while writing it?); "
        "delete it to retrain")
  if attempt:
    attempt.end("finished" if finished else "preempted" if stopped_by else "failed",
                "" if finished else stopped_by or reason)
  return reason, stopped_by


def _wait_for_holder(run: Run, poll_s: float) -> str | None:
  """Waits until no live process holds `run`; the reason it failed there, if it did."""
  while (current := runstate.holder(run.workdir)) is not None and current.live():
    time.sleep(poll_s)
  status = runstate.read_status(run.workdir)
  if not core.finished_row(run) and status["state"] == "failed":
    return status.get("reason") or "failed in another process"
  return None


def run(plan: Plan, *, devices=None) -> Outcome:
  """Trains every run (and trunk) of `plan` not yet finished, one at a time, in the order
  `core.Work` gives (a trunk, then its branches); writes plan.json and, after each, results.csv.

  `devices` (default: all) is handed to `trainer.train`. KeyboardInterrupt stops the sweep, and so
  does a preemption (SIGTERM); any other exception fails only the run it came from (and the
  branches of a trunk that failed before they forked). A plan that conflicts with the runs in its
  directory is an InputError, raised before anything is written.
  """
  settings = plan.runs[0].config.distributed
  trainer.initialize_distributed(settings)  # before the first run: process 0 writes plan.json
  is_writer = jax.process_index() == 0
  sweep = rundir.SweepDir(plan.workdir)
  storage.check_writable(plan.workdir)
  every_run, plan_json = core.merge(plan, sweep)
  if is_writer:
    sweep.write_plan(plan_json)

  work = core.Work(plan, every_run)
  progress = plan.runs[0].config.progress and is_writer
  driver = uuid.uuid4().hex[:12]

  def attempt(run: Run) -> runstate.Attempt | None:
    if jax.process_count() > 1:  # its processes would have to agree on who holds the lease
      return None
    return runstate.Attempt(run.workdir, f"{driver}/{run.name}", plan.sweep["lease_seconds"],
                            executor="local")

  with compile_cache(sweep.compile_cache):
    bar = tqdm(total=len(work.units), initial=len(work.done), unit="run", dynamic_ncols=True,
               disable=not progress)
    preempted, stopped_by = _train_all(work, devices, attempt, bar, is_writer)
    bar.close()
  if is_writer:
    work.write_results()
  return work.outcome(preempted, stopped_by)


def _train_all(work: core.Work, devices, attempt, bar, is_writer: bool
               ) -> tuple[str | None, str | None]:
  """Trains the units `work` makes ready one at a time, then waits for those another process
  held (training them if it stopped unfinished), results.csv written after each by process 0.
  Returns (the run a signal stopped, the signal), or (None, None) once no unit is left."""
  held_elsewhere: list[Run] = []
  while True:
    if ready := work.ready():
      unit = ready[0]
      bar.set_description(unit.name)
      work.hold(unit)  # held until it ends here, or its holder elsewhere is done with it
      try:
        reason, stopped_by = _train_once(unit, work.trunk_of(unit), devices, attempt(unit))
      except runstate.Busy as busy:
        tqdm.write(f"{unit.name}: held by {busy.holder.where} (another process trains it); "
                   "training the other runs first, then waiting for it")
        held_elsewhere.append(unit)
        continue
    elif held_elsewhere:  # only runs other processes hold are left: wait, train if they stopped
      unit = held_elsewhere.pop(0)
      bar.set_description(unit.name)
      reason, stopped_by = _wait_for_holder(unit, POLL_S), None
      if not reason and not work.settle(unit):
        work.release(unit)
        continue
    else:
      return None, None
    _record_end(work, unit, reason, stopped_by, bar)
    if is_writer:
      work.write_results()
    if stopped_by:
      return unit.name, stopped_by


def _record_end(work: core.Work, unit: Run, reason: str | None, stopped_by: str | None,
                bar) -> None:
  """Files how `unit` ended in `work`: failed (said on the console), stopped by a signal, or
  finished (the progress bar moves on)."""
  if reason:
    work.fail(unit, reason)
    tqdm.write(f"{unit.name}: failed: {reason}")
  elif stopped_by:
    work.settle(unit)  # stopped at its last step: finished all the same
  elif work.finish(unit):  # else failed: no final metrics row after its last step
    bar.update(1)
  else:
    tqdm.write(f"{unit.name}: failed: {work.failed[unit.name]}")

"""Runs a plan one run after another in this process, and keeps results.csv current.

A re-run skips the runs that finished (it still lists them) and resumes a run cut off mid-way from
its checkpoint; a run that fails is recorded with a one-line reason and the sweep goes on. Compiled
steps are reused through JAX's persistent compilation cache under the sweep directory.

Results are never lost to a re-run: a plan whose runs conflict with those already in the directory
(same name, another config) is refused before anything is written, and a plan that names only some
of the directory's runs adds to plan.json instead of replacing it, so results.csv keeps listing
every finished run of every plan run there.
"""

import contextlib
import os
import traceback

import jax
from jax.experimental import multihost_utils
from jax.experimental.compilation_cache import compilation_cache
from tqdm import tqdm

from scaling import rundir
from scaling.errors import InputError
from scaling.sweep import core
from scaling.sweep.plan import Plan, Run
from scaling.train import trainer

Outcome = core.Outcome  # where both executors share it


@contextlib.contextmanager
def compile_cache(path: str):
  """JAX's persistent compilation cache in `path` for the duration, every program cached.

  Compilation dominates small CPU runs; a re-run or a run with the same program (same shape and
  hyperparameters) then loads its steps instead of compiling them. The thresholds default to
  skipping programs that compile in under a second, which is most of them here. A cache the user
  chose through JAX_COMPILATION_CACHE_DIR is left in place.
  """
  if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    yield
    return
  settings = {"jax_compilation_cache_dir": path,
              "jax_persistent_cache_min_compile_time_secs": 0.0,
              "jax_persistent_cache_min_entry_size_bytes": -1}
  previous = {name: getattr(jax.config, name) for name in settings}
  for name, value in settings.items():
    jax.config.update(name, value)
  compilation_cache.reset_cache()  # a cache opened earlier in this process keeps its old path
  try:
    yield
  finally:
    for name, value in previous.items():
      jax.config.update(name, value)
    compilation_cache.reset_cache()


def one_line(error: BaseException) -> str:
  message = (str(error).strip().splitlines() or [""])[0]
  if isinstance(error, InputError):
    return message
  return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _train_once(run: Run, trunk: Run | None, devices) -> tuple[str | None, str | None]:
  """(failure reason, the signal that stopped it) of one run, a branch forked off `trunk` first."""
  try:
    if trunk is not None:
      if jax.process_index() == 0:
        core.fork(run, trunk)
      if jax.process_count() > 1:  # the others read the forked checkpoint once it is complete
        multihost_utils.sync_global_devices(f"fork {run.name}")
    # Every process gets the same last row back (only process 0 writes metrics.jsonl).
    last = trainer.train(run.config, run.workdir, devices)
  except KeyboardInterrupt:
    raise
  except Exception as e:  # noqa: BLE001  one run's failure must not end the sweep
    if not isinstance(e, InputError):
      tqdm.write(traceback.format_exc().rstrip())
    return one_line(e), None
  if last.get("preempted"):  # the machine is going away; the same command resumes this run
    return None, last.get("signal", "SIGTERM")
  return None, None


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
  rundir.check_writable(plan.workdir)
  every_run, plan_json = core.merge(plan, sweep)
  if is_writer:
    rundir.write_json(sweep.plan_file, plan_json)

  work = core.Work(plan, every_run)
  preempted, stopped_by = None, None
  progress = plan.runs[0].config.progress and is_writer
  with compile_cache(sweep.compile_cache):
    bar = tqdm(total=len(work.units), initial=len(work.done), unit="run", dynamic_ncols=True,
               disable=not progress)
    while ready := work.ready():
      unit = ready[0]
      bar.set_description(unit.name)
      work.hold(unit)
      reason, stopped_by = _train_once(unit, work.trunk_of(unit), devices)
      if reason:
        work.fail(unit, reason)
        tqdm.write(f"{unit.name}: failed: {reason}")
      elif not stopped_by and work.finish(unit):
        bar.update(1)
      elif not stopped_by:
        tqdm.write(f"{unit.name}: failed: {work.failed[unit.name]}")
      if is_writer:
        work.write_results()
      if stopped_by:
        preempted = unit.name
        break
    bar.close()
  if is_writer:
    work.write_results()
  return work.outcome(preempted, stopped_by)

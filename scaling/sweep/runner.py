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
import dataclasses
import json
import os
import time
import traceback
import uuid

import jax
import ml_collections
from jax.experimental.compilation_cache import compilation_cache
from tqdm import tqdm

from scaling import rundir
from scaling.errors import InputError
from scaling.rundir import COMPILE_CACHE_DIR, PLAN_FILE
from scaling.sweep import results, runstate
from scaling.sweep.plan import Plan, Run
from scaling.train import config as train_config
from scaling.train import trackers, trainer
POLL_S = 2.0  # how often a run another process holds is looked at again
# Keys that change how a run reports or where it runs, not its result: a finished run whose
# recorded config differs from the plan only in these still counts as this plan's run.
PRESENTATION_KEYS = ("progress", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints",
                     "distributed", *trackers.CONFIG_KEYS)


@dataclasses.dataclass(frozen=True)
class Outcome:
  finished: tuple[str, ...]  # runs with a final eval, trained now or before, in plan order
  failed: dict[str, str]  # run name -> one-line reason
  results_path: str
  preempted: str | None = None  # the run a signal stopped (after a checkpoint); the sweep stopped too
  signal: str | None = None  # which: "SIGTERM" (preemption) or "SIGINT" (Ctrl-C)


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


def _difference(where: str, recorded: dict, run: Run) -> str | None:
  """The first config key (presentation aside) on which `recorded` is not `run`'s config; a key
  the recorded run predates had its default then."""
  recorded = {**trainer.flatten(train_config.defaults().to_dict()), **trainer.flatten(recorded)}
  planned = trainer.flatten(json.loads(json.dumps(run.config.to_dict())))
  for key, value in planned.items():
    if key.split(".")[0] not in PRESENTATION_KEYS and recorded.get(key) != value:
      return (f"{where} holds a run {run.name} with {key}={recorded.get(key)!r}, the plan has "
              f"{value!r}; use a fresh --workdir or delete that run")
  return None


def _config_mismatch(run: Run) -> str | None:
  """Why the run recorded in the run's workdir is not this plan's run; None if it is (or if none).

  Run names encode only budget, size and horizon: a sweep edited and re-run in the same directory
  (another recipe, seq_len, ...) must not count the old runs as its own.
  """
  path = rundir.RunDir(run.workdir).run_file
  if not rundir.exists(path):
    return None
  try:
    recorded = rundir.read_json(path)["config"]
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    return f"{path} is unreadable ({e!r})"
  return _difference(run.workdir, recorded, run)


def _recorded_runs(sweep: rundir.SweepDir) -> dict[str, tuple[dict, Run]]:
  """Run name -> (its plan.json entry, the Run) of the plan already in the sweep directory."""
  if not rundir.exists(sweep.plan_file):
    return {}
  try:
    entries = rundir.read_json(sweep.plan_file)["runs"]
    return {entry["name"]: (entry, Run(
        name=entry["name"], workdir=rundir.join(sweep.root, entry["workdir"]),
        config=ml_collections.ConfigDict(entry["config"]),
        **{key: entry[key] for key in ("budget", "target_params", "params",
                                       "params_non_embedding", "steps", "tokens", "flops")}))
            for entry in entries}
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise InputError(f"{sweep.plan_file} is unreadable ({e!r}); use a fresh --workdir") from None


def _merge(plan: Plan, sweep: rundir.SweepDir) -> tuple[list[Run], dict]:
  """(every run of the directory, the plan.json that lists them): the runs planned there before,
  in their order, this plan's replacing those of the same name, this plan's new ones after.
  A planned run that conflicts with a recorded one (plan.json or its run.json) is an InputError."""
  recorded = _recorded_runs(sweep)
  for run in plan.runs:
    reason = _config_mismatch(run)
    if reason is None and run.name in recorded:
      reason = _difference(sweep.plan_file, recorded[run.name][0]["config"], run)
    if reason:
      raise InputError(f"--workdir {plan.workdir}: {reason}")
  planned = {run.name: run for run in plan.runs}
  plan_json = plan.to_json()
  new_entries = {entry["name"]: entry for entry in plan_json["runs"]}
  names = list(recorded) + [name for name in planned if name not in recorded]
  plan_json["runs"] = [new_entries.get(name) or recorded[name][0] for name in names]
  return [planned.get(name) or recorded[name][1] for name in names], plan_json


def _row(run: Run, last: dict) -> dict:
  """A results.csv row from the run's metadata and its last metrics row."""
  recorded = rundir.RunDir(run.workdir).read_run()
  return {"name": run.name, "params": recorded["params"],
          "params_non_embedding": recorded["params_non_embedding"], "tokens": last["tokens"],
          "flops": last["flops"], "flops_kaplan": last["flops_kaplan"], "loss": last["eval_loss"],
          "budget": run.budget, "seed": run.config.seed}


def _is_final(run: Run, last: dict) -> bool:
  return last.get("step") == run.steps and "eval_loss" in last


def finished_row(run: Run) -> dict | None:
  """The results row of a run whose metrics reached its last step with an eval loss; else None."""
  run_files = rundir.RunDir(run.workdir)
  if not (run_files.has_run() and run_files.has_metrics()):
    return None
  rows = run_files.read_metrics()
  return _row(run, rows[-1]) if rows and _is_final(run, rows[-1]) else None


def one_line(error: BaseException) -> str:
  message = (str(error).strip().splitlines() or [""])[0]
  if isinstance(error, InputError):
    return message
  return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _train_once(run: Run, devices, attempt: runstate.Attempt | None
                ) -> tuple[dict | None, str | None, str | None]:
  """(results row, failure reason, the signal that stopped it) of one run, trained unless it
  already finished; holding its lease through `attempt` (None: a multi-process sweep takes none).
  runstate.Busy if another process holds it."""
  row = finished_row(run)
  if row:
    return row, None, None
  if attempt and not attempt.take(finished=lambda: finished_row(run)):
    return finished_row(run), None, None
  try:
    # Every process gets the same last row back (only process 0 writes metrics.jsonl).
    last = trainer.train(run.config, run.workdir, devices,
                         claim=attempt and trainer.Claim(attempt))
  except KeyboardInterrupt:
    if attempt:
      attempt.end("preempted", "interrupted (KeyboardInterrupt)")
    raise
  except Exception as e:  # noqa: BLE001  one run's failure must not end the sweep
    if not isinstance(e, InputError):
      tqdm.write(traceback.format_exc().rstrip())
    row, reason, stopped_by = None, one_line(e), None
  else:
    row = _row(run, last) if _is_final(run, last) else None  # a run stopped at its end finished
    # The machine is going away: the sweep stops too; the same command resumes this run.
    stopped_by = last.get("preempted") and last.get("signal", "SIGTERM")
    reason = None if row or stopped_by else (
        f"{run.workdir} has a checkpoint at its last step but no final metrics row (killed while "
        "writing it?); delete it to retrain")
  if attempt:
    attempt.end("finished" if row else "preempted" if stopped_by else "failed",
                "" if row else stopped_by or reason)
  return row, reason, stopped_by or None


def _wait_for_holder(run: Run, poll_s: float) -> tuple[dict | None, str | None]:
  """Waits until no live process holds `run`; (its results row, or the reason it failed there),
  both None if its holder stopped it unfinished (this process may train it)."""
  while (current := runstate.holder(run.workdir)) is not None and current.live():
    time.sleep(poll_s)
  row = finished_row(run)
  status = runstate.read_status(run.workdir)
  if not row and status["state"] == "failed":
    return None, status.get("reason") or "failed in another process"
  return row, None


def run(plan: Plan, *, devices=None) -> Outcome:
  """Trains every run of `plan` not yet finished; writes plan.json and, after each run, results.csv.

  `devices` (default: all) is handed to `trainer.train`. KeyboardInterrupt stops the sweep, and so
  does a preemption (SIGTERM); any other exception fails only the run it came from. A plan that
  conflicts with the runs in its directory is an InputError, raised before anything is written.
  """
  settings = plan.runs[0].config.distributed
  trainer.initialize_distributed(settings)  # before the first run: process 0 writes plan.json
  is_writer = jax.process_index() == 0
  sweep = rundir.SweepDir(plan.workdir)
  results_path = sweep.results_file
  rundir.check_writable(plan.workdir)
  every_run, plan_json = _merge(plan, sweep)
  if is_writer:
    rundir.write_json(sweep.plan_file, plan_json)

  # Runs of earlier plans in this directory keep their rows; this plan's are (re)trained below.
  rows = {run.name: row for run in every_run if run.name not in {r.name for r in plan.runs}
          and (row := finished_row(run))}
  failed, preempted, stopped_by = {}, None, None
  progress = plan.runs[0].config.progress and is_writer
  driver = uuid.uuid4().hex[:12]

  def attempt(run: Run) -> runstate.Attempt | None:
    if jax.process_count() > 1:  # its processes would have to agree on who holds the lease
      return None
    return runstate.Attempt(run.workdir, f"{driver}/{run.name}", plan.sweep["lease_seconds"],
                            executor="local")

  with compile_cache(sweep.compile_cache):
    bar = tqdm(total=len(plan.runs), unit="run", dynamic_ncols=True, disable=not progress)
    queue, held_elsewhere = list(plan.runs), []
    while queue or held_elsewhere:
      if queue:
        planned = queue.pop(0)
        bar.set_description(planned.name)
        try:
          row, reason, stopped_by = _train_once(planned, devices, attempt(planned))
        except runstate.Busy as busy:
          tqdm.write(f"{planned.name}: held by {busy.holder.where} (another process trains it); "
                     "training the other runs first, then waiting for it")
          held_elsewhere.append(planned)
          continue
      else:  # only runs other processes hold are left: wait for each, train it if they stopped
        planned = held_elsewhere.pop(0)
        bar.set_description(planned.name)
        row, reason = _wait_for_holder(planned, POLL_S)
        if not (row or reason):
          queue.append(planned)
          continue
      if reason:
        failed[planned.name] = reason
        tqdm.write(f"{planned.name}: failed: {reason}")
      elif row:
        rows[planned.name] = row
      bar.update(1)
      if is_writer:
        results.write(results_path, [rows[r.name] for r in every_run if r.name in rows])
      if stopped_by:
        preempted = planned.name
        break
    bar.close()
  finished = tuple(r.name for r in plan.runs if r.name in rows)
  return Outcome(finished=finished, failed=failed, results_path=results_path, preempted=preempted,
                 signal=stopped_by)

"""What both executors (runner.py here, fleet.py on Ray) agree on about a sweep's runs: which are
done, which may start now, which never can, and what a re-run in the same directory may change.

Everything is read from the sweep directory (plan.json, each run's metrics and checkpoints), never
from an executor's memory, so a re-run, a second driver or a restarted one reaches the same answer.
A run with a trunk (`sweep.branches=cooldown`) may start once the trunk's checkpoint at its fork
step is complete; `fork` then seeds its workdir from that checkpoint. An executor holds a run while
it trains it (or sees it held elsewhere, by a lease: runstate.py) and releases it to re-queue it.
"""

import dataclasses
import os
import shutil

import ml_collections

from scaling import rundir, storage
from scaling.errors import InputError
from scaling.records import PlanRecord
from scaling.sweep import results
from scaling.sweep.plan import Plan, Run
from scaling.train import resume

# The file orbax writes last into a checkpoint on an object store (locally it renames a temporary
# directory instead): a step directory without it is still being written.
COMMIT_FILE = "commit_success.txt"


@dataclasses.dataclass(frozen=True)
class Outcome:
  finished: tuple[str, ...]  # runs with a final eval, trained now or before, in plan order
  failed: dict[str, str]  # run (or trunk) name -> one-line reason
  results_path: str
  preempted: str | None = None  # the run a signal stopped (after a checkpoint); the sweep stopped too
  signal: str | None = None  # which: "SIGTERM" (preemption) or "SIGINT" (Ctrl-C)


# What a re-run may change: a plan's runs against those already in the directory.

def difference(where: str, recorded: dict, run: Run) -> str | None:
  """Why a run recorded at `where` with config `recorded` is not `run` (None if it is): it could
  not be continued as `run` under train's resume policy (resume.py), which names the first key."""
  decision = resume.decide(recorded, run.config.to_dict())
  if decision.allowed:
    return None
  key = decision.first()
  before, now = decision.changes[key]
  return (f"{where} holds a run {run.name} with {key}={before!r}, the plan has {now!r}; use a "
          "fresh --workdir or delete that run")


def _config_mismatch(run: Run) -> str | None:
  """Why the run recorded in the run's workdir is not this plan's run; None if it is (or if none).

  Run names encode only budget, size and horizon: a sweep edited and re-run in the same directory
  (another recipe, seq_len, ...) must not count the old runs as its own.
  """
  recorded = rundir.RunDir(run.workdir)
  if not recorded.has_run():
    return None
  try:
    record = recorded.record()
    record.needs("config")
  except InputError as e:
    return str(e)
  return difference(run.workdir, record.config, run)


def _recorded(sweep: rundir.SweepDir) -> dict[str, dict[str, tuple[dict, Run]]]:
  """{"runs": ..., "trunks": ...}, each name -> (its plan.json entry, the Run), of the plan
  already in the sweep directory."""
  if not sweep.has_plan():
    return {"runs": {}, "trunks": {}}
  try:
    plan = sweep.read_plan()
    return {group: {entry["name"]: (entry, Run(
        name=entry["name"], workdir=storage.join(sweep.root, entry["workdir"]),
        config=ml_collections.ConfigDict(entry["config"]),
        trunk=entry.get("trunk", ""), fork_step=entry.get("fork_step", 0),
        **{key: entry[key] for key in ("budget", "target_params", "params",
                                       "params_non_embedding", "steps", "tokens", "flops")}))
        for entry in plan.entries(group)} for group in ("runs", "trunks")}
  except InputError as e:
    raise InputError(f"{e}; use a fresh --workdir") from None
  except (KeyError, TypeError) as e:  # an entry without a summary key
    raise InputError(f"{sweep.plan_file} is unreadable ({e!r}); use a fresh --workdir") from None


def merge(plan: Plan, sweep: rundir.SweepDir) -> tuple[list[Run], PlanRecord]:
  """(every run of the directory, the plan.json record that lists them): the runs (and trunks) planned
  there before, in their order, this plan's replacing those of the same name, this plan's new ones
  after. A planned run that conflicts with a recorded one (plan.json or its run.json) is an
  InputError."""
  recorded = _recorded(sweep)
  plan_json = plan.to_json()
  every = {}
  for group, planned_runs in (("runs", plan.runs), ("trunks", plan.trunks)):
    for run in planned_runs:
      reason = _config_mismatch(run)
      if reason is None and run.name in recorded[group]:
        reason = difference(sweep.plan_file, recorded[group][run.name][0]["config"], run)
      if reason:
        raise InputError(f"--workdir {plan.workdir}: {reason}")
    planned = {run.name: run for run in planned_runs}
    new_entries = {entry["name"]: entry for entry in plan_json.get(group, [])}
    names = list(recorded[group]) + [name for name in planned if name not in recorded[group]]
    if names:
      plan_json[group] = [new_entries.get(name) or recorded[group][name][0] for name in names]
    every[group] = [planned.get(name) or recorded[group][name][1] for name in names]
  return every["runs"], PlanRecord.from_json(plan_json, sweep.plan_file)


# What is done: a run whose metrics reached its last step with an eval loss.

def row(run: Run, last: dict) -> dict:
  """A results.csv row from the run's metadata and its last metrics row. The learning rate is the
  one the run recorded, which a plan with resume_changes=allow may differ from."""
  recorded = rundir.RunDir(run.workdir).record()
  recorded.needs("params", "params_non_embedding", "config")
  return {"name": run.name, "params": recorded.params,
          "params_non_embedding": recorded.params_non_embedding, "tokens": last["tokens"],
          "flops": last["flops"], "flops_kaplan": last["flops_kaplan"], "loss": last["eval_loss"],
          "budget": run.budget, "seed": run.config.seed, "bpb": last.get("eval_bpb"),
          "trunk": run.trunk,
          "learning_rate": recorded.config.get("learning_rate", run.config.learning_rate),
          "batch_size": run.config.batch_size}


def is_final(run: Run, last: dict) -> bool:
  return last.get("step") == run.steps and "eval_loss" in last


def finished_row(run: Run) -> dict | None:
  """The results row of a run (or trunk) whose metrics reached its last step with an eval loss;
  else None."""
  run_files = rundir.RunDir(run.workdir)
  if not (run_files.has_run() and run_files.has_metrics()):
    return None
  rows = run_files.read_metrics()
  return row(run, rows[-1]) if rows and is_final(run, rows[-1]) else None


# Branches: when one may start, and how it starts.

def _complete(step_dir: str) -> bool:
  """Whether orbax finished writing this checkpoint (see COMMIT_FILE)."""
  if storage.is_remote(step_dir):
    return storage.exists(storage.join(step_dir, COMMIT_FILE))
  return storage.is_dir(step_dir)


def fork_checkpoint(run: Run, trunk: Run) -> str:
  return storage.join(rundir.RunDir(trunk.workdir).checkpoints, str(run.fork_step))


def started(run: Run) -> bool:
  """Whether the run has a complete checkpoint of its own (a branch: it has forked)."""
  checkpoints = rundir.RunDir(run.workdir).checkpoints
  return any(name.isdigit() and _complete(storage.join(checkpoints, name))
             for name in storage.list_names(checkpoints))


def fork(run: Run, trunk: Run) -> None:
  """Starts a branch off its trunk, unless it has started: the trunk's metrics rows up to the fork
  step, then its checkpoint there (train state and data position) copied into the branch's workdir,
  complete last, so a fork cut off half-way is redone. Training the branch then resumes there.
  Its rows up to the fork are the trunk's: the same training, recorded once more."""
  if started(run):
    return
  source, branch = fork_checkpoint(run, trunk), rundir.RunDir(run.workdir)
  rows = [r for r in rundir.RunDir(trunk.workdir).read_metrics() if r["step"] <= run.fork_step]
  storage.write_text(branch.metrics_file, rundir.rows_text(rows))
  target = storage.join(branch.checkpoints, str(run.fork_step))
  if storage.is_remote(target):  # written in place; the commit file, copied last, completes it
    files = sorted(_files(source), key=lambda path: path == COMMIT_FILE)
    for path in files:
      storage.write_bytes(storage.join(target, path), storage.read_bytes(storage.join(source, path)))
    return
  staging = os.path.join(run.workdir, "fork.tmp")
  shutil.rmtree(staging, ignore_errors=True)
  shutil.copytree(source, staging)
  os.makedirs(branch.checkpoints, exist_ok=True)
  os.replace(staging, target)


def _files(root: str) -> list[str]:
  """The paths, relative to `root`, of every file below it."""
  from etils import epath

  base = epath.Path(root)
  return [os.fspath(path.relative_to(base)) for path in base.rglob("*") if path.is_file()]


class Work:
  """A plan's runs and trunks as an executor works through them: which are done, which may start
  now (`ready`), which failed, and results.csv's rows (those of earlier plans' runs included).

  Trunks come right before their first branch, so one run at a time trains a trunk then its
  branches. A branch is ready once it has forked or its fork checkpoint is complete; a trunk that
  failed, or finished without that checkpoint, fails the branches that had not forked.
  """

  def __init__(self, plan: Plan, every_run: list[Run]):
    self.plan, self.every_run = plan, every_run
    self.trunks = {trunk.name: trunk for trunk in plan.trunks}
    self.units: list[Run] = []
    for run in plan.runs:
      if run.trunk and run.trunk not in {unit.name for unit in self.units}:
        self.units.append(self.trunks[run.trunk])
      self.units.append(run)
    planned = {run.name for run in plan.runs}
    self.rows = {run.name: found for run in every_run
                 if run.name not in planned and (found := finished_row(run))}
    self.done: set[str] = set()
    self.failed: dict[str, str] = {}
    self._held: set[str] = set()
    for unit in self.units:
      self.settle(unit)

  def settle(self, unit: Run) -> bool:
    """Records the unit as done if its workdir says so; whether it is."""
    found = finished_row(unit)
    if found:
      self.done.add(unit.name)
      self._held.discard(unit.name)
      if unit.name not in self.trunks:
        self.rows[unit.name] = found
    return bool(found)

  def finish(self, unit: Run) -> bool:
    """An executor's run ended well: done, or failed when its final metrics row is missing."""
    if self.settle(unit):
      return True
    self.fail(unit, f"{unit.workdir} has no final metrics row after its last step (killed while "
                    "writing it?); delete it to retrain")
    return False

  def fail(self, unit: Run, reason: str) -> None:
    self.failed[unit.name] = reason
    self._held.discard(unit.name)

  def hold(self, unit: Run) -> None:
    """An executor has the unit in hand (training it, or waiting on a lease held elsewhere)."""
    self._held.add(unit.name)

  def release(self, unit: Run) -> None:
    """Back in the queue (preempted, or to look at again)."""
    self._held.discard(unit.name)

  def trunk_of(self, unit: Run) -> Run | None:
    return self.trunks.get(unit.trunk) if unit.trunk else None

  def ready(self) -> list[Run]:
    """The units that may start now, in order; fails the branches whose trunk can no longer
    give them their fork."""
    found = []
    for unit in self.units:
      if unit.name in self.done or unit.name in self.failed or unit.name in self._held:
        continue
      trunk = self.trunk_of(unit)
      if trunk is None or started(unit) or _complete(fork_checkpoint(unit, trunk)):
        found.append(unit)
      elif trunk.name in self.failed:
        self.fail(unit, f"its trunk {trunk.name} failed: {self.failed[trunk.name]}")
      elif trunk.name in self.done:
        self.fail(unit, f"its trunk {trunk.name} finished without a checkpoint at step "
                        f"{unit.fork_step}; delete {trunk.workdir} to retrain it")
    return found

  def unfinished(self) -> bool:
    return any(u.name not in self.done and u.name not in self.failed for u in self.units)

  def write_results(self) -> None:
    results.write(self.results_path, [self.rows[r.name] for r in self.every_run
                                      if r.name in self.rows])

  @property
  def results_path(self) -> str:
    return rundir.SweepDir(self.plan.workdir).results_file

  def outcome(self, preempted: str | None = None, signal: str | None = None) -> Outcome:
    names = [unit.name for unit in self.units]
    return Outcome(finished=tuple(r.name for r in self.plan.runs if r.name in self.rows),
                   failed={name: self.failed[name] for name in names if name in self.failed},
                   results_path=self.results_path, preempted=preempted, signal=signal)

"""The training loop: config -> sharded state -> steps -> metrics rows; what happens around the
steps (eval, checkpoints, run.json, trackers, the progress bar) are hooks (scaling/train/hooks.py).

Re-running with the same workdir resumes from the latest checkpoint, which holds the train state and
the input iterator's state (grain's, one file per process), so the data position is restored exactly.
"""

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

import scaling
from scaling import data, models, rundir, storage
from scaling.errors import InputError, first_line
from scaling.parallel import memory
from scaling.parallel import mesh as mesh_lib
from scaling.parallel import pacing
from scaling.parallel import rules
from scaling.records import RunRecord
from scaling.train import config as config_lib
from scaling.train import hooks as hooks_lib
from scaling.train import resume
from scaling.train import state as state_lib
from scaling.train import trackers

# What a tracker's run config gets from run.json besides the config: the run's size and cost.
TRACKED_METADATA = ("params", "params_non_embedding", "flops_per_token", "tokens_per_step")


def _git_commit() -> str | None:
  package_dir = os.path.dirname(os.path.abspath(scaling.__file__))
  try:
    out = subprocess.run(["git", "-C", package_dir, "rev-parse", "HEAD"],
                         capture_output=True, text=True, timeout=5, check=True)
    return out.stdout.strip() or None
  except (OSError, subprocess.SubprocessError):
    return None


def _describe(changes: dict) -> str:
  return ", ".join(f"{key} {old!r} → {new!r}" for key, (old, new) in changes.items())


def _prepare_workdir(workdir: str, resolved: dict, corpus_sha256: str) -> tuple[list, dict]:
  """Checks the workdir is usable and, if it holds a run, that this run may continue it
  (resume.py's policy); writes nothing. Returns (the run's recorded history, the result-changing
  keys this resume changes)."""
  storage.check_writable(workdir)
  run = rundir.RunDir(workdir)
  if not run.has_run():
    return [], {}
  try:
    previous = run.record()
    previous.needs("config")
    previous_sha256 = previous.corpus_sha256
  except InputError as e:
    raise InputError(f"{e}; use a fresh --workdir") from None
  if previous_sha256 != corpus_sha256:
    raise InputError(f"--workdir {workdir} was trained on a different corpus (sha256 "
                     f"{previous_sha256[:12]}… vs {corpus_sha256[:12]}…); use a fresh --workdir")
  decision = resume.decide(previous.config, resolved)
  if decision.fixed:
    raise InputError(f"--workdir {workdir} holds a run with a different {decision.fixed} "
                     f"({_describe(decision.group(decision.fixed))}); use a fresh --workdir")
  if not decision.allowed:
    raise InputError(f"--workdir {workdir} holds a run with {_describe(decision.changes)}: "
                     "resuming would change its result part-way; use a fresh --workdir, or add "
                     "--config.resume_changes=allow to continue (run.json records the change)")
  return list(previous.history or ()), decision.changes


def _run_record(cfg, resolved, corpus, mesh) -> RunRecord:
  """run.json's record of this run, but how it started (hooks.RecordWriter adds that)."""
  architecture = models.get(cfg.model.arch)
  counts = architecture.param_counts(cfg.model)
  import flax

  return RunRecord(
      config=resolved,
      params=counts["total"],
      params_non_embedding=counts["non_embedding"],
      flops_per_token=architecture.flops_per_token(cfg.model),
      tokens_per_step=cfg.tokens_per_step,
      train_steps=cfg.train_steps,
      corpus=corpus.fingerprint,
      mesh=dict(zip(mesh.axis_names, mesh.devices.shape)),
      versions={"scaling": scaling.__version__, "jax": jax.__version__, "flax": flax.__version__},
      device_kind=mesh.devices.flat[0].device_kind,
      device_count=mesh.devices.size,
      process_count=jax.process_count(),
      git_commit=_git_commit(),
  )


def _global_batch(local_bxW: np.ndarray, sharding) -> jax.Array:
  """Each process hands in its rows; together they form the global batch laid out on the mesh."""
  return jax.make_array_from_process_local_data(sharding, local_bxW)


def initialize_distributed(settings) -> None:
  """Joins the processes of a multi-host run (once; a sweep joins before its first run).

  `settings` is `config.distributed`; empty values are auto-detected (TPU VMs, SLURM).
  """
  if not settings["initialize"] or jax.distributed.is_initialized():
    return
  kwargs = {}
  if settings["coordinator_address"]:
    kwargs["coordinator_address"] = settings["coordinator_address"]
  if settings["num_processes"] > 0:
    kwargs["num_processes"] = settings["num_processes"]
  if settings["process_id"] >= 0:
    kwargs["process_id"] = settings["process_id"]
  try:
    jax.distributed.initialize(**kwargs)
  except (ValueError, RuntimeError) as e:  # nothing to join: not a TPU VM / SLURM, no address given
    reason = first_line(e)
    raise InputError(f"distributed.initialize=true: jax.distributed.initialize() failed ({reason}); "
                     "on one machine leave it false, else set distributed.coordinator_address, "
                     "num_processes and process_id") from None


@dataclasses.dataclass(frozen=True)
class Prepared:
  """A run that passed every check: what `train` builds on, nothing yet written."""

  cfg: config_lib.TrainConfig
  resolved: dict  # the config as recorded in run.json, run length and warmup resolved
  corpus: data.Corpus
  mesh: jax.sharding.Mesh
  steps: state_lib.Steps
  train_data: object  # grain dataset of process-local train batches
  eval_data: object  # grain dataset of process-local eval batches
  history: list  # run.json's record of earlier resumes that changed result keys
  changes: dict  # the result keys this resume changes: {key: (recorded, now)}


def prepare(config: ml_collections.ConfigDict, workdir: str, devices=None) -> Prepared:
  """Validates everything that can be wrong with the input before a single file is written: the
  config, the data (both splits hold a batch), the mesh, the memory the state needs and the
  workdir (and the run it holds)."""
  corpus = data.load_corpus(config.data)
  cfg = config_lib.validate(config, vocab_size=corpus.tokenizer.vocab_size)
  initialize_distributed(cfg.distributed)
  mesh = mesh_lib.make_mesh(cfg.mesh, devices)
  config_lib.check_fits_mesh(cfg, mesh.devices.shape, jax.process_count())
  process = dict(process_index=jax.process_index(), process_count=jax.process_count())
  train_data = data.train_batches(
      corpus.train, seq_len=cfg.model.seq_len, global_batch_size=cfg.batch_size, seed=cfg.seed,
      **process)
  eval_data = data.eval_batches(
      corpus.validation, seq_len=cfg.model.seq_len, global_batch_size=cfg.batch_size,
      num_batches=cfg.eval_batches, **process)
  steps = state_lib.build(cfg, mesh)
  memory.check_fits(memory.bytes_per_device(steps.abstract_state),
                    "the train state (parameters and AdamW moments)",
                    "make the model smaller (model.d_model, model.n_layers) or shard it over "
                    f"more devices ({rules.param_split_keys(cfg.sharding_rules)})")
  resolved = config.to_dict()
  resolved["model"] = {**resolved["model"], "vocab_size": cfg.model.vocab_size}
  resolved["train_steps"] = cfg.train_steps
  resolved["warmup_steps"] = cfg.warmup_steps
  history, changes = _prepare_workdir(workdir, resolved, corpus.fingerprint["sha256"])
  return Prepared(cfg=cfg, resolved=resolved, corpus=corpus, mesh=mesh, steps=steps,
                  train_data=train_data, eval_data=eval_data, history=history, changes=changes)


class Diverged(RuntimeError):
  """A non-finite loss or gradient: the run stops, its last good checkpoint stays."""


class OutOfMemory(RuntimeError):
  """The device ran out of memory in a step (the state fitted; activations did not)."""


class Preemption:
  """SIGTERM (how TPU VMs are preempted) or SIGINT (Ctrl-C) asks the loop to save and stop after
  the current step; `signal` says which. A second Ctrl-C stops at once (KeyboardInterrupt).

  With several processes, all must stop at the same step: orbax's `reached_preemption` agrees on it
  through the jax.distributed coordination service, which catches SIGTERM itself.
  """

  def __init__(self, checkpoints: ocp.CheckpointManager):
    self._checkpoints = checkpoints
    self.signal: signal.Signals | None = None
    self._previous = {}
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._handle)
      if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # ignored: started in background
        self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._handle)

  def _handle(self, signum, frame):
    del frame
    if signum == signal.SIGINT and self.signal == signal.SIGINT:
      raise KeyboardInterrupt
    self.signal = signal.Signals(signum)

  def reached(self, step: int) -> bool:
    if jax.process_count() > 1:
      if self._checkpoints.reached_preemption(step):
        self.signal = signal.SIGTERM
    return self.signal is not None

  def close(self):
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)


class Claim(hooks_lib.Hook):
  """Holds the run's lease (runstate.Attempt) while it trains: takes it after the first step if the
  caller has not (so a run that fails its checks or its first step writes nothing), and stops the
  run (LeaseLost) if another process took it over. First of the hooks: before anything is written.
  """

  every = 1

  def __init__(self, attempt):
    self.attempt = attempt

  def on_start(self, start: int) -> None:
    del start
    if not self.attempt.taken:
      self.attempt.take()

  def on_step(self, info: hooks_lib.StepInfo) -> None:
    del info
    self.attempt.check()


class Loop:
  """The step loop: steps, metrics rows and preemption; everything else is a hook (hooks.py).

  A row's metrics are pulled to the host one step late, once the next step is queued, so the
  device never waits for the host; at a checkpoint they are pulled at once, and a non-finite loss,
  gradient or eval loss stops the run before a state that went non-finite is saved.
  """

  def __init__(self, cfg: config_lib.TrainConfig, steps: state_lib.Steps, flops_per_token: dict,
               checkpointer: hooks_lib.Checkpointer, hooks: list[hooks_lib.Hook]):
    self.cfg, self.steps, self.flops_per_token = cfg, steps, flops_per_token
    self.checkpointer, self.hooks = checkpointer, hooks
    self._last = {}

  def _due(self, done: int, every: int) -> bool:
    return done % every == 0 or done == self.cfg.train_steps

  def _needs_row(self, done: int) -> bool:
    return self._due(done, self.cfg.log_every) or self._due(done, self.cfg.eval_every)

  def _record(self, done: int, step_metrics: dict, evaluated: dict, first_bad) -> None:
    """Pulls one step's metrics to the host, stops on a non-finite value, hands its row to the
    hooks if one is due."""
    cfg = self.cfg
    host, evaluated, first_bad = jax.device_get((step_metrics, evaluated, first_bad))
    bad_eval = "eval_loss" in evaluated and not np.isfinite(evaluated["eval_loss"])
    if first_bad or bad_eval:
      what = f"loss or gradient at step {first_bad}" if first_bad else f"eval loss at step {done}"
      kept = self.checkpointer.describe_latest()
      raise Diverged(f"non-finite {what}; last good checkpoint: {kept}")
    if not self._needs_row(done):
      return
    now, last = time.perf_counter(), self._last
    tokens = done * cfg.tokens_per_step
    seconds = max(now - last["time"], 1e-9)
    row = {"step": done, "tokens": tokens,
           "flops": self.flops_per_token["chinchilla"] * tokens,
           "flops_kaplan": self.flops_per_token["kaplan"] * tokens,
           "loss": float(host["loss"]), "lr": float(host["lr"]), "grad_norm": float(host["grad_norm"]),
           "tokens_per_sec": (done - last["step"]) * cfg.tokens_per_step / seconds}
    for key, value in evaluated.items():
      row[key] = [round(float(x), 6) for x in value] if np.ndim(value) else float(value)
    for hook in self.hooks:
      hook.on_row(row)
    last.update(time=now, step=done, row=row)

  def run(self, start: int, train_state, batches) -> dict:
    """Steps from `start` to the end (or a preemption); the last row, as `train` returns it."""
    cfg, steps, hooks = self.cfg, self.steps, self.hooks
    self._last = {"time": time.perf_counter(), "step": start, "row": {}}
    preemption = Preemption(self.checkpointer.manager)
    pacer = pacing.Pacer()  # a long log_every would otherwise queue every step (pacing.py)
    pending = None  # a row step's (step, metrics, eval metrics, first_bad), pulled a step later
    first_bad = steps.no_bad_step()
    error = None
    try:
      for step in range(start, cfg.train_steps):
        batch = _global_batch(next(batches), steps.batch_sharding)
        train_state, step_metrics, first_bad = steps.train(train_state, batch, first_bad)
        pacer.pace(step_metrics)
        done = step + 1
        info = hooks_lib.StepInfo(done, train_state, step_metrics)
        if step == start:  # the run has started: it compiled, fitted and ran one step
          jax.block_until_ready(first_bad)
          for hook in hooks:
            hook.on_start(start)
        if pending is not None:  # one step late: the device already has this step queued
          self._record(*pending)
          pending = None
        evaluated = {}
        if self._due(done, cfg.eval_every):
          for hook in hooks:
            evaluated.update(hook.on_eval(info))
        if self._needs_row(done):
          pending = (done, step_metrics, evaluated, first_bad)
        preempted = preemption.reached(done)
        if self._due(done, cfg.checkpoint_every) or done in cfg.checkpoint_steps or preempted:
          # Pulled now: a state that went non-finite is never checkpointed.
          self._record(done, step_metrics, evaluated, first_bad)
          pending = None
          for hook in hooks:
            hook.on_checkpoint(info, preempted)
        for hook in hooks:
          if hook.every and self._due(done, hook.every):
            hook.on_step(info)
        if preempted:
          self._last["row"] = {**self._last["row"], "step": done, "preempted": True,
                               "signal": preemption.signal.name}
          break
    except BaseException as e:
      error = e
      if isinstance(e, jax.errors.JaxRuntimeError) and "RESOURCE_EXHAUSTED" in str(e):
        error = OutOfMemory(f"out of memory in step {self._last['step'] + 1} "
                            f"({str(e).splitlines()[0][:200]}); lower batch_size or model.seq_len, "
                            "set model.remat=full, or shard over more devices "
                            f"({rules.param_split_keys(cfg.sharding_rules)})")
        raise error from None
      raise
    finally:
      preemption.close()
      failed = None
      for hook in reversed(hooks):  # every hook closes, even after one failed to (a full disk)
        try:
          hook.on_end(error)
        except Exception as e:  # noqa: BLE001  raised below, once the others have closed
          failed = failed or e
      if failed is not None and error is None:
        raise failed
    return self._last["row"]


def train(config: ml_collections.ConfigDict, workdir: str, devices=None,
          hooks: Sequence[hooks_lib.Hook] = (), claim: Claim | None = None) -> dict:
  """Trains (or resumes) the run described by `config` in `workdir`; returns the last metrics row.

  Nothing is written until the first step has run: a run that fails its checks, or whose first
  step fails (out of memory), leaves the workdir as it was. The returned row has "preempted": True
  and "signal": "SIGTERM" | "SIGINT" when a signal stopped the run early (after a checkpoint).
  `devices` defaults to every device of every process; a subset is for side-by-side comparisons.
  `hooks` run after the run's own (progress, eval, run.json, trackers) and before the checkpointer;
  `claim`, the run's lease, before every other.
  """
  prepared = prepare(config, workdir, devices)
  cfg, steps = prepared.cfg, prepared.steps
  run = rundir.RunDir(storage.absolute(workdir))
  is_writer = jax.process_index() == 0
  record = _run_record(cfg, prepared.resolved, prepared.corpus, prepared.mesh)

  batches = data.iterate_from(prepared.train_data, 0)  # reads the next batch while a step runs
  checkpointer = hooks_lib.Checkpointer(run.checkpoints, cfg.keep_checkpoints, batches,
                                        keep_steps=cfg.checkpoint_steps)
  start, train_state = checkpointer.restore(steps)
  eval_batches = [_global_batch(b, steps.batch_sharding)
                  for b in data.iterate_from(prepared.eval_data, 0)]
  writers = []
  if is_writer:  # one process writes run.json and the metrics
    tracked = {**prepared.resolved, **{key: record.get(key) for key in TRACKED_METADATA}}
    writers = [hooks_lib.RecordWriter(run, record, prepared.history, prepared.changes),
               *trackers.build(cfg.trackers, run, cfg.wandb, tracked)]
  loop = Loop(cfg, steps, record.flops_per_token, checkpointer, [
      *([claim] if claim else []),
      hooks_lib.ProgressBar(cfg.train_steps, start, cfg.progress and is_writer),
      hooks_lib.Evaluator(steps, eval_batches, cfg.eval_loss_by_position,
                          prepared.corpus.tokenizer.bytes_per_token()),
      *writers, *hooks, checkpointer])
  try:
    last = loop.run(start, train_state, batches)
  finally:
    batches.close()
  if last.get("preempted") and is_writer:
    stopped = last["step"]
    print(f"preempted: saved step {stopped} to {storage.join(run.checkpoints, str(stopped))} "
          f"({last['signal']}); run the same command again to resume", file=sys.stderr, flush=True)
  return last


def throughput(workdir: str) -> dict | None:
  """Median tokens/s and model FLOP/s over the logged intervals, the first (compilation) excluded."""
  run = rundir.RunDir(workdir)
  rows = run.read_metrics()[1:]
  if not rows:
    return None
  flops_per_token = run.record().flops_per_token["chinchilla"]
  tokens_per_sec = float(np.median([row["tokens_per_sec"] for row in rows]))
  return {"tokens_per_sec": tokens_per_sec, "flops_per_sec": tokens_per_sec * flops_per_token}

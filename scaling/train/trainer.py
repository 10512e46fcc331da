"""The training loop: config -> sharded state -> steps -> metrics.jsonl, run.json, checkpoints.

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

import grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

import scaling
from scaling import data, models, rundir
from scaling.errors import InputError, first_line
from scaling.parallel import memory
from scaling.parallel import mesh as mesh_lib
from scaling.train import config as config_lib
from scaling.train import state as state_lib
from scaling.train.metrics import MetricsLog, NullLog

# Keys that must match between a workdir's recorded run and a resuming one: the checkpoint's shapes
# and the meaning of `step` (the data position) depend on them.
FIXED_KEYS = ("model", "batch_size", "seed", "data")
# Keys that change how a run reports, saves or where it runs, not what it computes: free on resume.
# train_tokens and warmup_fraction act through the resolved train_steps and warmup_steps, compared
# instead. Every other key (optimizer, schedule, length, eval) changes the result: refused on
# resume unless resume_changes=allow, and then recorded in run.json's history.
FREE_KEYS = ("log_every", "eval_every", "eval_loss_by_position", "checkpoint_every",
             "keep_checkpoints", "progress", "mesh", "distributed", "resume_changes",
             "train_tokens", "warmup_fraction")


def _git_commit() -> str | None:
  package_dir = os.path.dirname(os.path.abspath(scaling.__file__))
  try:
    out = subprocess.run(["git", "-C", package_dir, "rev-parse", "HEAD"],
                         capture_output=True, text=True, timeout=5, check=True)
    return out.stdout.strip() or None
  except (OSError, subprocess.SubprocessError):
    return None


def flatten(values: dict, prefix: str = "") -> dict:
  """{"model": {"d_model": 64}} -> {"model.d_model": 64}."""
  flat = {}
  for key, value in values.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def _describe(changes: dict) -> str:
  return ", ".join(f"{key} {old!r} → {new!r}" for key, (old, new) in changes.items())


def _prepare_workdir(workdir: str, resolved: dict, corpus_sha256: str) -> tuple[list, dict]:
  """Checks the workdir is usable and, if it holds a run, that this run may continue it; writes
  nothing. Returns (the run's recorded history, the result-changing keys this resume changes)."""
  rundir.check_writable(workdir)
  run = rundir.RunDir(workdir)
  run_path = run.run_file
  if not run.has_run():
    return [], {}
  try:
    previous_run = rundir.read_json(run_path)
    previous, previous_sha256 = previous_run["config"], previous_run["corpus"]["sha256"]
    history = list(previous_run.get("history", []))
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise InputError(f"{run_path} is unreadable ({e!r}); use a fresh --workdir") from None
  if previous_sha256 != corpus_sha256:
    raise InputError(f"--workdir {workdir} was trained on a different corpus (sha256 "
                     f"{previous_sha256[:12]}… vs {corpus_sha256[:12]}…); use a fresh --workdir")
  # A key the recorded run predates had its default then.
  recorded = {**flatten(config_lib.defaults().to_dict()), **flatten(previous)}
  current = flatten(resolved)
  differing = {key: (recorded.get(key), value) for key, value in current.items()
               if recorded.get(key) != value and key.split(".")[0] not in FREE_KEYS}
  for group in FIXED_KEYS:
    fixed = {key: change for key, change in differing.items() if key.split(".")[0] == group}
    if fixed:
      raise InputError(f"--workdir {workdir} holds a run with a different {group} "
                       f"({_describe(fixed)}); use a fresh --workdir")
  if differing and resolved["resume_changes"] != "allow":
    raise InputError(f"--workdir {workdir} holds a run with {_describe(differing)}: resuming would "
                     "change its result part-way; use a fresh --workdir, or add "
                     "--config.resume_changes=allow to continue (run.json records the change)")
  return history, differing


def _run_metadata(cfg, resolved, corpus, mesh) -> dict:
  architecture = models.get(cfg.model.arch)
  counts = architecture.param_counts(cfg.model)
  import flax

  return {
      "config": resolved,
      "params": counts["total"],
      "params_non_embedding": counts["non_embedding"],
      "flops_per_token": architecture.flops_per_token(cfg.model),
      "tokens_per_step": cfg.tokens_per_step,
      "train_steps": cfg.train_steps,
      "corpus": corpus.fingerprint,
      "mesh": dict(zip(mesh.axis_names, mesh.devices.shape)),
      "versions": {"scaling": scaling.__version__, "jax": jax.__version__, "flax": flax.__version__},
      "device_kind": mesh.devices.flat[0].device_kind,
      "device_count": mesh.devices.size,
      "process_count": jax.process_count(),
      "git_commit": _git_commit(),
  }


def _global_batch(local_BxL1: np.ndarray, sharding) -> jax.Array:
  """Each process hands in its rows; together they form the global batch laid out on the mesh."""
  return jax.make_array_from_process_local_data(sharding, local_BxL1)


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
                    "more devices (mesh.fsdp)")
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


def _restore(checkpoints, steps, batches, run: rundir.RunDir):
  """The latest complete checkpoint (orbax never lists a half-written one), or a fresh state.

  The checkpoint also sets `batches`, the input iterator, to the position it had when it was saved.
  """
  start = checkpoints.latest_step()
  if start is None:
    return 0, steps.init()
  try:
    return start, checkpoints.restore(start, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(steps.abstract_state),
        data=grain.checkpoint.CheckpointRestore(batches))).state
  except Exception as e:  # a complete-looking but unreadable checkpoint: say so, change nothing
    message = first_line(e)
    raise InputError(f"checkpoint {start} in {run.checkpoints} cannot be restored "
                     f"({message[:200]}); move it away to resume from an earlier one") from None


def train(config: ml_collections.ConfigDict, workdir: str, devices=None) -> dict:
  """Trains (or resumes) the run described by `config` in `workdir`; returns the last metrics row.

  Nothing is written until the first step has run: a run that fails its checks, or whose first
  step fails (out of memory), leaves the workdir as it was. The returned row has "preempted": True
  and "signal": "SIGTERM" | "SIGINT" when a signal stopped the run early (after a checkpoint).
  `devices` defaults to every device of every process; a subset is for side-by-side comparisons.
  """
  prepared = prepare(config, workdir, devices)
  cfg, steps = prepared.cfg, prepared.steps
  run = rundir.RunDir(rundir.absolute(workdir))
  is_writer = jax.process_index() == 0
  metadata = _run_metadata(cfg, prepared.resolved, prepared.corpus, prepared.mesh)
  flops_per_token = metadata["flops_per_token"]

  batches = data.iterate_from(prepared.train_data, 0)  # reads the next batch while a step runs
  checkpoints = ocp.CheckpointManager(  # create=False: the first save makes the directory
      run.checkpoints,
      options=ocp.CheckpointManagerOptions(max_to_keep=cfg.keep_checkpoints, create=False))
  start, train_state = _restore(checkpoints, steps, batches, run)
  eval_data = [_global_batch(b, steps.batch_sharding)
               for b in data.iterate_from(prepared.eval_data, 0)]
  outputs = {"log": NullLog()}

  def open_outputs():
    """run.json (with the history of changed keys) and metrics.jsonl, once the first step ran."""
    if not is_writer:
      return
    history = prepared.history
    if prepared.changes:
      changed = {k: list(v) for k, v in prepared.changes.items()}
      history = [*history, {"step": start, "changed": changed}]
    run.write_run({**metadata, "resumed_from_step": start, "history": history})
    outputs["log"] = MetricsLog(run, resume_step=start)

  def evaluate(state):
    """{"eval_loss": mean, "eval_loss_by_position": [L]} on device; pulled with the step's metrics."""
    by_position_L = sum(steps.eval(state, batch) for batch in eval_data) / len(eval_data)
    return {"eval_loss": by_position_L.mean(), "eval_loss_by_position": by_position_L}

  from tqdm import tqdm  # deferred: only an interactive run needs it

  bar = tqdm(total=cfg.train_steps, initial=start, unit="step", dynamic_ncols=True,
             disable=not (cfg.progress and is_writer))
  last = {"time": time.perf_counter(), "step": start, "row": {}}

  def needs_row(done):
    return done % cfg.log_every == 0 or done % cfg.eval_every == 0 or done == cfg.train_steps

  def record(done, device_metrics, first_bad):
    """Pulls one step's metrics to the host, stops on a non-finite value, writes its row if due."""
    host, first_bad = jax.device_get((device_metrics, first_bad))
    bad_eval = "eval_loss" in host and not np.isfinite(host["eval_loss"])
    if first_bad or bad_eval:
      kept = checkpoints.latest_step()
      kept = f"step {kept} in {run.checkpoints}" if kept else "none (no checkpoint yet)"
      what = f"loss or gradient at step {first_bad}" if first_bad else f"eval loss at step {done}"
      raise Diverged(f"non-finite {what}; last good checkpoint: {kept}")
    if not needs_row(done):
      return
    now = time.perf_counter()
    tokens = done * cfg.tokens_per_step
    row = {"step": done, "tokens": tokens,
           "flops": flops_per_token["chinchilla"] * tokens,
           "flops_kaplan": flops_per_token["kaplan"] * tokens,
           "loss": float(host["loss"]), "lr": float(host["lr"]), "grad_norm": float(host["grad_norm"]),
           "tokens_per_sec": (done - last["step"]) * cfg.tokens_per_step / max(now - last["time"], 1e-9)}
    if "eval_loss" in host:
      row["eval_loss"] = float(host["eval_loss"])
      if cfg.eval_loss_by_position:
        row["eval_loss_by_position"] = [round(float(x), 6) for x in host["eval_loss_by_position"]]
    outputs["log"].write(row)
    bar.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{row['tokens_per_sec']:,.0f}")
    last.update(time=now, step=done, row=row)

  preemption = Preemption(checkpoints)
  pending = None  # a log step's (step, device metrics, first_bad), pulled once the next is queued
  first_bad = steps.no_bad_step()
  stopped = None  # the step a signal stopped the run at
  try:
    for step in range(start, cfg.train_steps):
      batch = _global_batch(next(batches), steps.batch_sharding)
      train_state, step_metrics, first_bad = steps.train(train_state, batch, first_bad)
      done = step + 1
      if step == start:  # the run has started: it compiled, fitted and ran one step
        jax.block_until_ready(first_bad)
        open_outputs()
      if pending is not None:  # one step late: the device already has this step queued
        record(*pending)
        pending = None
      if done % cfg.eval_every == 0 or done == cfg.train_steps:
        step_metrics = {**step_metrics, **evaluate(train_state)}
      if needs_row(done):
        pending = (done, step_metrics, first_bad)
      preempted = preemption.reached(done)
      if done % cfg.checkpoint_every == 0 or done == cfg.train_steps or preempted:
        record(done, step_metrics, first_bad)  # never checkpoint a state that went non-finite
        pending = None
        outputs["log"].flush()  # the rows up to this checkpoint, readable before it is
        checkpoints.save(done, args=ocp.args.Composite(
            state=ocp.args.StandardSave(train_state), data=grain.checkpoint.CheckpointSave(batches)),
                         force=preempted)
      bar.update(1)
      if preempted:
        checkpoints.wait_until_finished()
        last["row"] = {**last["row"], "step": done, "preempted": True,
                       "signal": preemption.signal.name}
        stopped = done
        break
  except jax.errors.JaxRuntimeError as e:
    if "RESOURCE_EXHAUSTED" not in str(e):
      raise
    raise OutOfMemory(f"out of memory in step {last['step'] + 1} "
                      f"({str(e).splitlines()[0][:200]}); lower batch_size or model.seq_len, "
                      "set model.remat=full, or shard over more devices (mesh.fsdp)") from None
  finally:
    preemption.close()
    checkpoints.wait_until_finished()
    checkpoints.close()
    batches.close()
    bar.close()
    outputs["log"].close()
  if stopped is not None and is_writer:
    print(f"preempted: saved step {stopped} to {rundir.join(run.checkpoints, str(stopped))} "
          f"({preemption.signal.name}); run the same command again to resume",
          file=sys.stderr, flush=True)
  return last["row"]


def throughput(workdir: str) -> dict | None:
  """Median tokens/s and model FLOP/s over the logged intervals, the first (compilation) excluded."""
  run = rundir.RunDir(workdir)
  rows = run.read_metrics()[1:]
  if not rows:
    return None
  flops_per_token = run.read_run()["flops_per_token"]["chinchilla"]
  tokens_per_sec = float(np.median([row["tokens_per_sec"] for row in rows]))
  return {"tokens_per_sec": tokens_per_sec, "flops_per_sec": tokens_per_sec * flops_per_token}

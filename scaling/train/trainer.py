"""The training loop: config -> sharded state -> steps -> metrics.jsonl, run.json, checkpoints.

The workdir is a local path or gs://bucket/...; its layout and I/O are scaling.rundir's.

Re-running with the same workdir resumes from the latest checkpoint, which holds the train state and
the input iterator's state (grain's, one file per process), so the data position is restored exactly.
"""

import os
import signal
import subprocess
import threading
import time

import grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

import scaling
from scaling import data, models, rundir
from scaling.errors import InputError
from scaling.parallel import mesh as mesh_lib
from scaling.train import config as config_lib
from scaling.train import state as state_lib
from scaling.train.metrics import MetricsLog, NullLog

# Keys that must match between a workdir's recorded run and a resuming one: the checkpoint's shapes
# and the meaning of `step` depend on them.
RESUME_KEYS = ("model", "batch_size", "seed", "data")


def _git_commit() -> str | None:
  package_dir = os.path.dirname(os.path.abspath(scaling.__file__))
  try:
    out = subprocess.run(["git", "-C", package_dir, "rev-parse", "HEAD"],
                         capture_output=True, text=True, timeout=5, check=True)
    return out.stdout.strip() or None
  except (OSError, subprocess.SubprocessError):
    return None


def _prepare_workdir(workdir: str, resolved: dict, corpus_sha256: str) -> None:
  """Checks the workdir is usable and, if it holds a run, that it is this run; writes nothing."""
  rundir.check_writable(workdir)
  run = rundir.RunDir(workdir)
  run_path = run.run_file
  if run.has_run():
    try:
      previous_run = rundir.read_json(run_path)
      previous, previous_sha256 = previous_run["config"], previous_run["corpus"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
      raise InputError(f"{run_path} is unreadable ({e!r}); use a fresh --workdir") from None
    if previous_sha256 != corpus_sha256:
      raise InputError(f"--workdir {workdir} was trained on a different corpus (sha256 "
                       f"{previous_sha256[:12]}… vs {corpus_sha256[:12]}…); use a fresh --workdir")
    for key in RESUME_KEYS:
      if previous.get(key) != resolved.get(key):
        raise InputError(f"--workdir {workdir} holds a run with a different {key} "
                         f"({previous.get(key)} vs {resolved.get(key)}); use a fresh --workdir")


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
  jax.distributed.initialize(**kwargs)


def prepare(config: ml_collections.ConfigDict, workdir: str, devices=None):
  """Validates everything that can be wrong with the input before a single file is written."""
  corpus = data.load_corpus(config.data)
  cfg = config_lib.validate(config, vocab_size=corpus.tokenizer.vocab_size)
  initialize_distributed(cfg.distributed)
  mesh = mesh_lib.make_mesh(cfg.mesh, devices)
  config_lib.check_fits_mesh(cfg, mesh.devices.shape, jax.process_count())
  resolved = config.to_dict()
  resolved["model"] = {**resolved["model"], "vocab_size": cfg.model.vocab_size}
  resolved["train_steps"] = cfg.train_steps
  _prepare_workdir(workdir, resolved, corpus.fingerprint["sha256"])
  return cfg, resolved, corpus, mesh


class Diverged(RuntimeError):
  """A non-finite loss or gradient: the run stops, its last good checkpoint stays."""


class Preemption:
  """SIGTERM (how TPU VMs are preempted) asks the loop to save and stop after the current step.

  With several processes, all must stop at the same step: orbax's `reached_preemption` agrees on it
  through the jax.distributed coordination service, which catches the signal itself.
  """

  def __init__(self, checkpoints: ocp.CheckpointManager):
    self._checkpoints = checkpoints
    self._requested = False
    self._previous = None
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    self._requested = True

  def reached(self, step: int) -> bool:
    if jax.process_count() > 1:
      return self._checkpoints.reached_preemption(step)
    return self._requested

  def close(self):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


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
    message = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise InputError(f"checkpoint {start} in {run.checkpoints} cannot be restored "
                     f"({message[:200]}); move it away to resume from an earlier one") from None


def train(config: ml_collections.ConfigDict, workdir: str, devices=None) -> dict:
  """Trains (or resumes) the run described by `config` in `workdir`; returns the last metrics row.

  The returned row has "preempted": True when SIGTERM stopped the run early (after a checkpoint).
  `devices` defaults to every device of every process; a subset is for side-by-side comparisons.
  """
  cfg, resolved, corpus, mesh = prepare(config, workdir, devices)
  run = rundir.RunDir(rundir.absolute(workdir))
  is_writer = jax.process_index() == 0
  metadata = _run_metadata(cfg, resolved, corpus, mesh)
  flops_per_token = metadata["flops_per_token"]

  process = dict(process_index=jax.process_index(), process_count=jax.process_count())
  train_data = data.train_batches(
      corpus.train, seq_len=cfg.model.seq_len, global_batch_size=cfg.batch_size, seed=cfg.seed,
      **process)
  batches = data.iterate_from(train_data, 0)  # reads the next batch while a step runs

  steps = state_lib.build(cfg, mesh)
  checkpoints = ocp.CheckpointManager(
      run.checkpoints,
      options=ocp.CheckpointManagerOptions(max_to_keep=cfg.keep_checkpoints, create=True))
  start, train_state = _restore(checkpoints, steps, batches, run)
  if is_writer:
    run.write_run({**metadata, "resumed_from_step": start})
  log = MetricsLog(run, resume_step=start) if is_writer else NullLog()

  eval_data = data.eval_batches(
      corpus.validation, seq_len=cfg.model.seq_len, global_batch_size=cfg.batch_size,
      num_batches=cfg.eval_batches, **process)
  eval_data = [_global_batch(b, steps.batch_sharding) for b in data.iterate_from(eval_data, 0)]

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
    log.write(row)
    bar.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{row['tokens_per_sec']:,.0f}")
    last.update(time=now, step=done, row=row)

  preemption = Preemption(checkpoints)
  pending = None  # a log step's (step, device metrics, first_bad), pulled once the next is queued
  first_bad = steps.no_bad_step()
  try:
    for step in range(start, cfg.train_steps):
      batch = _global_batch(next(batches), steps.batch_sharding)
      train_state, step_metrics, first_bad = steps.train(train_state, batch, first_bad)
      done = step + 1
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
        log.flush()  # the rows up to this checkpoint, readable before it is
        checkpoints.save(done, args=ocp.args.Composite(
            state=ocp.args.StandardSave(train_state), data=grain.checkpoint.CheckpointSave(batches)),
                         force=preempted)
      bar.update(1)
      if preempted:
        checkpoints.wait_until_finished()
        last["row"] = {**last["row"], "step": done, "preempted": True}
        print(f"preempted: saved step {done} to {rundir.join(run.checkpoints, str(done))}; "
              "run the same command again to resume", flush=True)
        break
  finally:
    preemption.close()
    checkpoints.wait_until_finished()
    checkpoints.close()
    batches.close()
    bar.close()
    log.close()
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

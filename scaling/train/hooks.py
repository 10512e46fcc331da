"""Hooks: what a run does around its steps (evaluate, save, record, show progress), one object each.

The loop (`scaling.train.trainer.Loop`) only steps and builds metrics rows; at named moments it
calls every hook, in the order they were added, so a new concern (a tracker, a probe every N steps)
is a new hook rather than an edit of the loop. The moments, and what a hook may do at each:

  on_start(start)           once, after the first step ran (it compiled and fitted): outputs open
                            here, so a run that fails its checks or its first step writes nothing
  on_step(info)             every `every` steps and at the last step (every = 0: never)
  on_eval(info) -> dict     at eval steps (every eval_every, and the last): device values that join
                            the step's metrics row (arrays become lists, scalars floats)
  on_row(row)               each metrics row, on the host (every log_every, eval steps, the last)
  on_checkpoint(info, force)  every checkpoint_every, at the last step and on a preemption
                            (force), once the step's metrics were found finite and its row (if
                            due) handed on: writers flush, then the checkpointer saves
  on_end(error)             when the loop stops, however it stops (`error`: the exception, or None);
                            in reverse order, so what was added last closes first
"""

import dataclasses
import errno
import math
import os
import shutil

import grain
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from scaling import rundir, storage
from scaling.errors import InputError, first_line
from scaling.parallel import pacing
from scaling.records import RunRecord


@dataclasses.dataclass(frozen=True)
class StepInfo:
  """A step as hooks see it: how many steps are done, the state after them, its device metrics."""

  step: int
  state: object
  metrics: dict


class Hook:
  """Does nothing at every moment; a hook overrides the moments it cares about."""

  every = 0  # on_step runs when step % every == 0 and at the last step; 0 = never

  def on_start(self, start: int) -> None:
    del start

  def on_step(self, info: StepInfo) -> None:
    del info

  def on_eval(self, info: StepInfo) -> dict:
    del info
    return {}

  def on_row(self, row: dict) -> None:
    del row

  def on_checkpoint(self, info: StepInfo, force: bool) -> None:
    del info, force

  def on_end(self, error: BaseException | None) -> None:
    del error


class Evaluator(Hook):
  """The mean next-token loss on the validation batches (and per context position when asked), and
  its bits per byte: nats per token x target tokens / their UTF-8 bytes / ln 2 (Paloma, Magnusson
  et al. 2023), which compares across tokenizers where nats per token does not.

  `bytes_per_token_V` (the tokenizer's `bytes_per_token()`) counts each target id's bytes; the
  windows are fixed, so tokens / bytes is counted once, over the global batches.
  """

  def __init__(self, steps, batches: list, by_position: bool, bytes_per_token_V):
    self._steps, self._batches, self._by_position = steps, batches, by_position
    table_V = jnp.asarray(bytes_per_token_V, jnp.int32)
    count = jax.jit(lambda x_bxW: (jnp.take(table_V, x_bxW[:, 1:]).sum(), x_bxW[:, 1:].size))
    tokens = num_bytes = 0
    for batch in batches:
      batch_bytes, batch_tokens = count(batch)
      num_bytes, tokens = num_bytes + int(batch_bytes), tokens + int(batch_tokens)
    self._bits_per_nat_token = tokens / max(num_bytes, 1) / math.log(2)

  def on_eval(self, info: StepInfo) -> dict:
    pacer, total_L = pacing.Pacer(), 0.0  # 64 batches queued at once can deadlock XLA:CPU
    for batch in self._batches:
      total_L = total_L + self._steps.eval(info.state, batch)
      pacer.pace(total_L)
    by_position_L = total_L / len(self._batches)
    eval_loss = by_position_L.mean()
    metrics = {"eval_loss": eval_loss, "eval_bpb": eval_loss * self._bits_per_nat_token}
    if self._by_position:
      metrics["eval_loss_by_position"] = by_position_L
    return metrics


class DiskFull(RuntimeError):
  """A checkpoint could not be written for lack of space: the run stops, the checkpoint being
  written is removed, the complete ones before it stay (exit 1)."""


TMP_SUFFIX = ".orbax-checkpoint-tmp"  # orbax's name for a checkpoint still being written, locally


def _out_of_space(error: BaseException) -> bool:
  """Whether `error` (or one it was raised from) is ENOSPC: Python's OSError, or tensorstore's
  "No space left on device [os_error_code='28']" inside orbax's ValueError."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
      return True
    if "No space left on device" in str(error) or "os_error_code='28'" in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


def _mount_point(path: str) -> str:
  path = os.path.abspath(path)
  while not os.path.ismount(path):
    path = os.path.dirname(path)
  return path


def restore_state(manager: ocp.CheckpointManager, step: int, abstract_state, directory: str,
                  **items):
  """The train state of checkpoint `step` (and the other `items` restored with it, such as the
  input iterator's position), laid out as `abstract_state`. A complete-looking but unreadable
  checkpoint is one InputError line that says so; nothing is changed."""
  try:
    return manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), **items)).state
  except Exception as e:  # noqa: BLE001  orbax's and tensorstore's errors have no common type
    raise InputError(f"checkpoint {step} in {directory} cannot be restored "
                     f"({first_line(e)[:200]}); move it away to use an earlier one") from None


class Checkpointer(Hook):
  """The train state and the input iterator's position (grain's, one file per process), saved with
  orbax at checkpoint moments and restored on the next run in the same workdir. The latest `keep`
  are kept, and those of `keep_steps` (where a sweep's branches fork off this run) always."""

  def __init__(self, directory: str, keep: int, batches, keep_steps: tuple[int, ...] = ()):
    self.directory, self._batches = directory, batches
    self._writing = None  # the step of the last save started
    if keep_steps:
      from orbax.checkpoint import checkpoint_managers as policies

      kept = {"preservation_policy": policies.AnyPreservationPolicy(
          [policies.LatestN(keep), policies.CustomSteps(list(keep_steps))])}
    else:
      kept = {"max_to_keep": keep}
    self.manager = ocp.CheckpointManager(  # create=False: the first save makes the directory
        directory, options=ocp.CheckpointManagerOptions(create=False, **kept))

  def restore(self, steps) -> tuple[int, object]:
    """(step, state) of the latest complete checkpoint (orbax never lists a half-written one),
    which also moves the input iterator to where it was; (0, a fresh state) when there is none."""
    start = self.manager.latest_step()
    if start is None:
      return 0, steps.init()
    return start, restore_state(self.manager, start, steps.abstract_state, self.directory,
                                data=grain.checkpoint.CheckpointRestore(self._batches))

  def describe_latest(self) -> str:
    kept = self.manager.latest_step()
    return f"step {kept} in {self.directory}" if kept else "none (no checkpoint yet)"

  def on_checkpoint(self, info: StepInfo, force: bool) -> None:
    # Saves run in the background: a save that failed surfaces here, at the next one (or at the
    # end), so the step being written is the one before this unless this one failed to start.
    self._writing = info.step
    try:
      self.manager.save(info.step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(info.state),
          data=grain.checkpoint.CheckpointSave(self._batches)), force=force)
    except Exception as e:
      self._raise_if_out_of_space(e)
      raise

  def on_end(self, error: BaseException | None) -> None:
    try:
      self.manager.wait_until_finished()
    except Exception as e:  # the last save failed: close anyway, then say why
      failed = e
    else:
      failed = None
    try:
      self.manager.close()
    except Exception as e:  # noqa: BLE001  the same failure, raised again by close's own wait
      failed = failed or e
    if error is not None:  # the run already failed (maybe for the same reason): that is reported;
      # what a failed save left half-written goes now that nothing writes it (a save that failed
      # to start can still have a background write in flight when the failure is first seen)
      self._remove_partial()
      return
    if failed is None:
      return
    self._raise_if_out_of_space(failed)
    raise failed

  def _remove_partial(self) -> list[int]:
    """Deletes the checkpoints orbax left half-written (local `N.orbax-checkpoint-tmp`; on an
    object store orbax never lists an uncommitted one); returns their steps."""
    if storage.is_remote(self.directory) or not os.path.isdir(self.directory):
      return []
    steps = []
    for name in os.listdir(self.directory):
      if name.endswith(TMP_SUFFIX):
        shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
        steps += [int(name[:-len(TMP_SUFFIX)])] if name[:-len(TMP_SUFFIX)].isdigit() else []
    return steps

  def _raise_if_out_of_space(self, error: BaseException) -> None:
    if not _out_of_space(error) or storage.is_remote(self.directory):
      return
    partial = self._remove_partial()
    writing = min(partial) if partial else self._writing
    complete = sorted(int(n) for n in os.listdir(self.directory) if n.isdigit())
    last = f"{complete[-1]} (in {self.directory})" if complete else "none"
    raise DiskFull(f"no space left on {_mount_point(self.directory)} writing checkpoint "
                   f"{writing}; the last complete checkpoint is {last}: free space there and run "
                   "the same command to resume") from None


class ProgressBar(Hook):
  """A tqdm bar over the run's steps, with the last row's loss and throughput."""

  every = 1

  def __init__(self, total: int, start: int, enabled: bool):
    from tqdm import tqdm  # deferred: only an interactive run needs it

    self._bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True,
                     disable=not enabled)

  def on_step(self, info: StepInfo) -> None:
    self._bar.update(1)

  def on_row(self, row: dict) -> None:
    self._bar.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{row['tokens_per_sec']:,.0f}")

  def on_end(self, error: BaseException | None) -> None:
    self._bar.close()


class RecordWriter(Hook):
  """run.json once the run has started: the run's record, the step it resumed from and the history
  of result keys changed on resume."""

  def __init__(self, run: rundir.RunDir, record: RunRecord, history: list, changes: dict):
    self._run, self._record, self._history, self._changes = run, record, history, changes

  def on_start(self, start: int) -> None:
    history = self._history
    if self._changes:
      changed = {key: list(change) for key, change in self._changes.items()}
      history = [*history, {"step": start, "changed": changed}]
    self._run.write_run(dataclasses.replace(self._record, resumed_from_step=start,
                                            history=tuple(history)))

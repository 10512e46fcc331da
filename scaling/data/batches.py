"""Token streams or documents -> batches of training windows.

Shape letters: the legend in `scaling.models` (here T tokens of a stream, R the windows of a split,
W = L + 1 tokens a window, B the global batch, b = B/P the rows of each of P processes).

A split is either a token stream held in memory (the stdlib and text sources) or a grain
`MapDataset` of tokenized documents read lazily (tfds). Either way rows are windows of L + 1 tokens
(inputs = window[:-1], targets = window[1:]) that may span document boundaries (the tokenizer's eos),
and P processes together read exactly the rows one process would, in the same order, so training is
numerically the same for any process count.

- A stream is cut into non-overlapping windows (the tail shorter than a window is dropped) that are
  shuffled as a whole: the train dataset is a `MapDataset` whose element `step` is the process-local
  batch for that step, computed by index alone, so resuming at step k reads nothing before k.
- Documents are shuffled, then packed per row (scaling/data/packing.py): the train dataset is an
  `IterDataset`, and resuming restores its iterator state.

`iterate_from` turns either into a grain `DatasetIterator` whose `get_state`/`set_state` give the
exact position: save it with the checkpoint (`grain.checkpoint.CheckpointSave(iterator)`) and restore
it (`grain.checkpoint.CheckpointRestore(iterator)`) for an immediate, exact resume on every source.
"""

import grain
import numpy as np

from scaling.data import packing, token_shards
from scaling.errors import InputError

# A token stream (in memory, or prepared shards read by range), or tokenized documents (eos last).
Split = np.ndarray | token_shards.TokenStream | grain.MapDataset


def windows(tokens_T: np.ndarray, seq_len: int) -> grain.MapDataset:
  """The stream's non-overlapping [L + 1] windows, in order."""
  _check_positive("seq_len", seq_len)
  if isinstance(tokens_T, token_shards.TokenStream):  # read by index, window by window
    return token_shards.windows(tokens_T, seq_len)
  width = seq_len + 1
  num_windows = tokens_T.size // width
  return grain.MapDataset.source(tokens_T[:num_windows * width].reshape(num_windows, width))


def train_batches(split: Split, *, seq_len: int, global_batch_size: int, seed: int,
                  process_index: int = 0,
                  process_count: int = 1) -> grain.MapDataset | grain.IterDataset:
  """Endless int32 [b, L + 1] batches; a fresh shuffle (by `seed`) every epoch.

  A stream gives a `MapDataset` indexed by step (its windows shuffled); documents give an
  `IterDataset` (the documents shuffled, then packed per row).
  """
  _check_layout(global_batch_size, process_index, process_count)
  if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
    raise InputError(f"seed must be a non-negative integer, got {seed!r}")
  if isinstance(split, grain.MapDataset):
    _check_positive("seq_len", seq_len)
    # `seed` then `shuffle`, as for windows below: every epoch is a new permutation.
    documents = split.seed(seed).shuffle().repeat()
    rows = _rows(global_batch_size, process_index, process_count)
    return packing.PackedRows(documents, rows=rows, num_rows=global_batch_size, width=seq_len + 1)
  windows_RxW = windows(split, seq_len)
  if not len(windows_RxW):
    raise InputError(
        f"data.validation_percent: the train split has {split.size} tokens, not one window of "
        f"seq_len + 1 = {seq_len + 1}; add files (data.glob) or hold out fewer "
        f"(data.validation_percent)")
  # `seed` then `shuffle`: grain derives the shuffle seed by hashing, so seed s's epoch e + 1 is not
  # seed s + 1's epoch e (as it would be with `shuffle(seed=s)`, which adds the epoch to the seed).
  shuffled = windows_RxW.seed(seed).shuffle().repeat()
  return _process_rows(shuffled, global_batch_size, process_index, process_count)


def eval_batches(split: Split, *, seq_len: int, global_batch_size: int, num_batches: int,
                 process_index: int = 0, process_count: int = 1) -> grain.MapDataset:
  """`num_batches` int32 [b, L + 1] batches, in order, no shuffle: every evaluation sees the same
  fixed rows.

  From a stream: num_batches * B windows evenly spaced over the whole split (every k-th), not its
  first ones: a stream is its documents end to end, so the first windows are one or two files, an
  estimate of the split's loss that is biased and noisy (on the embedded corpus the first 128
  windows are ~0.35 nats harder than the split, and a run's loss on them varies ~35 % more from seed
  to seed; docs/data.md). When the split holds fewer windows, only the full batches that exist
  (len(dataset) says how many). From documents: row r packs documents r, r + B, r + 2B, ... in
  order, starting over if the split runs out, so there are always num_batches.
  """
  _check_layout(global_batch_size, process_index, process_count)
  _check_positive("eval_batches", num_batches)
  if isinstance(split, grain.MapDataset):
    _check_positive("seq_len", seq_len)
    packed = iter(packing.PackedRows(
        split.repeat(), rows=_rows(global_batch_size, process_index, process_count),
        num_rows=global_batch_size, width=seq_len + 1))
    batches_bxW = [next(packed) for _ in range(num_batches)]
    packed.close()
    return grain.MapDataset.source(batches_bxW)
  windows_RxW = windows(split, seq_len)
  available = len(windows_RxW) // global_batch_size
  if not available:
    raise InputError(
        f"data.validation_percent: the validation split has {len(windows_RxW)} windows of "
        f"seq_len + 1 = {seq_len + 1} tokens, fewer than one eval batch of {global_batch_size}; "
        f"raise data.validation_percent or lower batch_size")
  wanted = min(num_batches, available) * global_batch_size
  kept = windows_RxW[::len(windows_RxW) // wanted][:wanted]
  return _process_rows(kept, global_batch_size, process_index, process_count)


def iterate_from(dataset: grain.MapDataset | grain.IterDataset,
                 start_step: int) -> grain.DatasetIterator:
  """Elements start_step, start_step + 1, ... of `dataset`; one thread reads a batch ahead.

  The iterator is checkpointable (`get_state`/`set_state`, or grain.checkpoint's orbax args) and its
  state is absolute: restoring a saved state gives the same elements whatever start_step was. For a
  `MapDataset` the start is set by index (nothing before start_step is computed); an `IterDataset`
  (packed documents) reads and drops the first start_step batches, so resume long runs by restoring
  the saved state instead.
  """
  if isinstance(dataset, grain.MapDataset):
    read_options = grain.ReadOptions(num_threads=1, prefetch_buffer_size=2)
    iterator = iter(dataset.to_iter_dataset(read_options))
    if start_step:
      grain.experimental.set_next_index(iterator, start_step)
    return iterator
  iterator = iter(grain.experimental.ThreadPrefetchIterDataset(dataset, prefetch_buffer_size=2))
  for _ in range(start_step):
    next(iterator)
  return iterator


def _rows(global_batch_size: int, process_index: int, process_count: int) -> range:
  """Rows [p * b, (p + 1) * b) of the global batch: this process's."""
  rows = global_batch_size // process_count
  return range(process_index * rows, (process_index + 1) * rows)


def _process_rows(windows_RxW: grain.MapDataset, global_batch_size: int, process_index: int,
                  process_count: int) -> grain.MapDataset:
  """Rows [p * b, (p + 1) * b) of each global batch of B consecutive windows.

  Batching by b and keeping every P-th batch from p gives exactly those rows without building the
  other processes' rows.
  """
  rows = global_batch_size // process_count
  batches = windows_RxW.batch(rows, drop_remainder=True, batch_fn=_stack_int32)
  return batches[process_index::process_count]


def _stack_int32(windows_W: list[np.ndarray]) -> np.ndarray:
  return np.array(windows_W, dtype=np.int32)


def _check_positive(name: str, value: int):
  if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
    raise InputError(f"{name} must be a positive integer, got {value!r}")


def _check_layout(global_batch_size: int, process_index: int, process_count: int):
  _check_positive("global_batch_size", global_batch_size)
  _check_positive("process_count", process_count)
  if global_batch_size % process_count:
    raise InputError(
        f"global_batch_size={global_batch_size} is not divisible by process_count={process_count}")
  if not isinstance(process_index, int) or not 0 <= process_index < process_count:
    raise InputError(f"process_index must be in [0, {process_count}), got {process_index!r}")

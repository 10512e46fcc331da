import itertools
import time

import numpy as np
import pytest

from scaling.data import batches
from scaling.errors import InputError

SEQ_LEN = 7
WIDTH = SEQ_LEN + 1


@pytest.fixture
def stream_T():
  rng = np.random.default_rng(0)
  return rng.integers(0, 256, size=20 * WIDTH + 5, dtype=np.uint8)  # 20 windows and a tail


def _train(stream_T, **overrides):
  kwargs = dict(seq_len=SEQ_LEN, global_batch_size=4, seed=0)
  kwargs.update(overrides)
  return batches.train_batches(stream_T, **kwargs)


def _window_index(stream_T, row_W):
  """Which window of the stream `row_W` is (fails if it is not one)."""
  windows_RxW = stream_T[:stream_T.size // WIDTH * WIDTH].reshape(-1, WIDTH)
  (matches,) = np.nonzero((windows_RxW == row_W).all(axis=1))
  assert matches.size == 1
  return int(matches[0])


def test_windows_are_consecutive_slices_of_the_stream(stream_T):
  windows = batches.windows(stream_T, SEQ_LEN)
  assert len(windows) == 20
  for i in (0, 7, 19):
    np.testing.assert_array_equal(windows[i], stream_T[i * WIDTH:(i + 1) * WIDTH])


def test_batch_rows_are_stream_windows_so_targets_are_inputs_shifted(stream_T):
  batch_BxW = _train(stream_T)[3]
  assert batch_BxW.shape == (4, WIDTH) and batch_BxW.dtype == np.int32
  for row_W in batch_BxW:
    start = _window_index(stream_T, row_W) * WIDTH
    np.testing.assert_array_equal(row_W[:-1], stream_T[start:start + SEQ_LEN])  # inputs
    np.testing.assert_array_equal(row_W[1:], stream_T[start + 1:start + WIDTH])  # targets


def test_each_epoch_is_a_new_permutation_of_all_windows(stream_T):
  dataset = _train(stream_T)
  epochs = [[_window_index(stream_T, row) for step in range(5 * e, 5 * e + 5) for row in dataset[step]]
            for e in range(2)]
  assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(20))
  assert epochs[0] != epochs[1] and epochs[0] != list(range(20))


def test_same_seed_same_batches_other_seed_other_batches(stream_T):
  first = [_train(stream_T, seed=1)[s] for s in range(10)]
  again = [_train(stream_T, seed=1)[s] for s in range(10)]
  other = [_train(stream_T, seed=2)[s] for s in range(10)]
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)
  # Seed 1's second epoch is not seed 2's first.
  assert not np.array_equal(first[5:], other[:5])


def test_resume_matches_a_full_iteration(stream_T):
  full = list(itertools.islice(batches.iterate_from(_train(stream_T), 0), 12))
  resumed = batches.iterate_from(_train(stream_T), 9)
  for step in range(9, 12):
    np.testing.assert_array_equal(next(resumed), full[step])
    np.testing.assert_array_equal(_train(stream_T)[step], full[step])


def test_random_access_does_not_scan_earlier_steps(stream_T):
  step = 10**12
  start = time.perf_counter()
  batch_BxW = _train(stream_T)[step]
  assert time.perf_counter() - start < 1.0
  np.testing.assert_array_equal(next(batches.iterate_from(_train(stream_T), step)), batch_BxW)


@pytest.mark.parametrize("process_count", [2, 4])
def test_process_slices_concatenate_to_the_single_process_batch(stream_T, process_count):
  single = _train(stream_T, global_batch_size=8)
  per_process = [_train(stream_T, global_batch_size=8, process_index=p, process_count=process_count)
                 for p in range(process_count)]
  for step in (0, 1, 2, 7):
    parts = [dataset[step] for dataset in per_process]
    assert all(part.shape == (8 // process_count, WIDTH) for part in parts)
    np.testing.assert_array_equal(np.concatenate(parts), single[step])


@pytest.mark.parametrize("num_batches, every", [(1, 5), (2, 2), (3, 1), (5, 1)])
def test_eval_batches_are_windows_spread_over_the_split_in_order(stream_T, num_batches, every):
  """Every k-th of the 20 windows, from the first: one file at the head of a stream is not the
  split."""
  dataset = batches.eval_batches(stream_T, seq_len=SEQ_LEN, global_batch_size=4,
                                 num_batches=num_batches)
  assert len(dataset) == num_batches
  rows = np.concatenate(list(batches.iterate_from(dataset, 0)))
  windows_RxW = stream_T[:20 * WIDTH].reshape(20, WIDTH)
  np.testing.assert_array_equal(rows, windows_RxW[::every][:4 * num_batches])


def test_eval_batches_keep_only_the_full_batches_that_exist(stream_T):
  dataset = batches.eval_batches(stream_T, seq_len=SEQ_LEN, global_batch_size=6, num_batches=100)
  assert len(dataset) == 3  # 20 windows: 3 full batches of 6


def test_eval_process_slices_concatenate_to_the_single_process_batch(stream_T):
  kwargs = dict(seq_len=SEQ_LEN, global_batch_size=4, num_batches=2)
  single = batches.eval_batches(stream_T, **kwargs)
  halves = [batches.eval_batches(stream_T, process_index=p, process_count=2, **kwargs)
            for p in range(2)]
  assert len(halves[0]) == len(halves[1]) == 2
  for step in range(2):
    np.testing.assert_array_equal(np.concatenate([h[step] for h in halves]), single[step])


@pytest.mark.parametrize("overrides, key", [
    (dict(seq_len=0), "seq_len"),
    (dict(global_batch_size=0), "global_batch_size"),
    (dict(global_batch_size=6, process_count=4), "global_batch_size"),
    (dict(process_index=2, process_count=2), "process_index"),
    (dict(seed=-1), "seed"),
    (dict(seq_len=10**6), "data.validation_percent"),
])
def test_bad_train_arguments_name_the_key(stream_T, overrides, key):
  with pytest.raises(InputError, match=rf"^{key}"):
    _train(stream_T, **overrides)


@pytest.mark.parametrize("overrides, key", [
    (dict(num_batches=0), "eval_batches"),
    (dict(global_batch_size=21), "data.validation_percent"),
    (dict(global_batch_size=4, process_count=3), "global_batch_size"),
])
def test_bad_eval_arguments_name_the_key(stream_T, overrides, key):
  kwargs = dict(seq_len=SEQ_LEN, global_batch_size=4, num_batches=2)
  kwargs.update(overrides)
  with pytest.raises(InputError, match=rf"^{key}"):
    batches.eval_batches(stream_T, **kwargs)

"""Approach 1 (envelope) recovers a known law's exponents; the frontier is Pareto-minimal."""

import numpy as np
import pytest

from fit_synthetic import hoffmann_loss
from scaling.errors import InputError
from scaling.fit import approaches, bench

H = bench.HOFFMANN
TRUE_A = H["beta"] / (H["alpha"] + H["beta"])  # Hoffmann et al. 2022 eq. 4: 0.4516


def test_envelope_of_training_curves_recovers_a():
  sizes = np.geomspace(3e7, 3e9, 13)
  tokens = np.geomspace(1e8, 3e11, 60)
  run, params, seen = (np.repeat(np.arange(13), 60), np.repeat(sizes, 60), np.tile(tokens, 13))
  optima = approaches.envelope(run, 6 * params * seen, params, seen, hoffmann_loss(params, seen))
  assert optima.a == pytest.approx(TRUE_A, abs=0.01)
  assert optima.b == pytest.approx(1 - TRUE_A, abs=0.01)
  assert optima.params_M.min() > sizes.min() and optima.params_M.max() < sizes.max()


def test_envelope_needs_three_sizes():
  run = np.repeat([0, 1], 5)
  values = np.tile(np.geomspace(1e9, 1e10, 5), 2)
  with pytest.raises(InputError, match="at least 3 model sizes"):
    approaches.envelope(run, values, np.repeat([1e7, 1e8], 5), values, np.full(10, 3.0))


def test_frontier_keeps_points_no_smaller_x_beats():
  x = np.array([1, 2, 2, 3, 4, 5.0])
  loss = np.array([5, 4, 4.5, 4.2, 3, 3.0])
  assert approaches.frontier_mask(x, loss).tolist() == [True, True, False, False, True, False]

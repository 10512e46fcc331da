"""Bootstrap intervals: honest about uncertainty at σ = 0.01, and correct summaries."""

import numpy as np
import pytest

from scaling.errors import InputError
from scaling.fit import allocation, bench, bootstrap, intervals, optimize


def test_95_percent_intervals_contain_the_truth_at_sigma_001(points_sigma_001):
  params, tokens, loss = points_sigma_001
  result = optimize.fit("chinchilla", (params, tokens), loss)
  refits = bootstrap.bootstrap(result, (params, tokens), loss, resamples=200, seed=0)
  assert refits.resamples == 200 and refits.converged_B.all()
  samples = allocation.quantities("chinchilla", refits.theta_BxT, budgets=[1e21])
  stderr, ci95 = intervals.summarize(samples)
  truth = dict(bench.HOFFMANN)
  truth["a"] = truth["beta"] / (truth["alpha"] + truth["beta"])
  for name, value in truth.items():
    lo, hi = ci95[name]
    assert lo < value < hi, (name, value, ci95[name])
    assert stderr[name] > 0
  for name in ("N_opt@1e+21", "D_opt@1e+21", "tokens_per_param@1e+21"):
    assert ci95[name][0] < ci95[name][1]


def test_resamples_are_multinomial_case_weights():
  weights = bootstrap.resample_weights(np.ones(250), resamples=50, seed=3)
  assert weights.shape == (50, 250)
  np.testing.assert_array_equal(weights.sum(axis=1), 250)
  np.testing.assert_array_equal(weights, bootstrap.resample_weights(np.ones(250), 50, seed=3))


def test_summarize_is_std_and_percentiles():
  values = np.arange(1001.0)
  stderr, ci95 = intervals.summarize({"x": values, "one": np.array([1.0])})
  assert stderr["x"] == pytest.approx(np.std(values, ddof=1))
  assert ci95["x"] == pytest.approx([25.0, 975.0])
  assert "one" not in stderr


def test_too_few_resamples(points_sigma_001):
  params, tokens, loss = points_sigma_001
  result = optimize.fit("chinchilla", (params, tokens), loss)
  with pytest.raises(InputError, match="at least 2 resamples"):
    bootstrap.bootstrap(result, (params, tokens), loss, resamples=1)

"""Normal intervals from bootstrap samples: the SD or the IQR's spread, times a quantile."""

import numpy as np
import pytest

from scaling.fit import intervals


def test_iqr_spread_is_the_sd_of_a_normal_and_ignores_a_flying_resample():
  samples = np.random.default_rng(0).normal(0.5, 0.02, 4000)
  assert intervals.spread(samples, "iqr") == pytest.approx(0.02, rel=0.05)
  samples[0] = -50.0  # one resample whose vertex flew off
  assert intervals.spread(samples, "sd") > 0.5
  assert intervals.spread(samples, "iqr") == pytest.approx(0.02, rel=0.05)


def test_normal_interval_is_the_estimate_plus_minus_quantile_spreads_in_log_space_for_positives():
  rng = np.random.default_rng(1)
  samples = {"a": rng.normal(0.5, 0.02, 4000), "k_N": np.exp(rng.normal(0.0, 0.1, 4000))}
  stderr, ci95 = intervals.summarize_normal(samples, {"a": 0.49, "k_N": 2.0}, positive=("k_N",),
                                            scale="iqr", quantile=2.5)
  spread_a = intervals.spread(samples["a"], "iqr")
  assert stderr["a"] == spread_a and ci95["a"] == pytest.approx([0.49 - 2.5 * spread_a,
                                                                 0.49 + 2.5 * spread_a])
  log_spread = intervals.spread(np.log(samples["k_N"]), "iqr")
  assert ci95["k_N"] == pytest.approx([2.0 * np.exp(-2.5 * log_spread), 2.0 * np.exp(2.5 * log_spread)])

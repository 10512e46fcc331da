"""Summaries of bootstrap samples: standard errors and 95 % intervals (numpy only, so that the
isoflop approach never imports JAX).

Shapes: B resamples.
"""

from collections.abc import Sequence

import numpy as np


def summarize(samples: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, list[float]]]:
  """Standard errors and 95 % percentile intervals of each quantity's bootstrap samples."""
  stderr, ci95 = {}, {}
  for name, values in samples.items():
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
      continue
    stderr[name] = float(np.std(values, ddof=1))
    ci95[name] = [float(v) for v in np.percentile(values, [2.5, 97.5])]
  return stderr, ci95


def summarize_normal(samples: dict[str, np.ndarray], estimates: dict[str, float],
                     positive: Sequence[str] = ()) -> tuple[dict[str, float], dict[str, list[float]]]:
  """Standard errors and 95 % normal intervals, estimate ± 1.96·SD of the bootstrap samples
  (Efron & Tibshirani 1993, sec. 13.2), in log space for names containing one of `positive`
  (coefficients and allocations, which are log-normal-ish and must stay positive).

  For the isoFLOP estimator the percentile interval is centred on the resamples' median, which
  averages over the windows the resamples choose, and it over-covered (100 of 100 synthetic
  sweeps); centred on the estimate itself, the interval covers as it says (docs/fit.md).
  """
  stderr, ci95 = {}, {}
  for name, values in samples.items():
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2 or name not in estimates:
      continue
    if any(p in name for p in positive):
      log_sd = float(np.std(np.log(values[values > 0]), ddof=1))
      stderr[name] = float(estimates[name] * log_sd)  # the delta method's SD from log space
      ci95[name] = [float(estimates[name] * np.exp(-1.96 * log_sd)),
                    float(estimates[name] * np.exp(1.96 * log_sd))]
    else:
      stderr[name] = float(np.std(values, ddof=1))
      ci95[name] = [estimates[name] - 1.96 * stderr[name], estimates[name] + 1.96 * stderr[name]]
  return stderr, ci95

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


SCALES = ("sd", "iqr")


def spread(values, scale: str = "sd") -> float:
  """The samples' SD ("sd"), or the SD a normal with their interquartile range has ("iqr":
  IQR / 1.349), which a few resamples far out in a heavy tail do not move."""
  if scale == "iqr":
    q1, q3 = np.percentile(values, [25, 75])
    return float((q3 - q1) / 1.349)
  return float(np.std(values, ddof=1))


def summarize_normal(samples: dict[str, np.ndarray], estimates: dict[str, float],
                     positive: Sequence[str] = (), scale: str = "sd", quantile: float = 1.96,
                     ) -> tuple[dict[str, float], dict[str, list[float]]]:
  """Standard errors and 95 % normal intervals, estimate ± `quantile`·spread of the bootstrap samples
  (Efron & Tibshirani 1993, sec. 13.2), in log space for names containing one of `positive`
  (coefficients and allocations, which are log-normal-ish and must stay positive). The spread is
  the SD or, `scale="iqr"`, IQR / 1.349 (`spread`); `quantile` 1.96, or Student's t where the
  spread scales with a σ estimated on few degrees of freedom.

  For the isoFLOP estimator the percentile interval is centred on the resamples' median, which
  averages over the windows the resamples choose, and it over-covered (100 of 100 synthetic
  sweeps); centred on the estimate itself, the interval covers as it says (docs/fit.md). The noise
  bootstrap's resamples of a are heavy-tailed (a shallow profile's vertex flies off in a few), so
  their SD made its intervals 1.3-1.4x wider than the estimator's own spread calls for; IQR / 1.349
  does not (docs/fit.md, calibration).
  """
  stderr, ci95 = {}, {}
  for name, values in samples.items():
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2 or name not in estimates:
      continue
    if any(p in name for p in positive):
      log_sd = spread(np.log(values[values > 0]), scale)
      stderr[name] = float(estimates[name] * log_sd)  # the delta method's SD from log space
      ci95[name] = [float(estimates[name] * np.exp(-quantile * log_sd)),
                    float(estimates[name] * np.exp(quantile * log_sd))]
    else:
      stderr[name] = spread(values, scale)
      ci95[name] = [estimates[name] - quantile * stderr[name],
                    estimates[name] + quantile * stderr[name]]
  return stderr, ci95

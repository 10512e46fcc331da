"""Uncertainty of a fit by the bootstrap over points (Efron 1979).

A resample draws P points with replacement. Written as integer weights on the original points,
every resample has the same shape, so the refits are lanes of the same compiled solver as the fit
itself. Each refit starts from the full-data optimum, as Besiroglu et al. 2024 start theirs from
Hoffmann's estimate. Standard errors are the resamples' standard deviation; intervals are their
2.5 and 97.5 percentiles.

Shapes: B resamples, P points, T fitted parameters.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np

from scaling.errors import InputError
from scaling.fit import laws as laws_lib
from scaling.fit import optimize


@dataclasses.dataclass(frozen=True)
class Bootstrap:
  """Refits on resamples; summaries use the converged ones."""

  theta_BxT: np.ndarray
  converged_B: np.ndarray
  seed: int

  @property
  def resamples(self) -> int:
    return self.theta_BxT.shape[0]


def resample_weights(weights_P: np.ndarray, resamples: int, seed: int) -> np.ndarray:
  """B x P multiplicities of a case resample (a multinomial draw), times the points' weights."""
  rng = np.random.default_rng(seed)
  n = weights_P.size
  return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples) * weights_P


@optimize.float64
def bootstrap(result: optimize.Fit, inputs: Sequence, loss, *, resamples: int = 1000, seed: int = 0,
              weights=None, max_iterations: int = optimize.MAX_ITERATIONS,
              law: laws_lib.Law | None = None) -> Bootstrap:
  """Refits `result`'s law on `resamples` resamples of the points it was fitted to. Pass `law`
  when it is not the registry's (e.g. `laws.with_fixed`)."""
  if resamples < 2:
    raise InputError(f"bootstrap needs at least 2 resamples, got {resamples}")
  law = law or laws_lib.get(result.law)
  data = optimize.prepare(law, inputs, loss, weights)
  weights_BxP = resample_weights(data.weights_P[:data.n_points], resamples, seed)
  weights_BxP = np.pad(weights_BxP, ((0, 0), (0, data.weights_P.size - data.n_points)))
  theta_BxT, _, converged_B, _ = optimize.polish(
      law, np.tile(result.theta, (resamples, 1)), data, weights_BxP,
      optimize.delta_value(result.delta), max_iterations)
  return Bootstrap(theta_BxT=theta_BxT, converged_B=converged_B, seed=seed)

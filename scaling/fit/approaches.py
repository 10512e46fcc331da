"""Hoffmann et al. 2022's Approach 1 to N_opt(C), Kaplan et al. 2020's frontier, and what the
approaches share.

Approach 1 (envelope, Hoffmann sec. 3.1): at each FLOP value, the run with the lowest loss among
the training curves gives N_opt(C) and D_opt(C). It and Approach 2 (IsoFLOP, `isoflop.py`) then fit
power laws N_opt ∝ C^a, D_opt ∝ C^b by least squares in log-log (`Optima`). Approach 3 (the
parametric fit) is `optimize.fit`. Kaplan-style L(N), L(D), L(C) fits are a law (`power`,
`saturating`) fitted by `optimize.fit` to `frontier_mask`'s points: those that no point with
smaller or equal x beats.

Everything here is closed-form least squares in numpy, so `--approach envelope` never imports JAX.

Shapes: P points, M FLOP values, R runs.
"""

import dataclasses

import numpy as np

from scaling.errors import InputError


@dataclasses.dataclass(frozen=True)
class Optima:
  """Compute-optimal (C, N, D, L) points and the power laws N_opt = k_N·C^a, D_opt = k_D·C^b."""

  flops_M: np.ndarray
  params_M: np.ndarray
  tokens_M: np.ndarray
  loss_M: np.ndarray
  a: float
  b: float
  k_n: float
  k_d: float


def power_law_through(flops_M, values_M) -> tuple[float, float]:
  """(exponent, coefficient) of values = coefficient·flops^exponent, least squares in log-log."""
  exponent, log_coefficient = np.polyfit(np.log(flops_M), np.log(values_M), 1)
  return float(exponent), float(np.exp(log_coefficient))


def _optima(flops_M, params_M, tokens_M, loss_M) -> Optima:
  a, k_n = power_law_through(flops_M, params_M)
  b, k_d = power_law_through(flops_M, tokens_M)
  return Optima(np.asarray(flops_M), np.asarray(params_M), np.asarray(tokens_M),
                np.asarray(loss_M), a, b, k_n, k_d)


# Approach 1: the envelope of training curves.


def envelope(run_P, flops_P, params_P, tokens_P, loss_P, *, n_flops: int = 200) -> Optima:
  """Approach 1: at each of `n_flops` log-spaced FLOP values, the run with the lowest loss.

  Each run's loss and tokens are interpolated linearly in log C between its points. A FLOP value
  counts only if at least two runs' curves reach it (alone, a run wins by default) and its winner
  is neither the smallest nor the largest model (the optimum may lie beyond the sizes trained).
  """
  curves = []
  for run in np.unique(run_P):
    rows = run_P == run
    order = np.argsort(flops_P[rows])
    log_flops = np.log(flops_P[rows][order])
    if log_flops.size < 2 or np.unique(params_P[rows]).size != 1:
      raise InputError(f"envelope: run {run} needs at least 2 points and one model size")
    curves.append((log_flops, np.log(tokens_P[rows][order]), loss_P[rows][order],
                   params_P[rows][0]))
  sizes_R = np.array([c[3] for c in curves])
  if np.unique(sizes_R).size < 3:
    raise InputError(f"envelope needs training curves of at least 3 model sizes, got "
                     f"{np.unique(sizes_R).size}")
  grid_M = np.linspace(min(c[0][0] for c in curves), max(c[0][-1] for c in curves), n_flops)
  loss_RxM = np.full((len(curves), n_flops), np.inf)
  log_tokens_RxM = np.zeros((len(curves), n_flops))
  for r, (log_flops, log_tokens, loss, _) in enumerate(curves):
    inside = (grid_M >= log_flops[0]) & (grid_M <= log_flops[-1])
    loss_RxM[r, inside] = np.interp(grid_M[inside], log_flops, loss)
    log_tokens_RxM[r, inside] = np.interp(grid_M[inside], log_flops, log_tokens)
  winner_M = np.argmin(loss_RxM, axis=0)
  columns = np.flatnonzero((np.isfinite(loss_RxM).sum(axis=0) >= 2)
                           & (sizes_R[winner_M] > sizes_R.min()) & (sizes_R[winner_M] < sizes_R.max()))
  if columns.size < 2 or np.unique(sizes_R[winner_M[columns]]).size < 2:
    raise InputError("envelope: fewer than 2 model sizes win inside the overlap of the training "
                     "curves; no N_opt(C) trend to fit")
  winners = winner_M[columns]
  return _optima(np.exp(grid_M[columns]), sizes_R[winners],
                 np.exp(log_tokens_RxM[winners, columns]), loss_RxM[winners, columns])


# Kaplan et al. 2020: laws through the frontier.


def frontier_mask(x_P, loss_P) -> np.ndarray:
  """Points with a lower loss than every point at smaller or equal x (the Pareto frontier)."""
  order = np.lexsort((loss_P, x_P))
  best_so_far = np.minimum.accumulate(loss_P[order])
  on_front = np.empty(x_P.size, bool)
  on_front[order] = loss_P[order] < np.concatenate([[np.inf], best_so_far[:-1]])
  return on_front

"""Hoffmann et al. 2022's Approach 2 (IsoFLOP profiles, sec. 3.2) to N_opt(C), and its bootstraps.

At each budget a parabola of loss in log N through the sizes near its lowest loss, whose minimum
gives N_opt(C) and D_opt(C); then power laws N_opt ∝ C^a, D_opt ∝ C^b by least squares in log-log
(`approaches._optima`). The bootstrap resamples the runs within budgets (and replicate seeds), or
redraws their losses about the fitted parabolas with the measured run noise.

Everything here is closed-form least squares in numpy, so `scaling fit --approach isoflop` never
imports JAX.

Shapes: P points, M budgets, R runs, B resamples.
"""

import dataclasses
import math

import numpy as np

from scaling.errors import InputError
from scaling.fit.approaches import Optima, _optima
from scaling.fit.points import warn

# Sizes fitted on each side of a budget's lowest loss. A parabola is the second-order expansion of
# the loss about its minimum, so it should see only the neighbourhood of the minimum: 1 each side
# (3 points) interpolates and leaves nothing to check it; 2 each side (5 points) is the smallest
# symmetric window that over-determines it. Sizes far from the minimum then cannot bend it (Porian
# et al. 2024's grids span up to four decades of N per budget).
WINDOW = 2
RECENTRE = 2
# Without a `budget` column, budgets are the FLOP values grouped wherever consecutive sorted values
# are within this factor - 1 of each other: 6·N·D recomputed from rounded or digitised N and D
# scatters by a few per cent around its nominal budget, while a sweep's budgets lie a factor
# >= 1.5 apart.
BUDGET_RTOL = 0.1


def group_budgets(flops_P, rtol: float = BUDGET_RTOL) -> tuple[np.ndarray, np.ndarray]:
  """(budget index of each point, budget_M): the sorted FLOP values split wherever the next is
  more than `rtol` (relative) above the previous. A budget is its group's value when the values
  are equal, else their geometric mean over points."""
  flops_P = np.asarray(flops_P, dtype=np.float64)
  values = np.unique(flops_P)
  new_group = np.concatenate([[True], values[1:] > values[:-1] * (1 + rtol)])
  group_of_value = np.cumsum(new_group) - 1
  index_P = group_of_value[np.searchsorted(values, flops_P)]
  budget_M = []
  for m in range(int(group_of_value[-1]) + 1):
    members = flops_P[index_P == m]
    budget_M.append(members[0] if np.ptp(members) == 0 else np.exp(np.mean(np.log(members))))
  return index_P, np.array(budget_M)


@dataclasses.dataclass(frozen=True)
class IsoflopProfile:
  """One budget: its points, the weight each had in its parabola loss = c2·u² + c1·u + c0 in
  u = log N (0: not fitted), the minimum, and why the budget has none (`skipped`, else "")."""

  flops: float
  rows: np.ndarray  # the budget's points, as indices into the input arrays
  log_params: np.ndarray
  log_tokens: np.ndarray
  loss: np.ndarray
  weights: np.ndarray
  coefficients: np.ndarray  # c2, c1, c0
  minimum: tuple  # (N_opt, D_opt, loss at the vertex)
  skipped: str = ""

  @property
  def fitted(self) -> np.ndarray:
    return self.weights > 0


def _weighted_fit(x_P, y_P, weights_BxP, degree: int, solvable_B) -> tuple[np.ndarray, float]:
  """(B x (degree+1) coefficients in powers of x - centre, highest first; centre): weighted least
  squares by the normal equations, batched over resamples; y may be one row or one per resample.
  Rows not `solvable_B` (fewer distinct x than coefficients) give NaN."""
  centre = float(np.mean(x_P))
  design_PxK = np.vander(x_P - centre, degree + 1)
  gram_BxKxK = np.einsum("bp,pi,pj->bij", weights_BxP, design_PxK, design_PxK)
  rhs_BxK = np.einsum("bp,pi,bp->bi", weights_BxP, design_PxK, np.broadcast_to(y_P, weights_BxP.shape))
  gram_BxKxK[~solvable_B] = np.eye(degree + 1)
  coefficients_BxK = np.linalg.solve(gram_BxKxK, rhs_BxK[..., None])[..., 0]
  coefficients_BxK[~solvable_B] = np.nan
  return coefficients_BxK, centre


def _budget_minima(size_P, log_params_P, log_tokens_P, loss_P, counts_BxP, window: int):
  """Each resample's parabola vertex (log N, log D, loss) at one budget, and which have one.

  `counts_BxP`: how often each of the budget's points is drawn (ones for the fit itself); size_P
  indexes the budget's sorted distinct sizes; loss_P may be one row or one per resample (B x P). Per resample: centre on the drawn size of lowest
  mean loss, fit a weighted parabola to the drawn sizes within `window` ranks of the centre, move
  the centre to the vertex (its fractional rank among the sizes drawn) and refit, `RECENTRE`
  times. Weights fall from 1 to 0 over the rank beyond the window, so the fit moves continuously
  with the data instead of jumping when noise changes which size is lowest (that jump doubled
  the spread of a on synthetic sweeps). window 0: every point, weight 1. There is no minimum when
  (window > 0) the lowest loss is at the smallest or largest size drawn, fewer than 3 sizes are
  fitted, or the parabola opens downward. Returns log_n_B, log_d_B, loss_B, has_minimum_B,
  weights_BxP (of the last fit), why_B (0: a minimum, else the key of _WHY).
  """
  onehot_PxS = np.eye(int(size_P.max()) + 1)[size_P]
  log_sizes_S = (onehot_PxS * log_params_P[:, None]).max(axis=0)
  count_BxS = counts_BxP @ onehot_PxS
  present_BxS = count_BxS > 0
  with np.errstate(invalid="ignore", divide="ignore"):
    mean_loss_BxS = np.where(present_BxS, ((counts_BxP * loss_P) @ onehot_PxS) / count_BxS, np.inf)
  rank_BxS = np.cumsum(present_BxS, axis=1) - 1  # among the sizes drawn
  drawn_B = present_BxS.sum(axis=1)
  centre_B = np.take_along_axis(rank_BxS, np.argmin(mean_loss_BxS, axis=1)[:, None], 1)[:, 0] * 1.0
  bracketed_B = ((centre_B > 0) & (centre_B < drawn_B - 1)) | (window == 0)
  for _ in range(1 + RECENTRE * (window > 0)):
    if window > 0:
      weight_BxS = present_BxS * np.clip(window + 1 - np.abs(rank_BxS - centre_B[:, None]), 0, 1)
    else:
      weight_BxS = present_BxS.astype(np.float64)
    weights_BxP = counts_BxP * weight_BxS[:, size_P]
    enough_B = (weight_BxS > 0).sum(axis=1) >= 3
    parabola_Bx3, centre = _weighted_fit(log_params_P, loss_P, weights_BxP, 2, enough_B)
    c2, c1, c0 = parabola_Bx3.T
    with np.errstate(all="ignore"):
      vertex_B = centre - c1 / (2 * c2)
    # The next window centres on the vertex's fractional rank among the sizes drawn.
    movable_B = np.isfinite(vertex_B) & (c2 > 0)
    vertex_B1 = np.where(movable_B, vertex_B, 0.0)[:, None]
    below_BxS = present_BxS & (log_sizes_S <= vertex_B1)
    lower_B = np.where(below_BxS, log_sizes_S, -np.inf).max(axis=1)
    upper_B = np.where(present_BxS & ~below_BxS, log_sizes_S, np.inf).min(axis=1)
    with np.errstate(all="ignore"):
      fraction_B = np.nan_to_num((vertex_B1[:, 0] - lower_B) / (upper_B - lower_B), nan=0.0,
                                 posinf=0.0, neginf=0.0)
    fractional_rank_B = np.clip(below_BxS.sum(axis=1) - 1 + np.clip(fraction_B, 0, 1), 0,
                                drawn_B - 1)
    centre_B = np.where(movable_B, fractional_rank_B, centre_B)
  line_Bx2, line_centre = _weighted_fit(log_params_P, log_tokens_P, weights_BxP, 1, enough_B)
  slope, intercept = line_Bx2.T
  why_B = np.select([~bracketed_B, ~enough_B, ~(c2 > 0)], [1, 2, 3], 0)
  with np.errstate(all="ignore"):
    loss_B = c0 - c1 * c1 / (4 * c2)
  return (vertex_B, slope * (vertex_B - line_centre) + intercept, loss_B, why_B == 0,
          weights_BxP, why_B)


_WHY = {1: "lowest loss at the {end} size, no bracketed minimum",
        2: "fewer than 3 sizes near the minimum", 3: "loss is not convex in log N"}


def _budget_points(budget_P, params_P, rtol: float, grouped: bool):
  """Per budget: (flops, rows, size index of each row). Every budget needs 3 model sizes."""
  if grouped:
    index_P, budget_M = group_budgets(budget_P, rtol)
  else:
    budget_M, index_P = np.unique(budget_P, return_inverse=True)
  budgets = []
  for m, flops in enumerate(budget_M):
    rows = np.flatnonzero(index_P == m)
    sizes, size_P = np.unique(params_P[rows], return_inverse=True)
    if sizes.size < 3:
      values = np.unique(budget_P[rows])
      also = (f" (FLOP values {', '.join(f'{v:.6g}' for v in values)}, grouped within "
              f"{rtol:g} relative)" if values.size > 1 else "")
      raise InputError(f"isoFLOP budget {flops:.4g} has {sizes.size} model size"
                       f"{'s' if sizes.size != 1 else ''}{also}; a parabola needs at least 3")
    budgets.append((float(flops), rows, size_P))
  return budgets


def isoflop_profiles(budget_P, params_P, tokens_P, loss_P, *, window: int = WINDOW,
                     rtol: float = BUDGET_RTOL, grouped: bool = True) -> list[IsoflopProfile]:
  """Every budget's profile. `grouped=False` takes budgets as exact values (a `budget` column)."""
  budget_P, params_P, tokens_P, loss_P = (np.asarray(x, dtype=np.float64)
                                          for x in (budget_P, params_P, tokens_P, loss_P))
  if window < 0:
    raise InputError(f"the isoFLOP window must be >= 0 sizes on each side, got {window}")
  profiles = []
  for flops, rows, size_P in _budget_points(budget_P, params_P, rtol, grouped):
    log_n, log_d, loss = np.log(params_P[rows]), np.log(tokens_P[rows]), loss_P[rows]
    n_B, d_B, loss_B, _, weights_BxP, why_B = _budget_minima(size_P, log_n, log_d, loss,
                                                              np.ones((1, rows.size)), window)
    weights = weights_BxP[0]
    skipped = ""
    if why_B[0]:
      end = "smallest" if size_P[np.argmin(loss)] == 0 else "largest"
      skipped = _WHY[int(why_B[0])].format(end=end)
    fitted = weights > 0
    coefficients = (np.polyfit(log_n[fitted], loss[fitted], 2, w=np.sqrt(weights[fitted]))
                    if np.unique(log_n[fitted]).size >= 3 else np.full(3, np.nan))
    profiles.append(IsoflopProfile(flops, rows, log_n, log_d, loss, weights, coefficients,
                                   (float(np.exp(n_B[0])), float(np.exp(d_B[0])), float(loss_B[0])),
                                   skipped))
  return profiles


@dataclasses.dataclass(frozen=True)
class Isoflop(Optima):
  """Approach 2's optima, every budget's profile behind them, and the warnings raised."""

  profiles: tuple = ()
  warnings: tuple = ()
  window: int = WINDOW


def isoflop(budget_P, params_P, tokens_P, loss_P, *, window: int = WINDOW,
            rtol: float = BUDGET_RTOL, grouped: bool = True, quiet: bool = False) -> Isoflop:
  """Approach 2: N_opt at each budget from its parabola's minimum, then power laws across budgets.

  A budget without a minimum near its lowest loss (see `_budget_minima`) is left out with a
  warning naming it; a vertex outside the sizes fitted is kept with a warning, and so are two
  budgets only (a line through 2 points). Warnings go to stderr unless `quiet`, and into
  `.warnings` either way.
  """
  profiles = isoflop_profiles(budget_P, params_P, tokens_P, loss_P, window=window, rtol=rtol,
                              grouped=grouped)
  warnings, optima = [], []
  for profile in profiles:
    if profile.skipped:
      warnings.append(f"isoFLOP budget {profile.flops:.4g}: {profile.skipped}; budget left out")
      continue
    fitted_log_n = profile.log_params[profile.fitted]
    n_opt = profile.minimum[0]
    if not fitted_log_n.min() <= np.log(n_opt) <= fitted_log_n.max():
      warnings.append(f"isoFLOP budget {profile.flops:.4g}: the minimum N = {n_opt:.3g} lies "
                      f"outside the sizes fitted; it is an extrapolation")
    optima.append((profile.flops, *profile.minimum))
  if len(optima) < 2:
    for message in warnings if not quiet else ():
      warn(message)
    raise InputError(f"isoFLOP needs at least 2 budgets with a minimum, got {len(optima)}")
  if len(optima) == 2:
    warnings.append("isoFLOP: only 2 budgets with a minimum; a and b are a line through 2 points, "
                    "with no residual to check them")
  for message in warnings if not quiet else ():
    warn(message)
  base = _optima(*np.array(optima).T)
  return Isoflop(**{f.name: getattr(base, f.name) for f in dataclasses.fields(Optima)},
                 profiles=tuple(profiles), warnings=tuple(warnings), window=window)


def _resample_counts(rng, size_P, replicate_P, resamples: int) -> np.ndarray:
  """B x P multiplicities of one budget's points in a two-level case bootstrap: its sizes are
  drawn with replacement, then each drawn size's replicate runs (seeds) with replacement. Without
  replicates (one run per size) that is drawing the runs with replacement."""
  sizes = int(size_P.max()) + 1
  size_counts_BxS = rng.multinomial(sizes, np.full(sizes, 1.0 / sizes), size=resamples)
  counts_BxP = np.zeros((resamples, size_P.size))
  for s in range(sizes):
    rows = np.flatnonzero(size_P == s)
    replicate_R = np.unique(replicate_P[rows], return_inverse=True)[1]  # a size's rows by seed
    n_replicates = int(replicate_R.max()) + 1
    # k drawn copies of a size, each drawing its replicates: one multinomial of k·R draws.
    drawn_BxR = rng.multinomial(size_counts_BxS[:, s] * n_replicates,
                                np.full(n_replicates, 1.0 / n_replicates))
    counts_BxP[:, rows] = drawn_BxR[:, replicate_R]
  return counts_BxP


BOOTSTRAP_KINDS = ("cases", "noise")
# The default kind, and the spread each kind's interval is a multiple of (`intervals.spread`,
# `interval_quantile`). The noise bootstrap (relative noise) with t·IQR/1.349 covers 93.8-97.5 % at
# every design of the calibration harness, at 0.54-1.11x 3.92 x the estimator's SD; with ± 1.96 SD
# it was 1.1-1.6x as wide, and the case bootstrap 2.1x at a 6-size design (docs/fit.md, calibration).
DEFAULT_KIND = "noise"
INTERVAL_SCALE = {"cases": "sd", "noise": "iqr"}


def interval_quantile(kind: str, sigma_dof: float) -> float:
  """The multiplier of the spread in a 95 % interval: 1.96 for cases; for noise, Student's
  t(0.975, ν) with σ's degrees of freedom ν, since every resample's spread scales with σ, itself
  estimated (one seed at the demo's design, ν ≈ 7: 91.0 % coverage with 1.96, 94.7 % with t)."""
  if kind == "cases" or not sigma_dof > 0:
    return 1.96
  return student_t_975(sigma_dof)


def student_t_975(dof: float) -> float:
  """Student's t 0.975 quantile for any dof > 0, by integrating its density (numpy: this module
  imports neither scipy nor JAX). With x = √ν·tan θ the density is ∝ cos^(ν−1) θ on [0, π/2)."""
  theta = np.linspace(0.0, np.pi / 2, 20_001)[:-1]
  log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(math.pi)
  density = np.exp(log_norm + (dof - 1) * np.log(np.cos(theta)))
  cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(theta))])
  return float(math.sqrt(dof) * math.tan(np.interp(0.475, cdf, theta)))


@dataclasses.dataclass(frozen=True)
class RunNoise:
  """The σ of a final loss that the noise bootstrap draws with, and the two measurements behind
  it: `seed_sd`, the pooled SD between runs of the same size at the same budget (replicate seeds),
  and `residual_rms`, the pooled weighted RMS of the fitted points about their windowed parabolas
  (over the degrees of freedom the weighted fit leaves, `_residual_dof`). `sigma` is the larger,
  named by `source` ("seeds" or "parabolas") with its degrees of freedom `dof`: the seeds measure
  a run's noise, the residuals that noise plus whatever shape a parabola cannot follow, so the
  larger is what the estimator's model (a parabola plus noise) really faces. NaN and 0 df for a
  measurement there is none of.

  The noise is relative: each deviation is measured as a fraction of its loss (log loss between
  seeds, residual over the parabola's value) and pooled, and a resample's noise at a run is that
  fraction of its loss. The three figures are in nats at `loss_scale`, the runs' mean loss
  (`relative` = sigma / loss_scale). Pooled in nats, σ is the noise at the average loss, too much
  at the large budgets, whose losses are lowest and whose shallow profiles' vertices carry most of
  a's spread: 1.12x the estimator's spread at 7 budgets over 3 decades (docs/fit.md)."""

  sigma: float
  source: str
  dof: float
  seed_sd: float
  seed_dof: int
  residual_rms: float
  residual_dof: float
  loss_scale: float

  @property
  def relative(self) -> float:
    return self.sigma / self.loss_scale


def run_noise(profiles: list[IsoflopProfile]) -> RunNoise:
  """`RunNoise` of a fit's profiles; an error when neither replicates nor residuals measure it."""
  seed_ss = seed_dof = residual_ss = residual_dof = 0.0
  for profile in profiles:
    for log_n in np.unique(profile.log_params):
      log_losses = np.log(profile.loss[profile.log_params == log_n])
      seed_ss += ((log_losses - log_losses.mean()) ** 2).sum()
      seed_dof += log_losses.size - 1
    if not profile.skipped:
      weights = profile.weights[profile.fitted]
      log_n = profile.log_params[profile.fitted]
      parabola = np.polyval(profile.coefficients, log_n)
      residual_ss += (weights * ((profile.loss[profile.fitted] - parabola) / parabola) ** 2).sum()
      residual_dof += _residual_dof(log_n, weights)
  if not seed_dof and not residual_dof > 0:
    raise InputError("the noise bootstrap cannot measure the runs' noise: no replicate runs "
                     "(same budget and size) and no parabola fitted to more than 3 sizes")
  loss_scale = float(np.mean(np.concatenate([profile.loss for profile in profiles])))
  seed_sd = float(loss_scale * np.sqrt(seed_ss / seed_dof)) if seed_dof else np.nan
  residual_rms = (float(loss_scale * np.sqrt(residual_ss / residual_dof)) if residual_dof > 0
                  else np.nan)
  from_seeds = bool(seed_dof) and not residual_rms > seed_sd
  return RunNoise(sigma=seed_sd if from_seeds else residual_rms,
                  source="seeds" if from_seeds else "parabolas",
                  dof=int(seed_dof) if from_seeds else float(residual_dof), seed_sd=seed_sd,
                  seed_dof=int(seed_dof), residual_rms=residual_rms,
                  residual_dof=float(residual_dof), loss_scale=loss_scale)


def _residual_dof(log_n_P, weights_P) -> float:
  """E[Σ w·r²] / σ² of a weighted parabola fit under noise of one σ: Σw − tr((XᵀWX)⁻¹·XᵀW²X).
  With weights 0 or 1 it is the points less 3; the window's fractional edge weights make it more
  than Σw − 3, which overstated σ by ≈ 10 % (9 sizes × 1.6, one seed: docs/fit.md)."""
  design_PxK = np.vander(log_n_P - log_n_P.mean(), 3)
  gram_KxK = design_PxK.T @ (weights_P[:, None] * design_PxK)
  squared_KxK = design_PxK.T @ (weights_P[:, None] ** 2 * design_PxK)
  return max(float(weights_P.sum() - np.trace(np.linalg.solve(gram_KxK, squared_KxK))), 0.0)


def _noise_losses(rng, profile: IsoflopProfile, relative: float, resamples: int) -> np.ndarray:
  """B x P losses of one budget in a noise resample: its fitted parabola's value at each point
  its window fitted (the observed loss at the points outside it, which no parabola describes),
  plus Gaussian noise of SD `relative` × that loss."""
  parabola = profile.fitted & np.all(np.isfinite(profile.coefficients))
  truth_P = np.where(parabola, np.polyval(profile.coefficients, profile.log_params), profile.loss)
  return truth_P * (1 + relative * rng.standard_normal((resamples, truth_P.size)))


def isoflop_bootstrap(budget_P, params_P, tokens_P, loss_P, *, resamples: int, seed: int,
                      window: int = WINDOW, rtol: float = BUDGET_RTOL, grouped: bool = True,
                      replicate_P=None, kind: str = DEFAULT_KIND) -> dict[str, np.ndarray]:
  """a, b, k_N, k_D over resamples of the runs, each put through the whole estimator (window,
  parabolas, power laws).

  kind "cases": within each budget, sizes are drawn with replacement and, where `replicate_P` (a
  seed per point) marks replicate runs of a size, the replicates of each drawn size too. kind
  "noise" (a parametric bootstrap): the design is kept, every run once, and each loss is redrawn
  as its budget's fitted parabola plus Gaussian noise of `run_noise`'s σ (replicates are the runs
  of one budget and size, whatever their seed). A budget without a minimum in a resample is left
  out of that resample; resamples with fewer than 2 budgets left are dropped (count them by the
  sample size). Besides a, b, k_N, k_D (over the kept resamples), "N_opt_BxM" and "D_opt_BxM" are
  each budget's own minimum in every resample, budgets in increasing order, NaN where a resample
  has none.
  """
  if kind not in BOOTSTRAP_KINDS:
    raise InputError(f"the isoFLOP bootstrap is one of {', '.join(BOOTSTRAP_KINDS)}, got {kind!r}")
  budget_P, params_P, tokens_P, loss_P = (np.asarray(x, dtype=np.float64)
                                          for x in (budget_P, params_P, tokens_P, loss_P))
  replicate_P = (np.arange(loss_P.size) if replicate_P is None else np.asarray(replicate_P))
  rng = np.random.default_rng(seed)
  if kind == "noise":
    profiles = isoflop_profiles(budget_P, params_P, tokens_P, loss_P, window=window, rtol=rtol,
                                grouped=grouped)
    relative = run_noise(profiles).relative
  log_c, log_n, log_d, ok = [], [], [], []
  for m, (flops, rows, size_P) in enumerate(_budget_points(budget_P, params_P, rtol, grouped)):
    if kind == "cases":
      counts_BxP = _resample_counts(rng, size_P, replicate_P[rows], resamples)
      loss = loss_P[rows]
    else:
      counts_BxP = np.ones((resamples, rows.size))
      loss = _noise_losses(rng, profiles[m], relative, resamples)
    n_B, d_B, _, has_minimum_B, _, _ = _budget_minima(
        size_P, np.log(params_P[rows]), np.log(tokens_P[rows]), loss, counts_BxP, window)
    log_c.append(np.log(flops))
    log_n.append(n_B)
    log_d.append(d_B)
    ok.append(has_minimum_B)
  log_c_M = np.array(log_c)
  ok_BxM = np.array(ok).T
  keep_B = ok_BxM.sum(axis=1) >= 2
  samples = {}
  with np.errstate(over="ignore"):
    samples["N_opt_BxM"] = np.where(ok_BxM, np.exp(np.array(log_n).T), np.nan)
    samples["D_opt_BxM"] = np.where(ok_BxM, np.exp(np.array(log_d).T), np.nan)
  for name, coefficient, log_values_BxM in (("a", "k_N", np.array(log_n).T),
                                            ("b", "k_D", np.array(log_d).T)):
    slope_B, intercept_B = _masked_line(log_c_M, log_values_BxM[keep_B], ok_BxM[keep_B])
    with np.errstate(over="ignore"):
      samples[name], samples[coefficient] = slope_B, np.exp(intercept_B)
  return samples


def _masked_line(x_M, y_BxM, mask_BxM) -> tuple[np.ndarray, np.ndarray]:
  """Least-squares lines y = slope·x + intercept per row, over the masked entries only."""
  w = mask_BxM.astype(np.float64)
  y_BxM = np.where(mask_BxM, y_BxM, 0.0)
  n = w.sum(axis=1)
  mean_x = (w * x_M).sum(axis=1) / n
  mean_y = (w * y_BxM).sum(axis=1) / n
  dx = np.where(mask_BxM, x_M - mean_x[:, None], 0.0)
  slope = (dx * (y_BxM - mean_y[:, None])).sum(axis=1) / (dx * dx).sum(axis=1)
  return slope, mean_y - slope * mean_x

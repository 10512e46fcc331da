"""Hyperparameter laws: the best learning rate of each point of an hparams sweep, and how it scales.

Per point (N, D[, B]), the optimal LR is the vertex of a parabola of loss in log LR through the
grid's best LR and its neighbours (Approach 2's windowed parabola, `isoflop.isoflop_profiles`,
with LR in place of N and window 1). A point whose best LR is the grid's smallest or largest is
unbracketed: reported by name and left out. Through the bracketed vertices, least squares in
log-log fits lr_opt = c·N^-alpha·D^-beta (Bjorck et al. 2024) and, with a compute column,
lr_opt = c·C^-alpha; with several batch sizes per (N, C), each (N, C)'s best batch is the vertex of
a parabola of the LR-optimal loss in log B, and batch_opt = c·C^beta (DeepSeek LLM 2024, eq. 1).
With batches swept, the LR laws go through each (N, D)'s best batch only (the one whose lowest loss
is lowest), the LR a batch law's batch is paired with.

Intervals come from one bootstrap pushed through all of it: where replicate runs (seeds) exist the
runs of each (point, LR) are redrawn with replacement; otherwise each loss is redrawn about its
parabola with the run noise measured as Approach 2's noise bootstrap does (`isoflop.run_noise`:
the larger of the seed SD and the residual RMS of window-2 parabolas), and intervals are
estimate ± t·IQR/1.349 in log space, its calibrated default (docs/fit.md).

Shapes: P rows, M points, H (N, C) groups, K batch sizes of a group, B resamples.
"""

import dataclasses

import numpy as np

from scaling.errors import InputError
from scaling.fit import approaches, isoflop
from scaling.fit.intervals import summarize_normal
from scaling.fit.points import warn

WINDOW = 1  # LRs fitted each side of the best: the best setting and its neighbours
NOISE_WINDOW = isoflop.WINDOW  # the parabolas whose residuals measure run noise (2 each side)
RESAMPLES = 2000
MIN_POINTS = 3  # bracketed points a law is fitted through (a line through 2 has no residual)
HORIZON_RTOL = 0.2  # D off a power of N by less than this (relative) is one horizon, rounded
MIN_NOISE_DOF = 1e-6  # below: the residuals of exact (3-point) parabolas, round-off, not noise


@dataclasses.dataclass(frozen=True)
class Data:
  """The rows of an hparams sweep: N, D, LR, loss, and optionally C (budget), B (batch), seed."""

  n_P: np.ndarray
  d_P: np.ndarray
  lr_P: np.ndarray
  loss_P: np.ndarray
  c_P: np.ndarray | None = None
  batch_P: np.ndarray | None = None
  seed_P: np.ndarray | None = None


def _short(x: float) -> str:
  """3 significant digits without '+': 8272 -> '8.27e3' (the sweep's run names)."""
  mantissa, exponent = f"{x:.2e}".split("e")
  return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _groups(data: Data) -> tuple[np.ndarray, list[dict]]:
  """(point index of each row, each point's N, D, C, B and name): rows of equal (N, D, B)."""
  keys = [data.n_P, data.d_P] + ([data.batch_P] if data.batch_P is not None else [])
  _, index_P = np.unique(np.stack(keys, axis=1), axis=0, return_inverse=True)
  index_P = index_P.ravel()
  points = []
  for m in range(int(index_P.max()) + 1):
    row = np.flatnonzero(index_P == m)[0]
    point = {"name": f"N{_short(data.n_P[row])}_D{_short(data.d_P[row])}",
             "N": float(data.n_P[row]), "D": float(data.d_P[row]), "lr_opt": None, "ci95": None}
    if data.c_P is not None:
      point["C"] = float(data.c_P[row])
    if data.batch_P is not None:
      point["batch_size"] = float(data.batch_P[row])
      point["name"] += f"_B{data.batch_P[row]:g}"
    points.append(point)
  return index_P, points


def _status(profile, lr_P) -> str:
  """'ok', or why the point has no optimal LR."""
  if not profile.skipped:
    return "ok"
  if "no bracketed minimum" in profile.skipped:
    lrs = np.unique(lr_P[profile.rows])
    best = lr_P[profile.rows][np.argmin(profile.loss)]
    end = "smallest" if best == lrs[0] else "largest"
    return f"unbracketed: lowest loss at the {end} learning rate ({best:.3g})"
  return {"fewer than 3 sizes near the minimum": "fewer than 3 learning rates near the minimum",
          "loss is not convex in log N": "loss is not convex in log LR"}.get(profile.skipped,
                                                                             profile.skipped)


def _inflated(loss_P, lr_index_P) -> np.ndarray:
  """Each run's loss moved away from its LR's mean by sqrt(n/(n-1)) (n runs at that LR): the
  mean of n runs redrawn with replacement varies as (n-1)/n of what a mean of n new runs would
  (2 seeds: intervals 0.71x as wide, 76 % coverage on synthetic sweeps; 95 % with this)."""
  n_K = np.bincount(lr_index_P)
  mean_K = np.bincount(lr_index_P, weights=loss_P) / n_K
  inflation_K = np.sqrt(n_K / np.maximum(n_K - 1, 1))
  return mean_K[lr_index_P] + inflation_K[lr_index_P] * (loss_P - mean_K[lr_index_P])


def _seed_counts(rng, lr_index_P, resamples: int) -> np.ndarray:
  """B x P multiplicities: each LR's replicate runs (seeds) of one point drawn with replacement."""
  counts_BxP = np.zeros((resamples, lr_index_P.size))
  for k in np.unique(lr_index_P):
    rows = np.flatnonzero(lr_index_P == k)
    counts_BxP[:, rows] = rng.multinomial(rows.size, np.full(rows.size, 1.0 / rows.size),
                                          size=resamples)
  return counts_BxP


def _masked_plane(log_n_M, log_d_M, log_y_BxM, mask_BxM) -> np.ndarray:
  """B x 3 (log c, alpha, beta) of log y = log c − alpha·log N − beta·log D, least squares over
  each row's masked points; NaN where they do not determine a plane."""
  design_MxK = np.stack([np.ones_like(log_n_M), -log_n_M, -log_d_M], axis=1)
  w_BxM = mask_BxM.astype(np.float64)
  y_BxM = np.where(mask_BxM, log_y_BxM, 0.0)
  gram_BxKxK = np.einsum("bm,mi,mj->bij", w_BxM, design_MxK, design_MxK)
  rhs_BxK = np.einsum("bm,mi,bm->bi", w_BxM, design_MxK, y_BxM)
  solvable_B = np.linalg.matrix_rank(gram_BxKxK, tol=1e-9) == 3
  gram_BxKxK[~solvable_B] = np.eye(3)
  theta_BxK = np.linalg.solve(gram_BxKxK, rhs_BxK[..., None])[..., 0]
  theta_BxK[~solvable_B] = np.nan
  return theta_BxK


def fit(data: Data, *, resamples: int = RESAMPLES, seed: int = 0,
        compute=(), params_tokens=()) -> dict:
  """The report's `points`, `laws`, `predictions`, `bootstrap` and `warnings` (see docs/fit.md
  "Hyperparameter laws"). `params_tokens`: (N, D) pairs to predict lr_opt(N,D) at."""
  index_P, points = _groups(data)
  warnings = []
  fittable = _fittable(data, index_P, points)
  rows = np.isin(index_P, fittable)
  # The profiles take LR in units of the smallest, so that every log LR is >= 0 as every log N
  # of an isoFLOP profile is (isoflop._budget_minima reads a size's log by a max over rows).
  lr_unit = float(data.lr_P.min())
  as_profiles = dict(budget_P=index_P[rows].astype(np.float64), params_P=data.lr_P[rows] / lr_unit,
                     tokens_P=data.d_P[rows], loss_P=data.loss_P[rows], grouped=False)
  profiles = isoflop.isoflop_profiles(**as_profiles, window=WINDOW)
  ok = _vertices(points, fittable, profiles, data.lr_P[rows], lr_unit, warnings)

  # One bootstrap through vertices, laws and predictions.
  rng = np.random.default_rng(seed)
  kind, scale, quantile, noise = _bootstrap_kind(data, index_P, fittable, as_profiles)
  log_lr_BxM, loss_BxM = _resampled_vertices(rng, profiles, fittable, len(points), kind, noise,
                                             resamples, lr_unit)
  ok_M = np.array([p["status"] == "ok" for p in points])
  for m in ok:
    _, ci = _interval({"lr_opt": log_lr_BxM[:, m]}, {"lr_opt": points[m]["lr_opt"]},
                      scale, quantile)
    points[m]["ci95"] = ci.get("lr_opt")
  # With batches swept, the LR laws go through each (N, D)'s best batch: the optimum a batch law's
  # batch is paired with, not an average over batches whose optimal LRs differ.
  lr_M = ok_M & _at_best_batch(data, index_P, points, warnings)
  laws, samples_of = _lr_laws(data, points, lr_M, log_lr_BxM, scale, quantile, warnings)
  batch_optima = []
  if data.batch_P is not None and data.c_P is not None and np.unique(data.batch_P).size >= 3:
    batch_optima, batch_law = _batch_law(points, ok_M, loss_BxM,
                                         np.isfinite(log_lr_BxM) & ok_M, scale, quantile,
                                         warnings)
    if batch_law:
      laws["batch_opt(C)"], samples_of["batch_opt(C)"] = batch_law
  elif data.batch_P is not None and np.unique(data.batch_P).size == 2:
    warnings.append("batch_opt(C): 2 batch sizes; a parabola in log B needs 3 per (N, C)")

  _record_ranges(laws, points, lr_M, batch_optima)
  report = {
      "points": points, "laws": laws,
      "predictions": _predictions(laws, samples_of, compute, params_tokens, scale, quantile),
      "bootstrap": _bootstrap_report(kind, resamples, seed, scale, quantile, noise),
      "warnings": warnings,
  }
  if batch_optima:
    report["batch_optima"] = batch_optima
  for message in warnings:
    warn(message)
  return report


def _fittable(data: Data, index_P, points) -> list[int]:
  """The points with the 3 learning rates a parabola needs (the others get a `status` saying so);
  too few of them is an InputError that asks whether this is an hparams sweep at all."""
  lr_P = data.lr_P
  few = [p["name"] for m, p in enumerate(points) if np.unique(lr_P[index_P == m]).size < 3]
  for m, point in enumerate(points):
    if point["name"] in few:
      k = np.unique(lr_P[index_P == m]).size
      point["status"] = f"{k} learning rate{'s' if k != 1 else ''}; a parabola in log LR needs 3"
  fittable = [m for m, p in enumerate(points) if p["name"] not in few]
  if len(fittable) < MIN_POINTS and few:
    raise InputError(f"hparams: {len(fittable)} of {len(points)} points have 3 or more learning "
                     f"rates (a parabola in log LR needs 3; e.g. {few[0]}): is this an hparams "
                     "sweep (sweep.kind=hparams, sweep.learning_rates)?")
  if len(fittable) < MIN_POINTS:
    raise InputError(f"hparams: {len(points)} points (N, D{', B' if data.batch_P is not None else ''}"
                     f"), a law needs {MIN_POINTS}: add sizes or horizons")
  return fittable


def _vertices(points, fittable, profiles, fittable_lr, lr_unit: float, warnings) -> list[int]:
  """Each fittable point's lr_opt and loss_opt (its parabola's vertex) and status; returns the
  bracketed ones, an InputError naming the others when a law cannot be fitted through them."""
  for m, profile in zip(fittable, profiles):
    point = points[m]
    point["status"] = _status(profile, fittable_lr)
    point["lr_opt"], point["loss_opt"] = ((profile.minimum[0] * lr_unit, profile.minimum[2])
                                          if point["status"] == "ok" else (None, None))
    point["learning_rates"] = int(np.unique(profile.log_params).size)
    point["runs"] = int(profile.rows.size)
    if point["status"] != "ok":
      warnings.append(f"point {point['name']}: {point['status']}; left out of the laws")
  ok = [m for m in fittable if points[m]["status"] == "ok"]
  if len(ok) < MIN_POINTS:
    bad = "; ".join(f"{points[m]['name']}: {points[m]['status']}" for m in range(len(points))
                    if points[m]["status"] != "ok")
    raise InputError(f"hparams: {len(ok)} bracketed points, a law needs {MIN_POINTS} ({bad}); "
                     "widen sweep.learning_rates")
  return ok


def _bootstrap_kind(data: Data, index_P, fittable, as_profiles):
  """(kind, scale, quantile, noise): "seeds" where every LR of every point has replicates, else
  "noise" with the run noise the window-2 parabolas measure (an InputError where none can)."""
  lr_P = data.lr_P
  # Seeds are resampled only where every LR of every point has replicates: an LR with one run
  # would be redrawn as itself, its point's interval (and the laws') as narrow as if noiseless.
  replicated = data.seed_P is not None and all(
      np.unique(lr_P[index_P == m], return_counts=True)[1].min() > 1 for m in fittable)
  if replicated:
    # t with the seeds' pooled degrees of freedom: the spread is their SD's, itself estimated
    seed_dof = sum(lr_P[index_P == m].size - np.unique(lr_P[index_P == m]).size for m in fittable)
    return "seeds", "sd", isoflop.student_t_975(seed_dof), None
  try:
    noise = isoflop.run_noise(isoflop.isoflop_profiles(**as_profiles, window=NOISE_WINDOW))
    # 3 LRs a point, no seeds: parabolas through 3 points leave round-off (dof ~1e-16) for a
    # residual, which would pass as sigma ~1e-7 and a t quantile ~0: intervals of zero width.
    if not noise.dof > MIN_NOISE_DOF:
      raise InputError("no replicate runs (same point and LR) and no parabola fitted to more "
                       "than 3 learning rates measure the runs' noise")
  except InputError as e:
    raise InputError(f"hparams: {e}; fit points with 5 or more learning rates, or replicate "
                     "seeds") from None
  return ("noise", isoflop.INTERVAL_SCALE["noise"], isoflop.interval_quantile("noise", noise.dof),
          noise)


def _resampled_vertices(rng, profiles, fittable, n_points: int, kind: str, noise, resamples: int,
                        lr_unit: float) -> tuple[np.ndarray, np.ndarray]:
  """B x M log lr_opt and B x M loss_opt of the resampled sweeps (NaN where a resample's
  parabola has no minimum, or the point is not fittable): the bootstrap the intervals read."""
  log_lr_BxM = np.full((resamples, n_points), np.nan)
  loss_BxM = np.full((resamples, n_points), np.nan)
  for m, profile in zip(fittable, profiles):
    lr_index = np.unique(profile.log_params, return_inverse=True)[1].ravel()
    if kind == "seeds":
      counts_BxP = _seed_counts(rng, lr_index, resamples)
      losses = _inflated(profile.loss, lr_index)
    else:
      counts_BxP = np.ones((resamples, profile.rows.size))
      losses = isoflop._noise_losses(rng, profile, noise.relative, resamples)
    log_lr_B, _, vertex_loss_B, has_minimum_B, _, _ = isoflop._budget_minima(
        lr_index, profile.log_params, profile.log_tokens, losses, counts_BxP, WINDOW)
    log_lr_BxM[:, m] = np.where(has_minimum_B, log_lr_B + np.log(lr_unit), np.nan)
    loss_BxM[:, m] = np.where(has_minimum_B, vertex_loss_B, np.nan)
  return log_lr_BxM, loss_BxM


def _lr_laws(data: Data, points, lr_M, log_lr_BxM, scale, quantile, warnings):
  """(laws, B x K samples of each) of lr_opt(N,D), where N and D vary independently, and of
  lr_opt(C) with a compute column, through the points `lr_M` selects."""
  laws, samples_of = {}, {}
  mask_BxM = np.isfinite(log_lr_BxM) & lr_M
  n_M = np.array([p["N"] for p in points])
  d_M = np.array([p["D"] for p in points])
  log_lr_M = np.log(np.array([p.get("lr_opt") or np.nan for p in points], dtype=np.float64))
  estimate = _masked_plane(np.log(n_M), np.log(d_M), log_lr_M[None], lr_M[None])[0]
  if np.all(np.isfinite(estimate)) and _varies_independently(np.log(n_M[lr_M]), np.log(d_M[lr_M])):
    theta_BxK = _masked_plane(np.log(n_M), np.log(d_M), log_lr_BxM, mask_BxM)
    laws["lr_opt(N,D)"] = _law(estimate, theta_BxK, ("alpha", "beta"), int(lr_M.sum()), scale,
                               quantile)
    samples_of["lr_opt(N,D)"] = theta_BxK
  else:
    warnings.append("lr_opt(N,D): the bracketed points do not vary N and D independently (one "
                    "horizon, or D ∝ N); only laws of C are fitted")
  if data.c_P is not None:
    c_M = np.array([p["C"] for p in points])
    line = _line(np.log(c_M), log_lr_M, log_lr_BxM, lr_M, mask_BxM)
    if line is not None:  # log lr = log c − alpha·log C
      estimate_line, theta_BxK = line
      theta_BxK[:, 1] *= -1
      laws["lr_opt(C)"] = _law((estimate_line[0], -estimate_line[1]), theta_BxK, ("alpha",),
                               int(lr_M.sum()), scale, quantile)
      samples_of["lr_opt(C)"] = theta_BxK
  return laws, samples_of


def _at_best_batch(data: Data, index_P, points, warnings) -> np.ndarray:
  """M bools: whether a point's batch is its (N, D)'s best, the one whose lowest loss (mean over
  seeds at each LR) is lowest; all True without a batch column. Sets each point's `lr_law_batch`
  (the batch its (N, D)'s LR laws were fitted at) and says so in `warnings`."""
  best_M = np.ones(len(points), bool)
  if data.batch_P is None or np.unique(data.batch_P).size < 2:
    return best_M

  def best_loss(m):
    rows = index_P == m
    lr_index = np.unique(data.lr_P[rows], return_inverse=True)[1].ravel()
    return np.min(np.bincount(lr_index, weights=data.loss_P[rows]) / np.bincount(lr_index))

  by_nd = {}
  for m, point in enumerate(points):
    by_nd.setdefault((point["N"], point["D"]), []).append(m)
  for members in by_nd.values():
    best = min(members, key=best_loss)
    for m in members:
      best_M[m] = m == best
      points[m]["lr_law_batch"] = points[best]["batch_size"]
  warnings.append("lr_opt laws: fitted at each (N, D)'s best batch (lowest loss), the point's "
                  "lr_law_batch; the other batches' lr_opt are reported, not fitted")
  return best_M


def _span(values) -> list[float]:
  return [float(min(values)), float(max(values))]


def _record_ranges(laws, points, lr_M, batch_optima) -> None:
  """laws[form]["range"]: the span of each input the law was fitted through, so that a fitted:
  recipe can flag the runs it extrapolates to."""
  used = [p for p, used in zip(points, lr_M) if used]
  if "lr_opt(N,D)" in laws:
    laws["lr_opt(N,D)"]["range"] = {"N": _span([p["N"] for p in used]),
                                    "D": _span([p["D"] for p in used])}
  if "lr_opt(C)" in laws:
    laws["lr_opt(C)"]["range"] = {"C": _span([p["C"] for p in used])}
  if "batch_opt(C)" in laws:
    laws["batch_opt(C)"]["range"] = {"C": _span([row["C"] for row in batch_optima
                                                 if row["status"] == "ok"])}


def _varies_independently(log_n, log_d) -> bool:
  """Whether D varies apart from N by more than a whole step's rounding: one tokens_per_param
  horizon gives D = ratio·N to within a step, a plane through it is near-singular (exponents
  ±50 on a sweep of D = 20N at 512-token steps), and lr_opt(C) is the law it determines."""
  if np.unique(log_n).size < 2:
    return np.ptp(log_d) > np.log1p(HORIZON_RTOL)
  slope, intercept = np.polyfit(log_n, log_d, 1)
  return np.ptp(log_d - slope * log_n - intercept) > np.log1p(HORIZON_RTOL)


def _interval(samples: dict, estimates: dict, scale: str, quantile: float):
  """summarize_normal in log space (every quantity here is positive); a resample whose vertex
  flew off a flat profile to inf is one the IQR does not see."""
  with np.errstate(over="ignore"):
    samples = {name: np.exp(log_values) for name, log_values in samples.items()}
  return summarize_normal(samples, estimates, positive=tuple(samples), scale=scale,
                          quantile=quantile)


def _line(log_x_M, log_y_M, log_y_BxM, ok_M, mask_BxM):
  """((intercept, slope) of the estimate, B x 2 (log c, slope) over resamples), or None when the
  bracketed points share one x."""
  if np.unique(log_x_M[ok_M]).size < 2:
    return None
  slope, coefficient = approaches.power_law_through(np.exp(log_x_M[ok_M]), np.exp(log_y_M[ok_M]))
  keep_B = (mask_BxM & np.isfinite(log_y_BxM)).sum(axis=1) >= 2
  theta_BxK = np.full((mask_BxM.shape[0], 2), np.nan)
  with np.errstate(all="ignore"):
    slope_B, intercept_B = isoflop._masked_line(log_x_M, np.nan_to_num(log_y_BxM[keep_B]),
                                                mask_BxM[keep_B])
  theta_BxK[keep_B] = np.stack([intercept_B, slope_B], axis=1)
  return (np.log(coefficient), slope), theta_BxK


def _law(estimate, theta_BxK, exponent_names, n_points: int, scale: str, quantile: float) -> dict:
  """A law's report: coefficient, exponents and their 95 % intervals (coefficient in log space)."""
  names = ("coefficient", *exponent_names)
  values = {"coefficient": float(np.exp(estimate[0])),
            **{name: float(v) for name, v in zip(exponent_names, estimate[1:])}}
  finite_B = np.all(np.isfinite(theta_BxK), axis=1)
  with np.errstate(over="ignore"):
    coefficient_B = np.exp(theta_BxK[finite_B, 0])
  samples = {"coefficient": coefficient_B,
             **{name: theta_BxK[finite_B, i + 1] for i, name in enumerate(exponent_names)}}
  _, ci95 = summarize_normal(samples, values, positive=("coefficient",), scale=scale,
                             quantile=quantile)
  return {"coefficient": values["coefficient"],
          "exponents": {name: values[name] for name in exponent_names},
          "ci95": {name: ci95.get(name) for name in names}, "n_points": n_points,
          "resamples_kept": int(finite_B.sum())}


def _batch_law(points, ok_M, loss_BxM, mask_BxM, scale, quantile, warnings):
  """Per (N, C): the best batch, the vertex of a parabola of the LR-optimal loss in log B; then
  batch_opt = c·C^beta through them. Returns (batch_optima rows, (law, B x 2 samples) or None)."""
  keys = {}
  for m, point in enumerate(points):
    if ok_M[m]:
      keys.setdefault((point["N"], point["C"]), []).append(m)
  rows, log_c, log_b_BxH, has_BxH, estimates = [], [], [], [], []
  for (n, c), members in keys.items():
    if len({points[m]["batch_size"] for m in members}) < 3:
      continue
    # in units of the smallest batch, every log B >= 0, as for the LR (see `fit`)
    batches = np.array([points[m]["batch_size"] for m in members])
    unit = float(batches.min())
    log_b = np.log(batches / unit)
    batch_index = np.unique(log_b, return_inverse=True)[1].ravel()
    losses = np.array([points[m]["loss_opt"] for m in members])
    fitted = isoflop.isoflop_profiles(np.zeros(len(members)), np.exp(log_b), np.ones(len(members)),
                                      losses, window=WINDOW, grouped=False)[0]
    row = {"N": n, "C": c, "batch_sizes": int(batch_index.max() + 1)}
    if fitted.skipped:
      row["status"] = fitted.skipped.replace("size", "batch size").replace("log N", "log B")
      warnings.append(f"batch_opt at N={n:.3g}, C={c:.3g}: {row['status']}; left out")
      rows.append(row)
      continue
    row["status"], row["batch_opt"] = "ok", fitted.minimum[0] * unit
    counts_BxK = mask_BxM[:, members].astype(np.float64)
    log_b_B, _, _, has_B, _, _ = isoflop._budget_minima(
        batch_index, log_b, np.zeros(len(members)), np.nan_to_num(loss_BxM[:, members]),
        counts_BxK, WINDOW)
    log_b_B = log_b_B + np.log(unit)
    _, ci = _interval({"batch_opt": log_b_B[has_B]}, {"batch_opt": row["batch_opt"]},
                      scale, quantile)
    row["ci95"] = ci.get("batch_opt")
    rows.append(row)
    log_c.append(np.log(c))
    log_b_BxH.append(np.where(has_B, log_b_B, np.nan))
    has_BxH.append(has_B)
    estimates.append(np.log(row["batch_opt"]))
  if len(log_c) < 2:
    warnings.append(f"batch_opt(C): {len(log_c)} (N, C) groups with a best batch; a law needs 2")
    return rows, None
  log_c_H = np.array(log_c)
  ok_H = np.ones(log_c_H.size, bool)
  line = _line(log_c_H, np.array(estimates), np.array(log_b_BxH).T, ok_H, np.array(has_BxH).T)
  if line is None:
    warnings.append("batch_opt(C): every group with a best batch has the same C; no law")
    return rows, None
  estimate, theta_BxK = line
  return rows, (_law(estimate, theta_BxK, ("beta",), int(log_c_H.size), scale, quantile),
                theta_BxK)


def _predictions(laws, samples_of, compute, params_tokens, scale, quantile) -> list[dict]:
  """lr_opt (and batch_opt) at each --compute C from the laws of C, and at each (N, D) from
  lr_opt(N,D), with intervals from the same resamples."""
  rows = []
  for n, d in params_tokens:
    if "lr_opt(N,D)" not in laws:
      raise InputError("--params/--tokens: no lr_opt(N,D) law was fitted (see its warning)")
    rows.append({"N": n, "D": d, **_predict(laws["lr_opt(N,D)"], samples_of["lr_opt(N,D)"],
                                            "lr_opt", lambda t: t[0] - t[1] * np.log(n)
                                            - t[2] * np.log(d), scale, quantile)})
  for c in compute:
    row = {"C": c}
    for form, name, sign in (("lr_opt(C)", "lr_opt", -1), ("batch_opt(C)", "batch_opt", 1)):
      if form in laws:  # sign: the LR falls with C, the batch rises
        row.update(_predict(laws[form], samples_of[form], name,
                            lambda t, s=sign: t[0] + s * t[1] * np.log(c), scale, quantile))
    if len(row) == 1:
      raise InputError("--compute: no law of C was fitted (the data needs a budget or flops "
                       "column)")
    rows.append(row)
  return rows


def _predict(law, theta_BxK, name, log_value, scale, quantile) -> dict:
  estimate = [np.log(law["coefficient"]), *law["exponents"].values()]
  value = float(np.exp(log_value(estimate)))
  finite_B = np.all(np.isfinite(theta_BxK), axis=1)
  _, ci = _interval({name: log_value(theta_BxK[finite_B].T)}, {name: value}, scale,
                    quantile)
  return {name: value, f"{name}_ci95": ci.get(name)}


def _bootstrap_report(kind, resamples, seed, scale, quantile, noise) -> dict:
  report = {"resamples": resamples, "seed": seed, "scale": scale, "quantile": quantile}
  if kind == "seeds":
    report["kind"] = ("seeds: the replicate runs (seeds) of each point and learning rate drawn "
                      "with replacement, each n runs' spread about their mean widened by "
                      "sqrt(n/(n-1))")
    report["interval"] = (f"estimate ·/ exp(t(0.975, the seeds' pooled df) = {quantile:.3f} × SD "
                          "of the log resamples)")
  else:
    report["kind"] = ("noise: the design kept, each loss redrawn as its point's parabola in log LR "
                      "plus Gaussian noise of sigma, the larger of the seed SD and the residual "
                      "RMS of window-2 parabolas")
    report["interval"] = (f"estimate ·/ exp(t(0.975, sigma_dof) = {quantile:.3f} × IQR/1.349 of "
                          "the log resamples); exponents ± the same in linear space")
    report.update(sigma=noise.sigma, sigma_source=noise.source, sigma_dof=noise.dof)
  return report


def _sweep_plan(path: str) -> tuple[str | None, str | None]:
  """(the named recipe, the FLOP convention) of the sweep at `path` (a sweep directory, or a
  results.csv in one), from its plan.json: what a `fitted:` recipe takes warmup from, and what its
  budgets are counted in. (None, None) where there is no plan."""
  from scaling import rundir, storage

  sweep = rundir.SweepDir(path if storage.is_dir(path) else storage.parent(path))
  if not sweep.has_plan():
    return None, None
  try:
    plan = sweep.read_plan()
  except InputError:
    return None, None
  return plan.recipe_name, plan.flops_convention


# The FLOP convention of each C column of a sweep's results.csv (`budget`: the plan's own).
C_CONVENTIONS = {"flops": "chinchilla", "flops_kaplan": "kaplan"}


def from_args(args) -> dict:
  """`scaling fit --approach hparams`: read the points, fit, and the report (cli.py prints it)."""
  from scaling import checks
  from scaling.fit import points

  lr_column = args.lr_column or "learning_rate"
  batch_column = args.batch_column or "batch_size"
  required = [args.n_column, "tokens", lr_column, args.y]
  optional = ["budget", args.flops_column, "seed"] + ([] if args.batch_column else [batch_column])
  table = points.read(args.data, required + ([batch_column] if args.batch_column else []),
                      optional=optional)
  c_column = next((c for c in ("budget", args.flops_column) if c in table), None)
  params, tokens = args.params or [], args.tokens or []
  if len(params) != len(tokens):
    raise InputError(f"--params and --tokens pair up: got {len(params)} N and {len(tokens)} D")
  for c in [*args.compute, *params, *tokens]:
    checks.number(c, "--compute/--params/--tokens", above=0)
  data = Data(n_P=table[args.n_column], d_P=table["tokens"], lr_P=table[lr_column],
              loss_P=table[args.y], c_P=table.get(c_column) if c_column else None,
              batch_P=table.get(batch_column), seed_P=table.get("seed"))
  recipe, plan_convention = _sweep_plan(args.data)
  # What C counts, so that a fitted: recipe evaluates the laws of C in it (known for a sweep's
  # results; None for a CSV of unknown origin)
  c_convention = (plan_convention if c_column == "budget" else C_CONVENTIONS.get(c_column)
                  ) if plan_convention else None
  report = {"approach": "hparams",
            "inputs": {"N": args.n_column, "D": "tokens", "C": c_column,
                       "C_convention": c_convention, "lr": lr_column,
                       "batch": batch_column if batch_column in table else None, "loss": args.y},
            "recipe": recipe, "window": WINDOW}
  report.update(fit(data, resamples=args.bootstrap or RESAMPLES, seed=args.seed,
                    compute=args.compute, params_tokens=list(zip(params, tokens))))
  return report


def _ci(interval) -> str:
  return f"[{interval[0]:.4g}, {interval[1]:.4g}]" if interval else "-"


def print_report(report: dict) -> None:
  """The points, the laws and the predictions as tables."""
  print(f"hparams fit of {report['data']}: the best learning rate of each point (parabola in log "
        f"LR through the best and its neighbours), then laws through the bracketed ones")
  print(f"{'point':28s}{'runs':>5s}{'LRs':>5s}{'lr_opt':>12s}  {'95% interval':24s}status")
  for p in report["points"]:
    lr = f"{p['lr_opt']:.4g}" if p.get("lr_opt") else "-"
    print(f"{p['name']:28s}{p.get('runs', 0):>5d}{p.get('learning_rates', 0):>5d}{lr:>12s}  "
          f"{_ci(p.get('ci95')):24s}{p['status']}")
  for form, law in report["laws"].items():
    terms = ", ".join(f"{name} {value:.4g} {_ci(law['ci95'].get(name))}"
                      for name, value in law["exponents"].items())
    print(f"{form}: coefficient {law['coefficient']:.4g} {_ci(law['ci95'].get('coefficient'))}, "
          f"{terms} ({law['n_points']} points)")
  for row in report.get("batch_optima", []):
    print(f"batch at N={row['N']:.3g}, C={row['C']:.3g}: "
          + (f"{row['batch_opt']:.4g} {_ci(row.get('ci95'))}" if row["status"] == "ok"
             else row["status"]))
  for row in report["predictions"]:
    where = ", ".join(f"{k} = {row[k]:.4g}" for k in ("N", "D", "C") if k in row)
    values = ", ".join(f"{k} {row[k]:.4g} {_ci(row.get(k + '_ci95'))}"
                       for k in ("lr_opt", "batch_opt") if k in row)
    print(f"at {where}: {values}")
  print(f"bootstrap: {report['bootstrap']['kind']}; {report['bootstrap']['interval']}")

"""Figure (c): the parametric fit's loss over (C, N), its efficient frontier, isoFLOP slices.

Chinchilla Fig. 4 (Hoffmann et al. 2022, Approach 3): contours of the fitted L(N, D) with D = C/f(N)
over compute C and size N, the runs on top coloured by their loss, and the efficient frontier
N_opt(C) (`scaling.fit.allocation`); right, the fit's loss against N at each budget.

C is the FLOP column asked for (the chinchilla convention logged as `flops` by default), so the
tokens a model of size N gets at budget C need its FLOPs per token f(N) in that convention. The
runs give f = flops / tokens at each size; a power law f(N) = k·N^p through them (least squares in
log-log; for these models f is close to proportional to N) carries it across the figure. Its largest
miss on the runs is printed on the figure.
"""

import numpy as np
from matplotlib.cm import ScalarMappable

from scaling.errors import InputError
from scaling.plots import common, runs

GRID = 100
GREEK = {"alpha": "α", "beta": "β", "alpha_N": "α_N", "alpha_D": "α_D"}


def _fitted_law(report, table, n_column):
  """(law name, θ, quoted params): the report's law (any law of (N, D) in `laws.LAWS`, its θ
  from the parameters the report quotes), or Hoffmann's law fitted here."""
  from scaling.fit import laws

  if report is not None:
    law = report.get("law")
    drawable = laws.of_inputs("N", "D")
    if law not in drawable:
      raise InputError(f"the contour figure needs a parametric fit of a law of (N, D) "
                       f"({', '.join(drawable)}), got law {law!r}")
    try:
      theta = laws.theta_of(laws.get(law), report["params"])
    except KeyError as e:
      raise InputError(f"the {law} fit report has no parameter {e}") from None
    return law, theta, report["params"]
  from scaling.fit import optimize  # JAX: only when there is something to fit

  fit = optimize.fit("chinchilla", (table[n_column], table["tokens"]), table["loss"])
  return "chinchilla", np.asarray(fit.theta), {k: float(v) for k, v in fit.params.items()}


def _predict(law_name: str, theta, params, tokens) -> np.ndarray:
  """The law's loss at (N, D) arrays of any shape, computed in float64."""
  from scaling.fit import laws, optimize

  @optimize.float64
  def predict():
    log_x = np.stack([np.log(params).ravel(), np.log(tokens).ravel()], axis=1)
    return np.exp(np.asarray(laws.get(law_name).log_loss(theta, log_x))).reshape(params.shape)

  return predict()


def parametric_contours(path: str, out_dir: str, fit_report=None, *, flops_column: str = "flops",
                        n_column: str = "params", name: str = "parametric_contours") -> list[str]:
  """Figure (c) from a sweep directory (results.csv) or a CSV of points; returns the paths.

  `fit_report`: a parametric report of `scaling fit` (dict or JSON path; its N column wins);
  without one, Hoffmann's law is fitted here (Huber δ = 1e-3, the fitter's defaults).
  """
  from scaling.fit import allocation, laws  # JAX

  runs.check_path(path)
  report = common.load_report(fit_report)
  if report is not None:
    if report.get("approach") != "parametric":
      raise InputError(f"the contour figure needs a parametric fit report, got approach "
                       f"{report.get('approach')!r}")
    n_column = report.get("inputs", {}).get("N", n_column)
  table = runs.final_points(path, [n_column, "tokens", flops_column, "loss"])
  law, theta, quoted = _fitted_law(report, table, n_column)
  params_P, flops_P, loss_P = table[n_column], table[flops_column], table["loss"]
  k, p, miss = allocation.flops_per_token_law(params_P, flops_P, table["tokens"])

  def flops_per_token(n):
    return k * n**p

  # IsoFLOP slices at the sweep's budgets (or at 5 compute values across the runs).
  budget_P = table.get("budget")
  slices_S = (np.unique(budget_P) if budget_P is not None
              else np.geomspace(flops_P.min(), flops_P.max(), 5))
  c_range = np.geomspace(flops_P.min() / 3, flops_P.max() * 30, GRID)
  n_opt, _ = allocation.optimal_allocation(law, theta, np.concatenate([c_range, slices_S]),
                                           flops_per_token=flops_per_token)
  n_opt_M, n_opt_S = n_opt[:GRID], n_opt[GRID:]
  n_lo = min(params_P.min(), n_opt_M.min()) / 2
  n_hi = max(params_P.max(), n_opt_M.max()) * 2
  n_range = np.geomspace(n_lo, n_hi, GRID)
  c_GxG, n_GxG = np.meshgrid(c_range, n_range)
  loss_GxG = _predict(law, theta, n_GxG, c_GxG / flops_per_token(n_GxG))

  figure = common.new_figure(13.0, 5.2)
  contour_ax, slice_ax = figure.subplots(1, 2)
  levels = np.linspace(min(loss_GxG.min(), loss_P.min()), loss_P.max() + 0.3 * np.ptp(loss_P), 15)
  filled = contour_ax.contourf(c_GxG, n_GxG, loss_GxG, levels=levels,
                               cmap=common.LOSS_COLORMAP, extend="max", rasterized=True)
  lines = contour_ax.contour(c_GxG, n_GxG, loss_GxG, levels=levels[::2], colors="black",
                             linewidths=0.5, alpha=0.6)
  contour_ax.clabel(lines, fmt="%.2f", fontsize=7)
  contour_ax.scatter(flops_P, params_P, c=loss_P, cmap=filled.cmap, norm=filled.norm,
                     edgecolors="black", s=30, zorder=3, label="runs (colour: final loss)")
  contour_ax.plot(c_range, n_opt_M, color="tab:blue", lw=2.5, label="efficient frontier N_opt(C)")
  contour_ax.set_xscale("log")
  contour_ax.set_yscale("log")
  common.tidy_log_ticks(contour_ax, "y")
  contour_ax.set_xlabel(common.FLOPS_LABELS.get(flops_column, flops_column))
  contour_ax.set_ylabel(common.PARAMS_LABELS.get(n_column, n_column))
  contour_ax.set_title("IsoLoss contours of the fit", fontsize=10)
  contour_ax.legend(fontsize=8, loc="upper left")
  contour_ax.text(0.99, 0.01, f"D = C / f(N), f(N) = {k:.3g}·N^{p:.3f} FLOPs per token\n"
                  f"(fitted to the runs; worst miss {miss:.1%})", transform=contour_ax.transAxes,
                  ha="right", va="bottom", fontsize=7,
                  bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
  figure.colorbar(filled, ax=contour_ax, pad=0.01, format="%.2f").set_label(
      "fitted loss (nats per token)")

  norm = common.log_norm(slices_S)
  cmap = common.colormap(common.BUDGET_COLORMAP)
  n_slice = np.geomspace(n_lo, n_hi, GRID)
  for c, n_best in zip(slices_S, n_opt_S):
    color = cmap(norm(c))
    slice_ax.plot(n_slice, _predict(law, theta, n_slice, c / flops_per_token(n_slice)),
                  color=color, lw=1.2)
    slice_ax.plot(n_best, _predict(law, theta, np.array([n_best]),
                                   np.array([c / flops_per_token(n_best)]))[0],
                  "D", color=color, mec="black", ms=6, zorder=3)
    if budget_P is not None:
      rows = budget_P == c
      slice_ax.plot(params_P[rows], loss_P[rows], "o", color=color, ms=5)
  slice_ax.plot([], [], "-", color="grey", label="fit at budget C")
  slice_ax.plot([], [], "D", color="grey", mec="black", label="its minimum N_opt(C)")
  if budget_P is not None:
    slice_ax.plot([], [], "o", color="grey", label="runs of that budget")
  slice_ax.set_xscale("log")
  common.tidy_log_ticks(slice_ax, "x")
  slice_ax.set_ylim(loss_P.min() - 0.15 * np.ptp(loss_P), loss_P.max() + 0.3 * np.ptp(loss_P))
  slice_ax.set_xlabel(common.PARAMS_LABELS.get(n_column, n_column))
  slice_ax.set_ylabel("loss (nats per token)")
  slice_ax.set_title("IsoFLOP slices of the fit", fontsize=10)
  slice_ax.legend(fontsize=8, loc="upper left")
  figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=slice_ax, pad=0.01).set_label(
      "budget C (FLOPs)")

  values = [f"{GREEK.get(name, name)} = {value:.3g}{common.interval(report, name)}"
            for name, value in quoted.items()]
  exponents = laws.get(law).exponents
  if exponents is not None:
    a, _ = exponents({name: np.asarray(value) for name, value in quoted.items()})
    values.append(f"a = {float(a):.3f}{common.interval(report, 'a')} (N_opt ∝ C^a)")
  source = "from the fit report" if report is not None else "fitted here, Huber δ = 1e-3"
  intervals = ", [95 % bootstrap interval]" if report and "ci95" in report else ""
  figure.suptitle(f"Parametric fit, Approach 3 (cf. Chinchilla Fig. 4): {laws.get(law).formula}; "
                  f"{source}{intervals}\n" + ",  ".join(values), fontsize=10)
  return common.save(figure, out_dir, name)

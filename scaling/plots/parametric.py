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

import dataclasses
from collections.abc import Callable

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


@dataclasses.dataclass(frozen=True)
class _Surface:
  """The fitted law over the figure's (C, N) grid, and what the two panels draw from it."""

  law: str
  theta: np.ndarray
  flops_per_token: Callable  # f(N) = k·N^p, fitted to the runs
  k: float
  p: float
  miss: float  # f's worst relative miss on the runs
  slices_S: np.ndarray  # the isoFLOP slices' budgets
  n_opt_S: np.ndarray  # N_opt at each slice
  c_range: np.ndarray  # the grid's compute values (G)
  n_opt_M: np.ndarray  # N_opt along c_range: the efficient frontier
  n_range: np.ndarray  # the grid's sizes (G), spanning the runs and the frontier
  loss_GxG: np.ndarray  # the law's loss at (c_range, n_range)

  def loss(self, n, c) -> np.ndarray:
    """The law's loss at sizes `n` trained on budget `c` (D = c / f(n))."""
    return _predict(self.law, self.theta, n, c / self.flops_per_token(n))


def _surface(law: str, theta, table: dict, n_column: str, flops_column: str) -> _Surface:
  """The law over (C, N): slices at the sweep's budgets (or at 5 compute values across the runs),
  the frontier across a compute range three times below the runs to thirty times above."""
  from scaling.fit import allocation  # JAX

  params_P, flops_P = table[n_column], table[flops_column]
  k, p, miss = allocation.flops_per_token_law(params_P, flops_P, table["tokens"])

  def flops_per_token(n):
    return k * n**p

  budget_P = table.get("budget")
  slices_S = (np.unique(budget_P) if budget_P is not None
              else np.geomspace(flops_P.min(), flops_P.max(), 5))
  c_range = np.geomspace(flops_P.min() / 3, flops_P.max() * 30, GRID)
  n_opt, _ = allocation.optimal_allocation(law, theta, np.concatenate([c_range, slices_S]),
                                           flops_per_token=flops_per_token)
  n_opt_M, n_opt_S = n_opt[:GRID], n_opt[GRID:]
  n_range = np.geomspace(min(params_P.min(), n_opt_M.min()) / 2,
                         max(params_P.max(), n_opt_M.max()) * 2, GRID)
  c_GxG, n_GxG = np.meshgrid(c_range, n_range)
  return _Surface(law, theta, flops_per_token, k, p, miss, slices_S, n_opt_S, c_range, n_opt_M,
                  n_range, _predict(law, theta, n_GxG, c_GxG / flops_per_token(n_GxG)))


def _draw_contours(figure, ax, surface: _Surface, table: dict, n_column: str,
                   flops_column: str) -> None:
  """Left panel: isoloss contours of the fit over (C, N), the runs coloured by their loss, the
  efficient frontier, and f(N) with its worst miss."""
  params_P, flops_P, loss_P = table[n_column], table[flops_column], table["loss"]
  c_GxG, n_GxG = np.meshgrid(surface.c_range, surface.n_range)
  loss_GxG = surface.loss_GxG
  levels = np.linspace(min(loss_GxG.min(), loss_P.min()), loss_P.max() + 0.3 * np.ptp(loss_P), 15)
  filled = ax.contourf(c_GxG, n_GxG, loss_GxG, levels=levels, cmap=common.LOSS_COLORMAP,
                       extend="max", rasterized=True)
  lines = ax.contour(c_GxG, n_GxG, loss_GxG, levels=levels[::2], colors="black",
                     linewidths=0.5, alpha=0.6)
  ax.clabel(lines, fmt="%.2f", fontsize=7)
  ax.scatter(flops_P, params_P, c=loss_P, cmap=filled.cmap, norm=filled.norm,
             edgecolors="black", s=30, zorder=3, label="runs (colour: final loss)")
  ax.plot(surface.c_range, surface.n_opt_M, color="tab:blue", lw=2.5,
          label="efficient frontier N_opt(C)")
  ax.set_xscale("log")
  ax.set_yscale("log")
  common.tidy_log_ticks(ax, "y")
  ax.set_xlabel(common.FLOPS_LABELS.get(flops_column, flops_column))
  ax.set_ylabel(common.PARAMS_LABELS.get(n_column, n_column))
  ax.set_title("IsoLoss contours of the fit", fontsize=10)
  ax.legend(fontsize=8, loc="upper left")
  ax.text(0.99, 0.01, f"D = C / f(N), f(N) = {surface.k:.3g}·N^{surface.p:.3f} FLOPs per token\n"
          f"(fitted to the runs; worst miss {surface.miss:.1%})", transform=ax.transAxes,
          ha="right", va="bottom", fontsize=7,
          bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
  figure.colorbar(filled, ax=ax, pad=0.01, format="%.2f").set_label(
      "fitted loss (nats per token)")


def _draw_slices(figure, ax, surface: _Surface, table: dict, n_column: str) -> None:
  """Right panel: the fit's loss against N at each slice's budget, its minimum, and the runs of
  that budget when the points have budgets."""
  params_P, loss_P, budget_P = table[n_column], table["loss"], table.get("budget")
  norm = common.log_norm(surface.slices_S)
  cmap = common.colormap(common.BUDGET_COLORMAP)
  n_slice = np.geomspace(surface.n_range[0], surface.n_range[-1], GRID)
  for c, n_best in zip(surface.slices_S, surface.n_opt_S):
    color = cmap(norm(c))
    ax.plot(n_slice, surface.loss(n_slice, c), color=color, lw=1.2)
    ax.plot(n_best, surface.loss(np.array([n_best]), c)[0], "D", color=color, mec="black", ms=6,
            zorder=3)
    if budget_P is not None:
      rows = budget_P == c
      ax.plot(params_P[rows], loss_P[rows], "o", color=color, ms=5)
  ax.plot([], [], "-", color="grey", label="fit at budget C")
  ax.plot([], [], "D", color="grey", mec="black", label="its minimum N_opt(C)")
  if budget_P is not None:
    ax.plot([], [], "o", color="grey", label="runs of that budget")
  ax.set_xscale("log")
  common.tidy_log_ticks(ax, "x")
  ax.set_ylim(loss_P.min() - 0.15 * np.ptp(loss_P), loss_P.max() + 0.3 * np.ptp(loss_P))
  ax.set_xlabel(common.PARAMS_LABELS.get(n_column, n_column))
  ax.set_ylabel("loss (nats per token)")
  ax.set_title("IsoFLOP slices of the fit", fontsize=10)
  ax.legend(fontsize=8, loc="upper left")
  figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.01).set_label(
      "budget C (FLOPs)")


def _title(law: str, quoted: dict, report) -> str:
  """The law's formula, where its parameters come from, and their values (with intervals)."""
  from scaling.fit import laws

  values = [f"{GREEK.get(name, name)} = {value:.3g}{common.interval(report, name)}"
            for name, value in quoted.items()]
  exponents = laws.get(law).exponents
  if exponents is not None:
    a, _ = exponents({name: np.asarray(value) for name, value in quoted.items()})
    values.append(f"a = {float(a):.3f}{common.interval(report, 'a')} (N_opt ∝ C^a)")
  source = "from the fit report" if report is not None else "fitted here, Huber δ = 1e-3"
  intervals = ", [95 % bootstrap interval]" if report and "ci95" in report else ""
  return (f"Parametric fit, Approach 3 (cf. Chinchilla Fig. 4): {laws.get(law).formula}; "
          f"{source}{intervals}\n" + ",  ".join(values))


def parametric_contours(path: str, out_dir: str, fit_report=None, *, flops_column: str = "flops",
                        n_column: str = "params", name: str = "parametric_contours") -> list[str]:
  """Figure (c) from a sweep directory (results.csv) or a CSV of points; returns the paths.

  `fit_report`: a parametric report of `scaling fit` (dict or JSON path; its N column wins);
  without one, Hoffmann's law is fitted here (Huber δ = 1e-3, the fitter's defaults).
  """
  runs.check_path(path)
  report = common.load_report(fit_report)
  if report is not None:
    if report.get("approach") != "parametric":
      raise InputError(f"the contour figure needs a parametric fit report, got approach "
                       f"{report.get('approach')!r}")
    n_column = report.get("inputs", {}).get("N", n_column)
  table = runs.final_points(path, [n_column, "tokens", flops_column, "loss"])
  law, theta, quoted = _fitted_law(report, table, n_column)
  surface = _surface(law, theta, table, n_column, flops_column)
  figure = common.new_figure(13.0, 5.2)
  contour_ax, slice_ax = figure.subplots(1, 2)
  _draw_contours(figure, contour_ax, surface, table, n_column, flops_column)
  _draw_slices(figure, slice_ax, surface, table, n_column)
  figure.suptitle(_title(law, quoted, report), fontsize=10)
  return common.save(figure, out_dir, name)

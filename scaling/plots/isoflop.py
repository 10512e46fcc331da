"""Figure (b): IsoFLOP profiles, then N_opt(C) and D_opt(C) with power laws (Chinchilla Fig. 3).

Left, each budget's final losses against N with the parabola in log N that Hoffmann et al. 2022
(Approach 2) fit, and its minimum; middle and right, the minima against C with the power laws
N_opt = k_N·C^a and D_opt = k_D·C^b, extrapolated (dashed) beyond the budgets trained. The
parabolas and minima are `scaling.fit.approaches`' own, so the figure shows what `scaling fit
--approach isoflop` fits; a report from it adds its bootstrap intervals of a and b.
"""

import numpy as np
from matplotlib.cm import ScalarMappable

from scaling.errors import InputError
from scaling.fit import approaches, points
from scaling.plots import common, runs

EXTRAPOLATE = 100.0  # the power laws are drawn up to this factor beyond the largest budget


def _check_report(report: dict, optima: approaches.Optima) -> None:
  """A report fitted to other points (another N column or FLOP convention) would mislabel the
  figure: its exponents must be the ones these points give."""
  if report.get("approach") != "isoflop":
    raise InputError(f"the isoFLOP figure needs an isoflop fit report, got approach "
                     f"{report.get('approach')!r}")
  ours = {"a": optima.a, "b": optima.b, "k_N": optima.k_n, "k_D": optima.k_d}
  for name, value in report["params"].items():
    if name in ours and not np.isclose(value, ours[name], rtol=1e-6, atol=1e-12):
      raise InputError(f"the isoflop fit report has {name} = {value:.6g} but these points give "
                       f"{ours[name]:.6g}: fitted with another --n-column or --flops-column?")


def isoflop_figure(budget_P, params_P, tokens_P, loss_P, out_dir: str, *, report=None,
                   name: str = "isoflop", title: str = "",
                   flops_label: str = common.FLOPS_LABELS["flops"],
                   params_label: str = common.PARAMS_LABELS["params"],
                   window: int | None = None, grouped: bool = True) -> list[str]:
  """The three panels from arrays of points (any source: a sweep, a published table).

  `budget_P` groups points into profiles (the nominal budget, or FLOP values grouped within a
  tolerance when `grouped`); it is also the C of each optimum. Points the fit left out (outside
  a budget's window, or a budget without a bracketed minimum) are drawn hollow, for context.
  `window` defaults to the report's, else the fitter's.
  """
  report = common.load_report(report)
  budget_P, params_P, tokens_P, loss_P = (np.asarray(x, dtype=np.float64)
                                          for x in (budget_P, params_P, tokens_P, loss_P))
  if window is None:
    window = (report or {}).get("window", approaches.WINDOW)
  optima = approaches.isoflop(budget_P, params_P, tokens_P, loss_P, window=window, grouped=grouped)
  profiles = [p for p in optima.profiles if not p.skipped]
  if report is not None:
    _check_report(report, optima)

  figure = common.new_figure(15.0, 4.8)
  profile_ax, n_ax, d_ax = figure.subplots(1, 3)
  norm = common.log_norm([p.flops for p in optima.profiles])
  cmap = common.colormap(common.BUDGET_COLORMAP)
  left_out = False
  for profile in optima.profiles:
    color = cmap(norm(profile.flops))
    fitted = profile.fitted if not profile.skipped else np.zeros(profile.loss.size, bool)
    profile_ax.plot(np.exp(profile.log_params[fitted]), profile.loss[fitted], "o", color=color,
                    ms=5)
    profile_ax.plot(np.exp(profile.log_params[~fitted]), profile.loss[~fitted], "o", mfc="none",
                    color=color, ms=5, alpha=0.6)
    left_out |= bool((~fitted).any())
    if profile.skipped:
      continue
    c2 = profile.coefficients[0]
    log_params = profile.log_params[fitted]
    margin = 0.15 * np.ptp(log_params)
    u = np.linspace(log_params.min() - margin, log_params.max() + margin, 100)
    profile_ax.plot(np.exp(u), np.polyval(profile.coefficients, u), color=color, lw=1.2,
                    ls="-" if c2 > 0 else ":")
  for c, n, loss in zip(optima.flops_M, optima.params_M, optima.loss_M):
    profile_ax.plot(n, loss, "D", color=cmap(norm(c)), mec="black", ms=7, zorder=3)
  if left_out:
    profile_ax.plot([], [], "o", mfc="none", color="grey", label="left out of the fit")
    fitted_loss = np.concatenate([p.loss[p.fitted] for p in profiles])
    span = np.ptp(fitted_loss)
    profile_ax.set_ylim(fitted_loss.min() - 0.1 * span, fitted_loss.max() + 0.6 * span)
  profile_ax.plot([], [], "D", color="grey", mec="black", label="parabola minimum (N_opt)")
  profile_ax.plot([], [], "o-", color="grey", label="final loss, parabola in log N")
  profile_ax.set_xscale("log")
  common.tidy_log_ticks(profile_ax, "x")
  profile_ax.set_xlabel(params_label)
  profile_ax.set_ylabel("final loss (nats per token)")
  profile_ax.set_title("IsoFLOP profiles", fontsize=10)
  profile_ax.legend(fontsize=8)
  colorbar = figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=profile_ax, pad=0.01)
  colorbar.set_label("budget C (FLOPs)")

  c_range = np.geomspace(optima.flops_M.min() / 3, optima.flops_M.max() * EXTRAPOLATE, 100)
  trained = c_range <= optima.flops_M.max() * 1.5
  for ax, values, exponent, coefficient, symbol, label in (
      (n_ax, optima.params_M, optima.a, optima.k_n, "a", "N_opt (parameters)"),
      (d_ax, optima.tokens_M, optima.b, optima.k_d, "b", "D_opt (tokens)")):
    fitted = coefficient * c_range**exponent
    ci = common.interval(report, symbol)
    ax.plot(c_range[trained], fitted[trained], color="black", lw=1.5,
            label=f"fit: ∝ C^{symbol}, {symbol} = {exponent:.3f}{ci}")
    ax.plot(c_range[~trained], fitted[~trained], color="black", lw=1.5, ls="--",
            label=f"extrapolated to {EXTRAPOLATE:g}× the largest budget")
    ax.scatter(optima.flops_M, values, c=optima.flops_M, cmap=cmap, norm=norm, marker="D",
               edgecolors="black", s=40, zorder=3, label="isoFLOP minima")
    ax.set_xscale("log")
    ax.set_yscale("log")
    common.tidy_log_ticks(ax, "y")
    ax.set_xlabel(flops_label)
    ax.set_ylabel(label)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
  interval_note = " (95 % bootstrap intervals)" if report and "ci95" in report else ""
  n_ax.set_title(f"Optimal size N_opt(C){interval_note}", fontsize=10)
  d_ax.set_title(f"Optimal tokens D_opt(C){interval_note}", fontsize=10)
  figure.suptitle(title or "IsoFLOP profiles, Hoffmann et al. 2022 Approach 2 (cf. Chinchilla "
                  "Fig. 3)", fontsize=11)
  return common.save(figure, out_dir, name)


def isoflop(path: str, out_dir: str, fit_report=None, *, flops_column: str = "flops",
            n_column: str = "params", name: str = "isoflop") -> list[str]:
  """Figure (b) from a sweep directory (results.csv) or a CSV of points; returns the paths.

  `fit_report`: an isoflop report of `scaling fit` (dict or JSON path) for the intervals of a, b.
  """
  runs.check_path(path)
  table = runs.final_points(path, [n_column, "tokens", flops_column, "loss"])
  budget = table["budget"] if "budget" in table else table[flops_column]
  keep = np.ones(budget.size, bool)
  for flops, sizes in runs.budget_groups(table, n_column, flops_column).items():
    if sizes < 3:  # a budget whose other runs failed or are still to come
      points.warn(f"isoFLOP budget {flops:.4g} has {sizes} model size(s); left out of the figure")
      keep &= budget != flops
  table = {column: values[keep] for column, values in table.items()}
  return isoflop_figure(budget[keep], table[n_column], table["tokens"], table["loss"], out_dir,
                        report=fit_report, name=name, grouped="budget" not in table,
                        flops_label=common.FLOPS_LABELS.get(flops_column, flops_column),
                        params_label=common.PARAMS_LABELS.get(n_column, n_column))

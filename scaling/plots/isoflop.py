"""Figure (b): IsoFLOP profiles, then N_opt(C) and D_opt(C) with power laws (Chinchilla Fig. 3).

Left, each budget's final losses against N with the parabola in log N that Hoffmann et al. 2022
(Approach 2) fit, and its minimum; middle and right, the minima against C with the power laws
N_opt = k_N·C^a and D_opt = k_D·C^b, extrapolated (dashed) beyond the budgets trained. The
parabolas and minima are `scaling.fit.isoflop`'s own, so the figure shows what `scaling fit
--approach isoflop` fits; a report from it adds its bootstrap: the intervals of a and b, of each
budget's minimum (error bars) and of the power laws (bands). Replicate seeds of a size are drawn.
"""

import typing

import numpy as np
from matplotlib.cm import ScalarMappable

from scaling.errors import InputError
from scaling.fit import intervals, points
from scaling.fit import isoflop as isoflop_fit
from scaling.plots import common, runs

EXTRAPOLATE = 100.0  # the power laws are drawn up to this factor beyond the largest budget


def _check_report(report: dict, optima: isoflop_fit.Isoflop) -> None:
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


def _bootstrap(report, points, window: int, grouped: bool, seed_P):
  """The report's own bootstrap, redrawn: the fitter's resamples (same kind, count, seed, window
  and seed column), whose joint (a, k) give the power laws' bands and whose per-budget vertices
  give the minima's intervals. None without a report that has a bootstrap."""
  if not report or "bootstrap" not in report:
    return None
  bootstrap = report["bootstrap"]
  return isoflop_fit.isoflop_bootstrap(
      *points, resamples=bootstrap["resamples"], seed=bootstrap["seed"], window=window,
      grouped=grouped, replicate_P=seed_P, kind=bootstrap["kind"].partition(":")[0])


def _interval(estimate_K, samples_BxK, bootstrap: dict) -> tuple[np.ndarray, np.ndarray]:
  """(lower_K, upper_K): each column's 95 % interval as the fitter computes it for a positive
  quantity (`intervals.summarize_normal`, in log space), with the report's `scale` and `quantile`
  (SD and 1.96 where a report has none); NaN, not drawn, where fewer than 2 samples are finite."""
  lower_K, upper_K = np.full(len(estimate_K), np.nan), np.full(len(estimate_K), np.nan)
  for k, (estimate, samples_B) in enumerate(zip(estimate_K, samples_BxK.T)):
    _, ci95 = intervals.summarize_normal({"x": samples_B}, {"x": estimate}, positive=("x",),
                                         scale=bootstrap.get("scale", "sd"),
                                         quantile=bootstrap.get("quantile", 1.96))
    lower_K[k], upper_K[k] = ci95.get("x", (np.nan, np.nan))
  return lower_K, upper_K


def _replicates(profile, seed_P) -> np.ndarray:
  """Which of a profile's points repeat a size already drawn (another seed of the same size)."""
  if seed_P is None:
    return np.zeros(profile.rows.size, bool)
  first_P = np.zeros(profile.rows.size, bool)
  seen = set()
  for i in np.lexsort((seed_P[profile.rows], profile.log_params)):
    first_P[i] = profile.log_params[i] not in seen
    seen.add(profile.log_params[i])
  return ~first_P


def isoflop_figure(budget_P, params_P, tokens_P, loss_P, out_dir: str, *, report=None,
                   name: str = "isoflop", title: str = "",
                   flops_label: str = common.FLOPS_LABELS["flops"],
                   params_label: str = common.PARAMS_LABELS["params"],
                   window: int | None = None, grouped: bool = True, seed_P=None) -> list[str]:
  """The three panels from arrays of points (any source: a sweep, a published table).

  `budget_P` groups points into profiles (the nominal budget, or FLOP values grouped within a
  tolerance when `grouped`); it is also the C of each optimum. Points the fit left out (outside
  a budget's window, or a budget without a bracketed minimum) are drawn hollow, for context;
  `seed_P` (a seed per point) marks replicate runs of a size, drawn as squares joined to the first
  seed's point. A report with a bootstrap adds each minimum's 95 % interval as error bars and
  the power laws' 95 % bands. `window` defaults to the report's, else the fitter's.
  """
  report = common.load_report(report)
  points_P = tuple(np.asarray(x, dtype=np.float64) for x in (budget_P, params_P, tokens_P, loss_P))
  seed_P = None if seed_P is None else np.asarray(seed_P)
  if window is None:
    window = (report or {}).get("window", isoflop_fit.WINDOW)
  optima = isoflop_fit.isoflop(*points_P, window=window, grouped=grouped)
  if report is not None:
    _check_report(report, optima)
  samples = _bootstrap(report, points_P, window, grouped, seed_P)

  figure = common.new_figure(15.0, 4.8)
  profile_ax, n_ax, d_ax = figure.subplots(1, 3)
  colors = _BudgetColors(common.colormap(common.BUDGET_COLORMAP),
                         common.log_norm([p.flops for p in optima.profiles]))
  _draw_profiles(profile_ax, optima, seed_P, colors, params_label)
  colorbar = figure.colorbar(ScalarMappable(norm=colors.norm, cmap=colors.cmap), ax=profile_ax,
                             pad=0.01)
  colorbar.set_label("budget C (FLOPs)")
  figure.get_layout_engine().set(wspace=0.06)  # the colour bar's label clear of the next panel

  for ax, law in zip((n_ax, d_ax), _laws(optima)):
    _draw_power_law(ax, law, optima, colors, flops_label, report, samples)
  interval_note = ""
  if samples is not None:  # which bootstrap: the noise one redraws losses, the case one runs
    kind = report["bootstrap"]["kind"].partition(":")[0]
    interval_note = f"\n95 % {'noise' if kind == 'noise' else 'case'} bootstrap intervals"
  n_ax.set_title(f"Optimal size N_opt(C){interval_note}", fontsize=10)
  d_ax.set_title(f"Optimal tokens D_opt(C){interval_note}", fontsize=10)
  figure.suptitle(title or "IsoFLOP profiles, Hoffmann et al. 2022 Approach 2 (cf. Chinchilla "
                  "Fig. 3)", fontsize=11)
  return common.save(figure, out_dir, name)


class _BudgetColors(typing.NamedTuple):
  """A budget's colour on every panel: the colour map over log C."""

  cmap: typing.Any
  norm: typing.Any

  def __call__(self, flops: float):
    return self.cmap(self.norm(flops))


def _draw_profiles(ax, optima: isoflop_fit.Isoflop, seed_P, colors: _BudgetColors,
                   params_label: str) -> None:
  """The left panel: every budget's points and parabola, the minima, and a legend with room."""
  left_out = replicated = False
  for profile in optima.profiles:
    fitted = profile.fitted if not profile.skipped else np.zeros(profile.loss.size, bool)
    replicate = _replicates(profile, seed_P)
    _draw_profile(ax, profile, fitted, replicate, colors(profile.flops))
    left_out |= bool((~fitted).any())
    replicated |= bool(replicate.any())
  for c, n, loss in zip(optima.flops_M, optima.params_M, optima.loss_M):
    ax.plot(n, loss, "D", color=colors(c), mec="black", ms=7, zorder=3)
  if left_out:
    ax.plot([], [], "o", mfc="none", color="grey", label="left out of the fit")
  # Room above the highest point (of those fitted: left-out ones may lie far off) for the legend.
  shown_loss = np.concatenate([p.loss[p.fitted] if left_out else p.loss
                               for p in optima.profiles if not p.skipped])
  span = np.ptp(shown_loss)
  ax.set_ylim(shown_loss.min() - 0.1 * span, shown_loss.max() + 0.4 * span)
  ax.plot([], [], "D", color="grey", mec="black", label="parabola minimum (N_opt)")
  ax.plot([], [], "o-", color="grey", label="final loss, parabola in log N")
  if replicated:
    ax.plot([], [], "s-", color="grey", ms=4, lw=0.8,
            label="another seed of the size (line: spread)")
  ax.set_xscale("log")
  common.tidy_log_ticks(ax, "x")
  ax.set_xlabel(params_label)
  ax.set_ylabel("final loss (nats per token)")
  ax.set_title("IsoFLOP profiles", fontsize=10)
  ax.legend(fontsize=8, loc="upper right")


def _draw_profile(ax, profile: isoflop_fit.IsoflopProfile, fitted, replicate, color) -> None:
  """One budget: its points (filled where fitted, squares for another seed of a size), the seeds'
  spread at each replicated size, and its parabola (dotted where it opens downwards)."""
  for marker, shown in (("o", ~replicate), ("s", replicate)):
    ax.plot(np.exp(profile.log_params[fitted & shown]), profile.loss[fitted & shown],
            marker, color=color, ms=5 if marker == "o" else 4, ls="none")
    ax.plot(np.exp(profile.log_params[~fitted & shown]), profile.loss[~fitted & shown],
            marker, mfc="none", color=color, ms=5 if marker == "o" else 4, alpha=0.6, ls="none")
  for log_n in np.unique(profile.log_params[replicate]):
    same = profile.loss[profile.log_params == log_n]
    ax.plot([np.exp(log_n)] * 2, [same.min(), same.max()], color=color, lw=0.8)
  if profile.skipped:
    return
  log_params = profile.log_params[fitted]
  margin = 0.15 * np.ptp(log_params)
  u = np.linspace(log_params.min() - margin, log_params.max() + margin, 100)
  ax.plot(np.exp(u), np.polyval(profile.coefficients, u), color=color, lw=1.2,
          ls="-" if profile.coefficients[0] > 0 else ":")


class _Law(typing.NamedTuple):
  """One power law of the optima, X_opt = coefficient·C^exponent, as its panel names it."""

  key: str  # "N" or "D": the bootstrap's k_N / N_opt_BxM
  symbol: str  # its exponent's name, "a" or "b"
  values_M: np.ndarray
  exponent: float
  coefficient: float
  label: str


def _laws(optima: isoflop_fit.Isoflop) -> tuple[_Law, _Law]:
  return (_Law("N", "a", optima.params_M, optima.a, optima.k_n, "N_opt (parameters)"),
          _Law("D", "b", optima.tokens_M, optima.b, optima.k_d, "D_opt (tokens)"))


def _draw_power_law(ax, law: _Law, optima: isoflop_fit.Isoflop, colors: _BudgetColors,
                    flops_label: str, report, samples) -> None:
  """A right-hand panel: the minima against C and their power law, solid over the budgets
  trained and dashed beyond, with the bootstrap's band and error bars where there is one."""
  c_range = np.geomspace(optima.flops_M.min() / 3, optima.flops_M.max() * EXTRAPOLATE, 100)
  trained = c_range <= optima.flops_M.max() * 1.5
  fitted = law.coefficient * c_range**law.exponent
  ci = common.interval(report, law.symbol)
  ax.plot(c_range[trained], fitted[trained], color="black", lw=1.5,
          label=f"fit: ∝ C^{law.symbol}, {law.symbol} = {law.exponent:.3f}{ci}")
  ax.plot(c_range[~trained], fitted[~trained], color="black", lw=1.5, ls="--",
          label=f"extrapolated to {EXTRAPOLATE:g}× the largest budget")
  if samples is not None:
    fits_BxC = samples[f"k_{law.key}"][:, None] * c_range[None, :] ** samples[law.symbol][:, None]
    ax.fill_between(c_range, *_interval(fitted, fits_BxC, report["bootstrap"]), color="black",
                    alpha=0.12, lw=0, label="95 % band of the power law (bootstrap)")
    # The optima's columns among all budgets (the bootstrap's N_opt_BxM has every budget).
    columns = [m for m, p in enumerate(optima.profiles) if not p.skipped]
    lo_M, hi_M = _interval(law.values_M, samples[f"{law.key}_opt_BxM"][:, columns],
                           report["bootstrap"])
    ax.errorbar(optima.flops_M, law.values_M, yerr=[law.values_M - lo_M, hi_M - law.values_M],
                fmt="none", ecolor="black", elinewidth=1, capsize=3, zorder=2,
                label="95 % interval of each minimum (resamples with one)")
  ax.scatter(optima.flops_M, law.values_M, c=optima.flops_M, cmap=colors.cmap, norm=colors.norm,
             marker="D", edgecolors="black", s=40, zorder=3, label="isoFLOP minima")
  ax.set_xscale("log")
  ax.set_yscale("log")
  common.tidy_log_ticks(ax, "y")
  ax.set_xlabel(flops_label)
  ax.set_ylabel(law.label)
  ax.grid(True, which="both", alpha=0.25)
  ax.legend(fontsize=8, loc="upper left")


def isoflop(path: str, out_dir: str, fit_report=None, *, flops_column: str = "flops",
            n_column: str = "params", name: str = "isoflop") -> list[str]:
  """Figure (b) from a sweep directory (results.csv) or a CSV of points; returns the paths.

  `fit_report`: an isoflop report of `scaling fit` (dict or JSON path) for the intervals of a, b.
  """
  runs.check_path(path)
  table = runs.final_points(path, [n_column, "tokens", flops_column, "loss"], optional=("seed",))
  budget = table["budget"] if "budget" in table else table[flops_column]
  keep = np.ones(budget.size, bool)
  for flops, sizes in runs.budget_groups(table, n_column, flops_column).items():
    if sizes < 3:  # a budget whose other runs failed or are still to come
      points.warn(f"isoFLOP budget {flops:.4g} has {sizes} model size(s); left out of the figure")
      keep &= budget != flops
  table = {column: values[keep] for column, values in table.items()}
  return isoflop_figure(budget[keep], table[n_column], table["tokens"], table["loss"], out_dir,
                        report=fit_report, name=name, grouped="budget" not in table,
                        seed_P=table.get("seed"),
                        flops_label=common.FLOPS_LABELS.get(flops_column, flops_column),
                        params_label=common.PARAMS_LABELS.get(n_column, n_column))

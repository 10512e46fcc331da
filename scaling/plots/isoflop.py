"""Figure (b): IsoFLOP profiles, then N_opt(C) and D_opt(C) with power laws (Chinchilla Fig. 3).

Left, each budget's final losses against N with the parabola in log N that Hoffmann et al. 2022
(Approach 2) fit, and its minimum; middle and right, the minima against C with the power laws
N_opt = k_N·C^a and D_opt = k_D·C^b, extrapolated (dashed) beyond the budgets trained. The
parabolas and minima are `scaling.fit.approaches`' own, so the figure shows what `scaling fit
--approach isoflop` fits; a report from it adds its bootstrap: the intervals of a and b, of each
budget's minimum (error bars) and of the power laws (bands). Replicate seeds of a size are drawn.
"""

import numpy as np
from matplotlib.cm import ScalarMappable

from scaling.errors import InputError
from scaling.fit import approaches, points
from scaling.fit import isoflop as isoflop_fit
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


def _log_interval(estimate, log_samples_BxK, bootstrap: dict):
  """estimate ·/ exp(quantile × spread) per column, NaN samples ignored: the fitter's 95 % interval
  in log space (scaling.fit.intervals.summarize_normal), with the report's `scale` (SD, or
  IQR/1.349) and `quantile` (1.96 where a report has none)."""
  finite_BxK = np.isfinite(log_samples_BxK)
  enough_K = finite_BxK.sum(axis=0) >= 2  # fewer: no interval (NaN, not drawn)
  log_sd = np.full(log_samples_BxK.shape[1], np.nan)
  if bootstrap.get("scale", "sd") == "iqr":
    q1_K, q3_K = np.nanpercentile(log_samples_BxK[:, enough_K], [25, 75], axis=0)
    log_sd[enough_K] = (q3_K - q1_K) / 1.349
  else:
    log_sd[enough_K] = np.nanstd(log_samples_BxK[:, enough_K], axis=0, ddof=1)
  quantile = bootstrap.get("quantile", 1.96)
  return estimate * np.exp(-quantile * log_sd), estimate * np.exp(quantile * log_sd)


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
  budget_P, params_P, tokens_P, loss_P = (np.asarray(x, dtype=np.float64)
                                          for x in (budget_P, params_P, tokens_P, loss_P))
  seed_P = None if seed_P is None else np.asarray(seed_P)
  if window is None:
    window = (report or {}).get("window", isoflop_fit.WINDOW)
  points_P = (budget_P, params_P, tokens_P, loss_P)
  optima = isoflop_fit.isoflop(*points_P, window=window, grouped=grouped)
  profiles = [p for p in optima.profiles if not p.skipped]
  if report is not None:
    _check_report(report, optima)
  samples = _bootstrap(report, points_P, window, grouped, seed_P)

  figure = common.new_figure(15.0, 4.8)
  profile_ax, n_ax, d_ax = figure.subplots(1, 3)
  norm = common.log_norm([p.flops for p in optima.profiles])
  cmap = common.colormap(common.BUDGET_COLORMAP)
  left_out = replicated = False
  for profile in optima.profiles:
    color = cmap(norm(profile.flops))
    fitted = profile.fitted if not profile.skipped else np.zeros(profile.loss.size, bool)
    replicate = _replicates(profile, seed_P)
    for marker, shown in (("o", ~replicate), ("s", replicate)):
      profile_ax.plot(np.exp(profile.log_params[fitted & shown]), profile.loss[fitted & shown],
                      marker, color=color, ms=5 if marker == "o" else 4, ls="none")
      profile_ax.plot(np.exp(profile.log_params[~fitted & shown]), profile.loss[~fitted & shown],
                      marker, mfc="none", color=color, ms=5 if marker == "o" else 4, alpha=0.6,
                      ls="none")
    for log_n in np.unique(profile.log_params[replicate]):  # the seeds' spread at this size
      same = profile.loss[profile.log_params == log_n]
      profile_ax.plot([np.exp(log_n)] * 2, [same.min(), same.max()], color=color, lw=0.8)
    left_out |= bool((~fitted).any())
    replicated |= bool(replicate.any())
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
  # Room above the highest point (of those fitted: left-out ones may lie far off) for the legend.
  shown_loss = np.concatenate([p.loss[p.fitted] if left_out else p.loss for p in profiles])
  span = np.ptp(shown_loss)
  profile_ax.set_ylim(shown_loss.min() - 0.1 * span, shown_loss.max() + 0.4 * span)
  profile_ax.plot([], [], "D", color="grey", mec="black", label="parabola minimum (N_opt)")
  profile_ax.plot([], [], "o-", color="grey", label="final loss, parabola in log N")
  if replicated:
    profile_ax.plot([], [], "s-", color="grey", ms=4, lw=0.8,
                    label="another seed of the size (line: spread)")
  profile_ax.set_xscale("log")
  common.tidy_log_ticks(profile_ax, "x")
  profile_ax.set_xlabel(params_label)
  profile_ax.set_ylabel("final loss (nats per token)")
  profile_ax.set_title("IsoFLOP profiles", fontsize=10)
  profile_ax.legend(fontsize=8, loc="upper right")
  colorbar = figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=profile_ax, pad=0.01)
  colorbar.set_label("budget C (FLOPs)")
  figure.get_layout_engine().set(wspace=0.06)  # the colour bar's label clear of the next panel

  c_range = np.geomspace(optima.flops_M.min() / 3, optima.flops_M.max() * EXTRAPOLATE, 100)
  trained = c_range <= optima.flops_M.max() * 1.5
  # The optima's columns among all budgets (the bootstrap's N_opt_BxM has every budget).
  columns = [m for m, p in enumerate(optima.profiles) if not p.skipped]
  for ax, values, exponent, coefficient, symbol, key, label in (
      (n_ax, optima.params_M, optima.a, optima.k_n, "a", "N", "N_opt (parameters)"),
      (d_ax, optima.tokens_M, optima.b, optima.k_d, "b", "D", "D_opt (tokens)")):
    fitted = coefficient * c_range**exponent
    ci = common.interval(report, symbol)
    ax.plot(c_range[trained], fitted[trained], color="black", lw=1.5,
            label=f"fit: ∝ C^{symbol}, {symbol} = {exponent:.3f}{ci}")
    ax.plot(c_range[~trained], fitted[~trained], color="black", lw=1.5, ls="--",
            label=f"extrapolated to {EXTRAPOLATE:g}× the largest budget")
    if samples is not None:
      log_fits_BxC = (np.log(samples[f"k_{key}"])[:, None]
                      + samples[symbol][:, None] * np.log(c_range)[None, :])
      ax.fill_between(c_range, *_log_interval(fitted, log_fits_BxC, report["bootstrap"]),
                      color="black", alpha=0.12,
                      lw=0, label="95 % band of the power law (bootstrap)")
      lo_M, hi_M = _log_interval(values, np.log(samples[f"{key}_opt_BxM"][:, columns]),
                                 report["bootstrap"])
      ax.errorbar(optima.flops_M, values, yerr=[values - lo_M, hi_M - values], fmt="none",
                  ecolor="black", elinewidth=1, capsize=3, zorder=2,
                  label="95 % interval of each minimum (resamples with one)")
    ax.scatter(optima.flops_M, values, c=optima.flops_M, cmap=cmap, norm=norm, marker="D",
               edgecolors="black", s=40, zorder=3, label="isoFLOP minima")
    ax.set_xscale("log")
    ax.set_yscale("log")
    common.tidy_log_ticks(ax, "y")
    ax.set_xlabel(flops_label)
    ax.set_ylabel(label)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
  interval_note = ""
  if samples is not None:  # which bootstrap: the noise one redraws losses, the case one runs
    kind = report["bootstrap"]["kind"].partition(":")[0]
    interval_note = f"\n95 % {'noise' if kind == 'noise' else 'case'} bootstrap intervals"
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

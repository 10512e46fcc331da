"""The hparams figure: loss against learning rate per point with each vertex, and lr_opt against N
(and C) with the fitted laws and their 95 % bands (docs/fit.md "Hyperparameter laws").

Left: each (N, D[, B]) point's final loss at every LR of its grid, its parabola's vertex with its
interval; unbracketed points are drawn hollow. Middle: the vertices against N with lr_opt(N,D)
along each horizon (tokens per parameter) of the sweep. Right, with a compute column: the vertices
against C with lr_opt(C). Bands are the law's prediction intervals from the fit's own bootstrap.
"""

import numpy as np

from scaling.errors import InputError
from scaling.fit import hparams as hparams_fit
from scaling.fit import points as points_lib
from scaling.plots import common

LR_COLUMN = "learning_rate"


def read(path: str, n_column: str = "params", flops_column: str = "flops",
         lr_column: str = LR_COLUMN) -> hparams_fit.Data:
  table = points_lib.read(path, [n_column, "tokens", lr_column, "loss"],
                          optional=("budget", flops_column, "batch_size", "seed"))
  c_column = next((c for c in ("budget", flops_column) if c in table), None)
  return hparams_fit.Data(n_P=table[n_column], d_P=table["tokens"], lr_P=table[lr_column],
                          loss_P=table["loss"], c_P=table[c_column] if c_column else None,
                          batch_P=table.get("batch_size"), seed_P=table.get("seed"))


def is_hparams(path: str, n_column: str = "params") -> str | None:
  """None when `path` holds an LR grid (some point with 3 or more learning rates), else why not."""
  try:
    data = read(path, n_column)
  except InputError as e:
    return f"no learning-rate grid ({e})"
  keys = np.stack([data.n_P, data.d_P] + ([data.batch_P] if data.batch_P is not None else []), 1)
  _, index_P = np.unique(keys, axis=0, return_inverse=True)
  index_P = index_P.ravel()
  most = max(np.unique(data.lr_P[index_P == m]).size for m in range(int(index_P.max()) + 1))
  return None if most >= 3 else f"every point has {most} learning rate(s); not an hparams sweep"


def hparams(path: str, out_dir: str, fit_report=None, *, n_column: str = "params",
            flops_column: str = "flops", name: str = "hparams") -> list[str]:
  """Draws the figure from a sweep directory or CSV; a `scaling fit --approach hparams` report
  fixes the seed and resamples of the fit drawn (its values are the same fit's)."""
  report = common.load_report(fit_report)
  if report is not None:
    if report.get("approach") != "hparams":
      raise InputError("the hparams figure needs a `scaling fit --approach hparams` report")
    n_column = report.get("inputs", {}).get("N", n_column)
  data = read(path, n_column, flops_column)
  bootstrap = (report or {}).get("bootstrap", {})
  resamples, seed = bootstrap.get("resamples", hparams_fit.RESAMPLES), bootstrap.get("seed", 0)
  fit = hparams_fit.fit(data, resamples=resamples, seed=seed)
  laws = fit["laws"]
  n_grid = np.geomspace(data.n_P.min() / 1.5, data.n_P.max() * 1.5, 40)
  horizons = _horizons(fit["points"])
  by_compute = "lr_opt(C)" in laws
  c_grid = np.geomspace(data.c_P.min() / 1.5, data.c_P.max() * 1.5, 40) if by_compute else ()
  bands = _bands(data, laws, horizons, n_grid, c_grid, resamples, seed)

  figure = common.new_figure(16.0 if by_compute else 11.0, 4.8)
  axes = figure.subplots(1, 3 if by_compute else 2)
  styles = {k: style for k, style in zip(horizons, ("-", "--", ":", "-.") * 4)}
  _draw_loss_curves(axes[0], data, fit["points"], styles)
  ok = [p for p in fit["points"] if p["status"] == "ok"]
  _draw_lr_of_n(axes[1], ok, laws.get("lr_opt(N,D)"), [b for b in bands if "N" in b], styles,
                n_grid.size, common.PARAMS_LABELS.get(n_column, n_column))
  if by_compute:
    _draw_lr_of_c(axes[2], ok, laws["lr_opt(C)"], [b for b in bands if "C" in b],
                  f"compute C ({fit.get('inputs', {}).get('C') or 'budget'} column, FLOPs)")
  return common.save(figure, out_dir, name)


def _bands(data, laws, horizons, n_grid, c_grid, resamples: int, seed: int) -> list[dict]:
  """The laws' predictions with intervals, from the same resamples as the fit, along each
  horizon's D(N) over `n_grid` (horizon by horizon) and over `c_grid`."""
  pairs = ([(n, float(d_of(n))) for d_of in horizons.values() for n in n_grid]
           if "lr_opt(N,D)" in laws else [])
  return hparams_fit.fit(data, resamples=resamples, seed=seed, params_tokens=pairs,
                         compute=c_grid)["predictions"] if pairs or len(c_grid) else []


def _draw_loss_curves(ax, data, points, styles) -> None:
  """Left: each point's loss at every LR of its grid (hollow where unbracketed) and its vertex
  with the vertex's 95 % interval."""
  norm = common.log_norm([p["N"] for p in points])
  cmap = common.colormap(common.SIZE_COLORMAP)
  keys = np.stack([data.n_P, data.d_P] + ([data.batch_P] if data.batch_P is not None else []), 1)
  _, index_P = np.unique(keys, axis=0, return_inverse=True)
  index_P = index_P.ravel()
  for m, point in enumerate(points):
    rows = index_P == m
    order = np.argsort(data.lr_P[rows])
    color = cmap(norm(point["N"]) * 0.85)
    style = styles[point["horizon"]]
    ax.plot(data.lr_P[rows][order], data.loss_P[rows][order], style, marker="o", ms=4,
            color=color, mfc=color if point["status"] == "ok" else "white",
            label=f"{point['name']}" + ("" if point["status"] == "ok" else " (unbracketed)"))
    if point["status"] == "ok":
      lo, hi = point["ci95"] or (point["lr_opt"], point["lr_opt"])
      ax.errorbar([point["lr_opt"]], [point["loss_opt"]], xerr=[[point["lr_opt"] - lo],
                  [hi - point["lr_opt"]]], fmt="*", ms=11, color=color, mec="black", zorder=4)
  ax.set_xscale("log")
  ax.set_xlabel("peak learning rate")
  ax.set_ylabel("final eval loss (nats per token)")
  ax.set_title("loss against LR; ★ the parabola's vertex (95% interval)", fontsize=10)
  ax.legend(fontsize=6, ncol=2)


def _draw_lr_of_n(ax, ok, law, nd_bands, styles, grid_size: int, x_label: str) -> None:
  """Middle: the bracketed vertices against N, one marker per horizon, and lr_opt(N,D) (`law`,
  None when not fitted) along each horizon with its band."""
  for i, (k, style) in enumerate(styles.items()):
    members = [p for p in ok if p["horizon"] == k]
    ax.errorbar([p["N"] for p in members], [p["lr_opt"] for p in members],
                yerr=_bars(members), fmt="o", color="black", mfc="black" if i == 0 else "white",
                label=f"vertices, horizon {k + 1}")
    if law:
      rows = nd_bands[i * grid_size:(i + 1) * grid_size]
      _line_and_band(ax, [b["N"] for b in rows], rows, style, f"lr_opt(N,D) along horizon {k + 1}")
  if law:
    ax.set_title(f"lr_opt = {law['coefficient']:.3g}·N^-α·D^-β: α = "
                 f"{_value(law, 'alpha')}, β = {_value(law, 'beta')}", fontsize=9)
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel(x_label)
  ax.set_ylabel("optimal peak learning rate")
  ax.legend(fontsize=7)


def _draw_lr_of_c(ax, ok, law, c_bands, x_label: str) -> None:
  """Right: the bracketed vertices against C and lr_opt(C) (`law`) with its band."""
  ax.errorbar([p["C"] for p in ok], [p["lr_opt"] for p in ok], yerr=_bars(ok), fmt="o",
              color="black", label="vertices")
  _line_and_band(ax, [b["C"] for b in c_bands], c_bands, "-", "lr_opt(C)")
  ax.set_title(f"lr_opt = {law['coefficient']:.3g}·C^-α: α = {_value(law, 'alpha')}",
               fontsize=9)
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel(x_label)
  ax.legend(fontsize=7)


def _horizons(points) -> dict:
  """Horizon k (the k-th shortest D of each size) -> D(N), a log-log line through its points
  (exact for fixed tokens or tokens per parameter); marks each point with its `horizon`."""
  for point in points:
    same_size = sorted({q["D"] for q in points if q["N"] == point["N"]})
    point["horizon"] = same_size.index(point["D"])
  horizons = {}
  for k in sorted({p["horizon"] for p in points}):
    n, d = zip(*sorted((p["N"], p["D"]) for p in points if p["horizon"] == k))
    if len(set(n)) < 2:
      horizons[k] = lambda _, d=d[0]: d
      continue
    slope, intercept = np.polyfit(np.log(n), np.log(d), 1)
    horizons[k] = lambda x, slope=slope, intercept=intercept: np.exp(intercept + slope * np.log(x))
  return horizons


def _value(law: dict, name: str) -> str:
  lo_hi = law["ci95"].get(name)
  value = law["exponents"][name]
  return f"{value:.3f}" + (f" [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi else "")


def _bars(points) -> np.ndarray:
  lr = np.array([p["lr_opt"] for p in points])
  ci = np.array([p.get("ci95") or (p["lr_opt"], p["lr_opt"]) for p in points]).reshape(-1, 2)
  return np.stack([lr - ci[:, 0], ci[:, 1] - lr])


def _line_and_band(ax, x, rows, style: str, label: str) -> None:
  y = np.array([b["lr_opt"] for b in rows])
  ax.plot(x, y, style, color="tab:red", lw=1.5, label=label)
  ci = [b.get("lr_opt_ci95") for b in rows]
  if all(ci):
    ci = np.array(ci)
    ax.fill_between(x, ci[:, 0], ci[:, 1], color="tab:red", alpha=0.15, lw=0)

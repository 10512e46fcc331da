"""Figure (d): final loss against model size at a fixed number of tokens (Kaplan Fig. 1, right).

Kaplan et al. 2020 fit L(N) = (N_c/N)^α_N to models trained near convergence, N without
embeddings. A ladder sweep trains every size on the same D tokens; each group of runs that share
D (with at least 3 sizes) is one set of points. The line is the law of a `scaling fit --law
power|saturating --x params` report (parametric or frontier) when one is given, with its bootstrap
intervals, else a least-squares line in log-log through each group.
"""

import numpy as np

from scaling.errors import InputError
from scaling.plots import common, runs

MIN_SIZES = 3


def groups(table: dict[str, np.ndarray], n_column: str) -> dict[float, np.ndarray]:
  """Tokens -> row mask, for the token counts shared by at least MIN_SIZES sizes."""
  out = {}
  for tokens in np.unique(table["tokens"]):
    rows = table["tokens"] == tokens
    if np.unique(table[n_column][rows]).size >= MIN_SIZES:
      out[float(tokens)] = rows
  return out


def _report_law(report: dict):
  """(L(N) function, label) of a fit report of a one-input law (`laws.of_inputs("x")`: power,
  saturating, or any law registered with one input), evaluated through the law's own function."""
  from scaling.fit import laws

  name = report.get("law")
  if name not in laws.of_inputs("x") or report.get("approach") not in ("frontier", "parametric"):
    raise InputError(f"the L(N) figure needs a fit report of a one-input law "
                     f"({', '.join(laws.of_inputs('x'))}), got law {name!r}, "
                     f"approach {report.get('approach')!r}")
  law = laws.get(name)
  try:
    theta = laws.theta_of(law, report["params"])
  except KeyError as e:
    raise InputError(f"the {name} fit report has no parameter {e}") from None
  quoted = ", ".join(f"{key} = {value:.3g}{common.interval(report, key)}"
                     for key, value in report["params"].items())
  label = f"fit ({name}): {quoted}"
  return (lambda n: np.exp(np.asarray(law.log_loss(theta, np.log(n)[:, None])))), label


def _least_squares_law(n_P, loss_P):
  """(L(N) function, label) of the least-squares line through log L against log N."""
  slope, log_a = np.polyfit(np.log(n_P), np.log(loss_P), 1)
  alpha = -slope
  label = f"least squares in log-log: α_N = {alpha:.3f}, N_c = {np.exp(log_a / alpha):.3g}"
  return (lambda n: np.exp(log_a) * n**-alpha), label


def model_size(path: str, out_dir: str, fit_report=None, *,
               n_column: str = "params_non_embedding", name: str = "model_size") -> list[str]:
  """L(N) at fixed tokens from a sweep directory (results.csv) or a CSV; returns the paths."""
  runs.check_path(path)
  report = common.load_report(fit_report)
  table = runs.final_points(path, [n_column, "tokens", "loss"])
  by_tokens = groups(table, n_column)
  if not by_tokens:
    raise InputError(f"{path}: no token count shared by {MIN_SIZES} or more model sizes")
  if report is not None and len(by_tokens) > 1:
    raise InputError(f"{path}: a fit report is one law, but the runs have {len(by_tokens)} "
                     "token counts; plot without the report")
  figure = common.new_figure(7.0, 5.0)
  ax = figure.add_subplot()
  cmap = common.colormap(common.SIZE_COLORMAP)
  for i, (tokens, rows) in enumerate(by_tokens.items()):
    color = cmap(i / max(len(by_tokens) - 1, 1) * 0.85) if len(by_tokens) > 1 else "tab:blue"
    n_P, loss_P = table[n_column][rows], table["loss"][rows]
    n_line = np.geomspace(n_P.min() / 2, n_P.max() * 2, 100)
    law, label = _report_law(report) if report is not None else _least_squares_law(n_P, loss_P)
    ax.plot(n_P, loss_P, "o", color=color, mec="black", ms=7, label=f"D = {tokens:.3g} tokens",
            zorder=3)
    ax.plot(n_line, law(n_line), "--", color=color, lw=1.5, label=label)
  ax.set_xscale("log")
  common.log_loss_axis(ax)
  ax.set_xlabel(common.PARAMS_LABELS.get(n_column, n_column))
  ax.set_ylabel("final eval loss (nats per token)")
  ax.legend(fontsize=8)
  ax.set_title("Loss against model size at fixed tokens (cf. Kaplan et al. 2020 Fig. 1 right)",
               fontsize=10)
  return common.save(figure, out_dir, name)

"""Every figure a directory supports: which ones, and drawing them (what `scaling plot` runs).

A sweep directory gets the training curves (when it has run directories), the isoFLOP figure and
the parametric contours (when it has >= 3 budgets with >= 3 sizes each; the contours also accept
>= 3 sizes, >= 3 token counts and >= 10 runs, e.g. a curves sweep), L(N) (when >= 3 sizes
share a token count, e.g. a ladder), and architectures compared by size and along the context
(a shapes sweep whose runs logged eval_loss_by_position), and the LR figure of an hparams sweep (its
points trained at 3 or more learning rates; the loss figures, whose runs would mix LRs, are then
skipped); a run directory gets its training curve.
"""

import numpy as np

from scaling import rundir, storage
from scaling.errors import InputError
from scaling.fit import laws
from scaling.plots import common, context, curves, hparams, isoflop, model_size, parametric, runs

FIGURES = ("training_curves", "isoflop", "parametric_contours", "model_size", "architectures",
           "hparams")
PARAMETRIC_PARAMS = 5  # E, A, B, α, β of Hoffmann et al. 2022 eq. 2
_REPORT_FIGURE = {"isoflop": "isoflop", "parametric": "parametric_contours",
                  "frontier": "model_size", "hparams": "hparams"}


def route_reports(reports) -> dict[str, dict]:
  """Figure name -> the report it draws, by the report's approach (power laws of N: L(N))."""
  routed = {}
  for report in reports:
    loaded = common.load_report(report)
    approach = loaded["approach"]
    if approach == "parametric" and loaded.get("law") in laws.of_inputs("x"):
      approach = "frontier"
    figure = _REPORT_FIGURE.get(approach)
    if figure is None:
      raise InputError(f"{report if isinstance(report, str) else 'a report'}: approach "
                       f"{approach!r} has no figure (isoflop, parametric, frontier, hparams have)")
    if figure in routed:
      raise InputError(f"two fit reports for the {figure} figure")
    routed[figure] = loaded
  return routed


def supported(path: str, *, flops_column: str = "flops", n_column: str = "params",
              size_column: str = "params_non_embedding") -> dict[str, str | None]:
  """Figure name -> None if `path` supports it, else why not (one line)."""
  runs.check_path(path)
  if runs.is_run_dir(path) and not runs.is_sweep_dir(path):
    why = "a run directory holds one training curve; this figure needs a sweep (results.csv)"
    return {"training_curves": None, "isoflop": why, "parametric_contours": why,
            "model_size": why, "architectures": why, "hparams": why}
  reasons = {"training_curves": None if storage.is_dir(path) and runs.run_dirs(path)
             else "no run directories (run.json, metrics.jsonl) to draw curves from"}
  table = runs.final_points(path, [n_column, "tokens", "loss"],
                            optional=(size_column, flops_column))
  if flops_column in table:
    sizes_per_budget = runs.budget_groups(table, n_column, flops_column)
    full = [b for b, sizes in sizes_per_budget.items() if sizes >= 3]
    reasons["isoflop"] = None if len(full) >= 3 else (
        f"{len(full)} budget{'s' if len(full) != 1 else ''} with >= 3 model sizes (of "
        f"{len(sizes_per_budget)}); the power laws through isoFLOP minima need >= 3")
    n_sizes, n_tokens = np.unique(table[n_column]).size, np.unique(table["tokens"]).size
    n_points = table["loss"].size
    enough = min(n_sizes, n_tokens) >= 3 and n_points >= 2 * PARAMETRIC_PARAMS
    reasons["parametric_contours"] = None if len(full) >= 3 or enough else (
        f"{n_points} runs, {n_sizes} model sizes, {n_tokens} token counts; a {PARAMETRIC_PARAMS}-"
        f"parameter law of (N, D) needs >= 3 isoFLOP budgets with >= 3 sizes, or >= 3 sizes, "
        f">= 3 token counts and >= {2 * PARAMETRIC_PARAMS} runs")
  else:
    reasons["isoflop"] = reasons["parametric_contours"] = f"no {flops_column!r} column"
  if size_column not in table:
    reasons["model_size"] = f"no {size_column!r} column"
  else:
    reasons["model_size"] = None if model_size.groups(table, size_column) else (
        f"no token count shared by >= {model_size.MIN_SIZES} model sizes")
  reasons["architectures"] = None if context.shape_runs(path) else "not a sweep of kind shapes"
  reasons["hparams"] = hparams.is_hparams(path, n_column)
  if reasons["hparams"] is None:
    for figure in ("isoflop", "parametric_contours", "model_size"):
      reasons[figure] = "an hparams sweep: its runs differ in learning rate, not only in N and D"
  return reasons


def draw(path: str, out_dir: str | None = None, fit_reports=(), *, flops_column: str = "flops",
         n_column: str | None = None) -> tuple[dict[str, list[str]], dict[str, str]]:
  """Draws every figure `path` supports: ({figure: paths}, {skipped figure: why})."""
  reports = route_reports(fit_reports)
  size_column = n_column or "params_non_embedding"
  n_column = n_column or "params"
  reasons = supported(path, flops_column=flops_column, n_column=n_column, size_column=size_column)
  if out_dir is None:
    base = path if storage.is_dir(path) else storage.parent(path)
    out_dir = storage.join(base, rundir.FIGURES_DIR)
  for figure in reports:
    if reasons[figure]:
      raise InputError(f"a fit report for the {figure} figure, but {path} does not support it: "
                       f"{reasons[figure]}")
  draw_one = {
      "training_curves": lambda: curves.training_curves(
          path, out_dir, flops_column=flops_column, n_column=n_column),
      "isoflop": lambda: isoflop.isoflop(path, out_dir, reports.get("isoflop"),
                                         flops_column=flops_column, n_column=n_column),
      "parametric_contours": lambda: parametric.parametric_contours(
          path, out_dir, reports.get("parametric_contours"), flops_column=flops_column,
          n_column=n_column),
      "model_size": lambda: model_size.model_size(path, out_dir, reports.get("model_size"),
                                                  n_column=size_column),
      "architectures": lambda: context.sweep_architectures(path, out_dir),
      "hparams": lambda: hparams.hparams(path, out_dir, reports.get("hparams"),
                                         n_column=n_column, flops_column=flops_column),
  }
  drawn, skipped = {}, {}
  for figure in FIGURES:
    if reasons[figure]:
      skipped[figure] = reasons[figure]
      continue
    try:
      drawn[figure] = draw_one[figure]()
    except InputError as e:  # the data allow the figure in principle but not in fact
      if figure in reports:
        raise
      skipped[figure] = str(e)
  return drawn, skipped

"""Kaplan et al. 2020 Fig. 7: architectures compared by size, and loss along the context.

Left: final eval loss against non-embedding parameters, one line per architecture (Kaplan found
LSTMs match Transformers when small and fall behind as N grows). Right: the final eval loss at each
token position (`eval_loss_by_position`, logged with `eval_loss_by_position=true`), one line per
run, solid for Transformers: Kaplan found LSTMs stop improving after ~100 tokens of context while
Transformers keep improving along the whole context. A `kind=shapes` sweep directory gets both
panels from its plan's runs, grouped by their `sweep.shapes` entries, and their table.
"""

import csv
import io

import numpy as np

from scaling import rundir, storage
from scaling.errors import InputError
from scaling.plots import common

LINESTYLES = {"transformer": "-", "lstm": "--", "rnn": ":"}
MARKERS = {"transformer": "o", "lstm": "s", "rnn": "^"}
VARIANT_LINESTYLES = ("-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)))  # a labelled variant of a family


def final_by_position(run_dir: str) -> dict:
  """{arch, params_non_embedding, eval_loss, eval_loss_by_position} of a run's last eval row."""
  run_files = rundir.RunDir(run_dir)
  run = run_files.record()
  run.needs("config", "params_non_embedding")
  evals = [row for row in run_files.read_metrics() if "eval_loss_by_position" in row]
  if not evals:
    raise InputError(f"{run_dir}: no eval row with eval_loss_by_position "
                     "(train with --config.eval_loss_by_position=true)")
  return {"name": run_files.name, "arch": run.config["model"]["arch"],
          "params_non_embedding": float(run.params_non_embedding),
          "eval_loss": float(evals[-1]["eval_loss"]),
          "eval_loss_by_position": np.asarray(evals[-1]["eval_loss_by_position"], np.float64)}


def label(shape: str) -> str:
  """What a figure calls a shape's family: 'lstm', 'transformer (position=rotary)'."""
  arch, _, _, *extra = shape.split(":")
  return f"{arch} ({', '.join(extra)})" if extra else arch


def shape_runs(sweep_dir: str) -> dict[str, str]:
  """Run directory -> label of every run of a shapes plan in `sweep_dir` ({} for other plans)."""
  sweep = rundir.SweepDir(sweep_dir)
  if not sweep.has_plan():
    return {}
  return {storage.join(sweep_dir, run["workdir"]): label(run["shape"])
          for run in sweep.read_plan().entries() if run.get("shape")}


# The table's bands of context positions (1-based, inclusive), as in experiments/kaplan_lstm_vs_
# transformer: the first token has no context, and Kaplan's LSTMs level off after ~100 tokens.
BANDS = {"loss_position_1": (1, 1), "loss_positions_2_16": (2, 16),
         "loss_positions_17_64": (17, 64), "loss_positions_65_plus": (65, None)}


def sweep_architectures(sweep_dir: str, out_dir: str, *, bins: int = 24) -> list[str]:
  """Both panels for a shapes sweep, as OUT_DIR/architectures.{png,pdf}, and OUT_DIR/
  architectures.csv: each run's final eval loss, overall and over bands of positions."""
  runs = shape_runs(sweep_dir)
  if not runs:
    raise InputError(f"{sweep_dir}: no plan of kind shapes")
  paths = architectures(list(runs), out_dir, name="architectures", bins=bins,
                        labels=list(runs.values()))
  with io.StringIO(newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["run", "family", "params_non_embedding", "eval_loss", *BANDS])
    for run_dir, family in runs.items():
      final = final_by_position(run_dir)
      loss_L = final["eval_loss_by_position"]
      bands = [loss_L[a - 1:b].mean() if loss_L.size >= a else "" for a, b in BANDS.values()]
      writer.writerow([final["name"], family, int(final["params_non_embedding"]),
                       *(f"{v:.4f}" if isinstance(v, float) else v
                         for v in [final["eval_loss"], *bands])])
    table = storage.join(out_dir, "architectures.csv")
    storage.write_text(table, f.getvalue())
  return [*paths, table]


def log_bins(loss_L: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
  """(positions, losses): the mean loss over `bins` log-spaced bins of positions 1..L (each
  position's mean over the eval batch is noisy; log bins keep the early positions resolved)."""
  position_L = np.arange(1, loss_L.size + 1)
  if bins <= 0 or bins >= loss_L.size:
    return position_L.astype(np.float64), loss_L
  edges = np.unique(np.round(np.geomspace(1, loss_L.size + 1, bins + 1)).astype(int))
  centres = [np.exp(np.log(position_L[a - 1:b - 1]).mean()) for a, b in zip(edges, edges[1:])]
  means = [loss_L[a - 1:b - 1].mean() for a, b in zip(edges, edges[1:])]
  return np.asarray(centres), np.asarray(means)


def architectures(run_dirs: list[str], out_dir: str, *, name: str = "lstm_vs_transformer",
                  bins: int = 24, labels: list[str] | None = None) -> list[str]:
  """Both panels from the given run directories; the right one in `bins` log-spaced position bins
  (0: every position). Runs are grouped into lines by `labels` (default: their architecture)."""
  finals = [final_by_position(d) for d in run_dirs]
  for final, label in zip(finals, labels or [f["arch"] for f in finals]):
    final["label"] = label
  if not finals:
    raise InputError("no runs to draw")
  figure = common.new_figure(12.0, 4.8)
  by_size, by_position = figure.subplots(1, 2)
  sizes = [f["params_non_embedding"] for f in finals]
  norm, cmap = common.log_norm(sizes), common.colormap(common.SIZE_COLORMAP)
  for i, label in enumerate(sorted({f["label"] for f in finals})):
    mine = sorted((f for f in finals if f["label"] == label), key=lambda f: f["params_non_embedding"])
    arch = mine[0]["arch"]
    linestyle = LINESTYLES.get(arch, "-.") if label == arch else VARIANT_LINESTYLES[i % 3]
    by_size.plot([f["params_non_embedding"] for f in mine], [f["eval_loss"] for f in mine],
                 linestyle=linestyle, marker=MARKERS.get(arch, "D"), color="black", mfc="white", label=label)
    for f in mine:
      position_P, loss_P = log_bins(f["eval_loss_by_position"], bins)
      by_position.plot(position_P, loss_P, linestyle=linestyle,
                       color=cmap(norm(f["params_non_embedding"])), lw=1.4,
                       label=f"{label}, N = {f['params_non_embedding']:.2g}")
  by_size.set_xscale("log")
  common.log_loss_axis(by_size)
  by_size.set_xlabel(common.PARAMS_LABELS["params_non_embedding"])
  by_size.set_ylabel("final eval loss (nats per token)")
  by_size.legend()
  by_size.set_title("Loss against size at fixed tokens")
  by_position.set_xscale("log")
  common.log_loss_axis(by_position)
  by_position.set_xlabel("token position in the context")
  by_position.set_ylabel("eval loss at that position (nats per token)")
  by_position.legend(fontsize=7, ncol=2)
  by_position.set_title("Loss along the context (cf. Kaplan et al. 2020 Fig. 7)")
  return common.save(figure, out_dir, name)

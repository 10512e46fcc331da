"""Figure (b), Chinchilla Fig. 3, on public data: Porian et al. 2024's isoFLOP points.

Porian, Wortsman, Jitsev, Schmidt & Carmon 2024 ("Resolving discrepancies in compute-optimal
scaling of language models") released, per training configuration, the loss of each model size at
each budget (flops = 6·n·t). This draws our IsoFLOP figure (parabola per budget, power laws
through the minima) for chosen configurations and prints our exponent a next to the one their
code reports (Akima-interpolated minima, weighted bootstrap: another estimator, so expect small
gaps).

The fit is `scaling fit --approach isoflop`'s own (`scaling.fit.isoflop.isoflop`): per budget,
a parabola through the sizes near the lowest loss (`--window`, the fitter's default; the rest are
drawn hollow), budgets without a bracketed minimum left out. `--csv-dir DIR` also writes each
configuration as a CSV of params, tokens, flops, loss, for `scaling fit --data`.

  python experiments/porian_isoflop/plot_porian.py PATH/derived_isoflop_points.csv \
      [--exponents PATH/derived_exponents.csv] [--out DIR] [--all] [--window K] [--csv-dir DIR]

Without --all, two RefinedWeb configurations: "Reproducing Kaplan et al." and "Optimizer tuning
(no decay)", the two ends of their chain of corrections.
"""

import argparse
import csv
import os
import sys

import numpy as np

from scaling import plots
from scaling.fit import isoflop

KEY = ("source_file", "dataset", "hparams", "warmup", "decay", "param_count", "loss_split")
DEFAULT = {
    ("summary_df", "rw", "base", "long", "kaplan", "kaplan", "train"):
        "Reproducing Kaplan et al.",
    ("summary_df", "rw", "tuned", "short", "const", "standard", "val"):
        "Optimizer tuning (no decay)",
}
COLUMNS = f"{'data':6s}{'configuration':50s}{'budgets':>8s}{'points':>7s}{'our a':>8s}"


def read_rows(path: str) -> list[dict]:
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))


def write_points(path: str, chosen: list[dict]) -> None:
  """One configuration's points as a CSV `scaling fit --data` reads."""
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["params", "tokens", "flops", "loss"])
    writer.writerows([r["n"], r["t"], r["flops"], r["loss"]] for r in chosen)


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("points", help="derived_isoflop_points.csv")
  parser.add_argument("--exponents", help="derived_exponents.csv (their a, for comparison)")
  parser.add_argument("--out", default="runs/porian_isoflop", help="where the figures go")
  parser.add_argument("--all", action="store_true", help="every configuration in the file")
  parser.add_argument("--window", type=int, default=isoflop.WINDOW,
                      help="sizes fitted on each side of a budget's lowest loss (0: all points)")
  parser.add_argument("--csv-dir", help="also write each configuration's points here as a CSV")
  args = parser.parse_args(argv)

  rows = read_rows(args.points)
  labels = dict(DEFAULT)
  theirs = {}
  if args.exponents:
    for row in read_rows(args.exponents):
      key = tuple(row[k] for k in KEY)
      labels.setdefault(key, row["label"])
      theirs[key] = (float(row["a_bs_median_weighted"]), float(row["a_CI95_lo"]),
                     float(row["a_CI95_hi"]))
  configurations = sorted({tuple(r[k] for k in KEY) for r in rows}) if args.all else list(DEFAULT)
  print(f"{COLUMNS}{'their a (95% CI)':>24s}")
  for key in configurations:
    chosen = [r for r in rows if tuple(r[k] for k in KEY) == key]
    budget, n, t, loss = (np.array([float(r[c]) for r in chosen]) for c in ("flops", "n", "t",
                                                                           "loss"))
    label = labels.get(key, "/".join(key))
    name = "porian_" + "_".join(key[1:]) + ("" if key[0] == "summary_df" else f"_{key[0]}")
    if args.csv_dir:
      os.makedirs(args.csv_dir, exist_ok=True)
      write_points(os.path.join(args.csv_dir, f"{name}.csv"), chosen)
    optima = isoflop.isoflop(budget, n, t, loss, window=args.window)
    plots.isoflop_figure(
        budget, n, t, loss, args.out, name=name,
        title=f"Porian et al. 2024 data, {label} ({key[1]}, {key[6]} loss): IsoFLOP profiles, "
              "Approach 2 as Chinchilla Fig. 3",
        flops_label="FLOPs C = 6·N·D (isoFLOP budget)",
        params_label=f"parameters N ({key[5]} count, Porian et al.)", window=args.window)
    published = theirs.get(key)
    their_text = (f"{published[0]:.3f} ({published[1]:.3f}-{published[2]:.3f})" if published
                  else "-")
    fitted = sum(int(p.fitted.sum()) for p in optima.profiles if not p.skipped)
    print(f"{key[1]:6s}{label[:49]:50s}{optima.flops_M.size:>8d}{fitted:>7d}"
          f"{optima.a:>8.3f}{their_text:>24s}")
  print(f"figures in {os.path.abspath(args.out)}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))

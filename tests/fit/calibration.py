"""Calibration of the isoFLOP and parametric intervals on synthetic sweeps of known laws.

Per design: the coverage of the true a by the 95 % interval, its median width, and that width over
3.92 × the estimator's own SD across the sweeps (1 is a calibrated normal interval's width), and
over 3.92 × IQR/1.349 of the estimates (the estimator has heavy tails of its own at shallow
designs: a sweep whose vertex flies off moves its SD). The
table in docs/fit.md is `python tests/fit/calibration.py --seed 123` (`--help` for fewer sweeps,
other kinds, the parametric law's bootstrap); the default suite asserts three designs
(`tests/fit/test_isoflop.py`).

Shapes: P points, M budgets.
"""

import argparse
import sys
import time

import numpy as np

from scaling.errors import InputError
from scaling.fit import bench, intervals, isoflop

HOFFMANN = bench.HOFFMANN
# Besiroglu et al. 2024's refit of Chinchilla (Epoch): Hoffmann's form with other constants.
EPOCH = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}


def true_a(law=HOFFMANN) -> float:
  """N_opt ∝ C^a with a = β/(α+β) (Hoffmann et al. 2022 eq. 4)."""
  return law["beta"] / (law["alpha"] + law["beta"])


def n_opt(flops, law=HOFFMANN):
  """Hoffmann eq. 4 at C = 6ND: N_opt = G·(C/6)^a."""
  g = (law["alpha"] * law["A"] / (law["beta"] * law["B"])) ** (1 / (law["alpha"] + law["beta"]))
  return g * (np.asarray(flops) / 6) ** true_a(law)


def law_loss(params, tokens, law=HOFFMANN):
  return law["E"] + law["A"] / params ** law["alpha"] + law["B"] / tokens ** law["beta"]


def sweep(rng, sigma, budgets=np.geomspace(1e18, 1e21, 7), sizes=9, step=1.6, seeds=1,
          law=HOFFMANN, centre=None):
  """An isoFLOP sweep of `law` at C = 6ND: per budget, `sizes` sizes a factor `step` apart, the
  grid's centre `centre` × N_opt, or (None) offset from N_opt by a random factor up to ± one step
  (real grids are not centred on the unknown optimum), `seeds` replicate runs each (one count,
  or one per budget) with log-normal noise σ. Returns budget, params, tokens, loss, seed (P each)."""
  rows = []
  for c, seeds_of_budget in zip(budgets, np.broadcast_to(seeds, len(budgets))):
    offset = step ** rng.uniform(-1, 1) if centre is None else centre
    for n in n_opt(c, law) * offset * step ** (np.arange(sizes) - (sizes - 1) / 2):
      for seed in range(seeds_of_budget):
        rows.append((c, n, c / (6 * n), law_loss(n, c / (6 * n), law)
                     * np.exp(sigma * rng.standard_normal()), seed))
  return [np.array(x) for x in zip(*rows)]


# `scaling demo`'s design: 4 budgets over 1.5 decades, 5 sizes spanning a factor 8 (size_span),
# every size under 2 seeds. Its σ, 0.42 %, puts the profiles ≈ 9 σ deep, as the demo's own runs
# are (docs/fit.md).
DEMO = {"budgets": np.geomspace(1e18, 10**19.5, 4), "sizes": 5, "step": 8 ** (1 / 4), "seeds": 2}
# experiments/chinchilla_isoflop/cpu.py: the demo's recipe at 8 budgets over 1.85 decades,
# spaced as its budgets 5e10-3.5e12 are.
EIGHT_BUDGETS = {**DEMO, "budgets": 1e18 * np.array([5e10, 1.1e11, 1.6e11, 3.5e11, 5e11, 1.1e12,
                                                    1.6e12, 3.5e12]) / 5e10}
# Issue 31's study: Hoffmann's form with Epoch's constants, 5 budgets over 2 decades, 6 sizes a
# factor 1.5 apart centred 1.3× above the true optimum (a guess), 2 seeds, 0.5 % noise.
TWO_DECADES = {"budgets": np.geomspace(1e18, 1e20, 5), "sizes": 6, "step": 1.5, "seeds": 2,
               "law": EPOCH, "centre": 1.3}
DESIGNS = {
    "demo: 4 budgets over 1.5 decades, 5 sizes × 8^(1/4), 2 seeds, σ 0.42 %": (DEMO, 0.0042),
    "8 budgets over 1.85 decades (experiments/chinchilla_isoflop), 5 sizes, 2 seeds, σ 0.42 %":
        (EIGHT_BUDGETS, 0.0042),
    "9 sizes × 1.6, 7 budgets 1e18-1e21, 1 seed, σ 0.5 %": ({}, 0.005),
    "2 decades, 5 budgets, 6 sizes × 1.5 centred 1.3× N_opt, 2 seeds, Epoch's law, σ 0.5 %":
        (TWO_DECADES, 0.005),
    "the same centred 0.7× N_opt": ({**TWO_DECADES, "centre": 0.7}, 0.005),
    "the same centred on N_opt, 1 seed": ({**TWO_DECADES, "centre": 1.0, "seeds": 1}, 0.005),
    "demo with 1 seed": ({**DEMO, "seeds": 1}, 0.0042),
}


def isoflop_coverage(design: dict, sigma: float, sweeps: int, kind: str = isoflop.DEFAULT_KIND,
                     resamples: int = 200, seed: int = 0, scale: str | None = None) -> dict:
  """The isoFLOP bootstrap of `kind` on `sweeps` synthetic sweeps: the share of 95 % intervals
  (as `scaling fit` makes them, or with another `scale`) that contain the true a and b, a's interval widths, and the
  estimates of a; a sweep with fewer than 2 budgets that have a minimum has no estimate (`failed`)."""
  rng = np.random.default_rng(seed)
  law = design.get("law", HOFFMANN)
  truth = {"a": true_a(law), "b": 1 - true_a(law)}
  covered, widths, estimates, failed = {"a": 0, "b": 0}, [], [], 0
  for i in range(sweeps):
    budgets, params, tokens, loss, replicate = sweep(rng, sigma, **design)
    try:
      optima = isoflop.isoflop(budgets, params, tokens, loss, quiet=True)
    except InputError:
      failed += 1
      continue
    samples = isoflop.isoflop_bootstrap(budgets, params, tokens, loss, resamples=resamples,
                                        seed=i, replicate_P=replicate, kind=kind)
    dof = isoflop.run_noise(list(optima.profiles)).dof if kind == "noise" else 0
    _, ci95 = intervals.summarize_normal({"a": samples["a"], "b": samples["b"]},
                                         {"a": optima.a, "b": optima.b},
                                         scale=scale or isoflop.INTERVAL_SCALE[kind],
                                         quantile=isoflop.interval_quantile(kind, dof))
    for name in covered:
      covered[name] += ci95[name][0] <= truth[name] <= ci95[name][1]
    widths.append(ci95["a"][1] - ci95["a"][0])
    estimates.append(optima.a)
  return summary(covered, widths, estimates, failed)


def parametric_coverage(design: dict, sigma: float, sweeps: int, resamples: int = 100,
                        seed: int = 0) -> dict:
  """Approach 3 as `scaling fit --bootstrap` runs it on the same sweeps: Hoffmann's law fitted to
  every run (replicate seeds as independent points), a = β/(α+β) over the case resamples of the
  points, 95 % percentile interval."""
  from scaling.fit import allocation, bootstrap, optimize

  rng = np.random.default_rng(seed)
  law = design.get("law", HOFFMANN)
  truth = {"a": true_a(law), "b": 1 - true_a(law)}
  covered, widths, estimates = {"a": 0, "b": 0}, [], []
  for i in range(sweeps):
    _, params, tokens, loss, _ = sweep(rng, sigma, **design)
    fit = optimize.fit("chinchilla", (params, tokens), loss)
    refits = bootstrap.bootstrap(fit, (params, tokens), loss, resamples=resamples, seed=i)
    samples = allocation.quantities("chinchilla", refits.theta_BxT[refits.converged_B])
    _, ci95 = intervals.summarize({"a": samples["a"], "b": samples["b"]})
    for name in covered:
      covered[name] += ci95[name][0] <= truth[name] <= ci95[name][1]
    widths.append(ci95["a"][1] - ci95["a"][0])
    estimates.append(float(allocation.quantities("chinchilla", fit.theta)["a"]))
  return summary(covered, widths, estimates, 0)


def summary(covered, widths, estimates, failed) -> dict:
  estimated = len(estimates)
  sd, robust_sd = (intervals.spread(estimates, scale) for scale in ("sd", "iqr"))
  return {"a": covered["a"] / estimated, "b": covered["b"] / estimated,
          "median_width": float(np.median(widths)), "estimator_sd": sd,
          "width_ratio": float(np.median(widths)) / (3.92 * sd), "widths": np.array(widths),
          "width_ratio_iqr": float(np.median(widths)) / (3.92 * robust_sd),
          "mean_a": float(np.mean(estimates)), "failed": failed, "sweeps": estimated + failed}


def main(argv) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--sweeps", type=int, default=400)
  parser.add_argument("--resamples", type=int, default=200)
  parser.add_argument("--kinds", nargs="+", default=[isoflop.DEFAULT_KIND],
                      choices=isoflop.BOOTSTRAP_KINDS + ("parametric",))
  parser.add_argument("--scale", choices=intervals.SCALES,
                      help="the isoFLOP interval's spread (default: the kind's, as scaling fit)")
  parser.add_argument("--designs", nargs="+", type=int, help="indices into DESIGNS (default all)")
  parser.add_argument("--seed", type=int, default=123)
  args = parser.parse_args(argv)
  print("| design | interval × resamples | sweeps | a covered | b covered | median width of a's "
        "interval | 3.92 × estimator SD | width / (3.92 SD) | width / (3.92 IQR/1.349) | mean a (true) |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  labels = list(DESIGNS)
  for index in args.designs if args.designs is not None else range(len(labels)):
    design, sigma = DESIGNS[labels[index]]
    for kind in args.kinds:
      started = time.perf_counter()
      if kind == "parametric":
        row = parametric_coverage(design, sigma, args.sweeps, args.resamples, args.seed)
      else:
        row = isoflop_coverage(design, sigma, args.sweeps, kind, args.resamples, args.seed,
                               args.scale)
      failed = f" ({row['failed']} without an estimate)" if row["failed"] else ""
      scale = {"parametric": "", "cases": ", 1.96·SD"}.get(
          kind, f", t·{(args.scale or isoflop.INTERVAL_SCALE[kind]).upper()}")
      print(f"| {labels[index]} | {kind}{scale} × {args.resamples} | {row['sweeps']}{failed} | "
            f"{100 * row['a']:.1f} % | {100 * row['b']:.1f} % | {row['median_width']:.3f} | "
            f"{3.92 * row['estimator_sd']:.3f} | {row['width_ratio']:.2f} | "
            f"{row['width_ratio_iqr']:.2f} | {row['mean_a']:.4f} "
            f"({true_a(design.get('law', HOFFMANN)):.4f}) |", flush=True)
      print(f"  ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)


if __name__ == "__main__":
  main(sys.argv[1:])

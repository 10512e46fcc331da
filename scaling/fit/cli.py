"""`scaling fit`: turn (params, tokens, loss) points into a law, a table and a JSON report.

  scaling fit --data POINTS.csv|RUN_DIR|SWEEP_DIR [--law chinchilla|kaplan|power|saturating]
      [--approach parametric|isoflop|envelope|frontier] [--huber-delta 1e-3 | --least-squares]
      [--bootstrap N] [--seed S] [--compute C ...] [--out fit.json]

Bad input raises InputError; `run` turns it into one `error: ...` line on stderr and exit 2.
"""

import json
import os
import sys

import numpy as np

from scaling import rundir
from scaling.errors import ArgumentParser, InputError
from scaling.fit import approaches, points

_CACHE_ENV = "SCALING_FIT_CACHE"


def _parser() -> ArgumentParser:
  parser = ArgumentParser(prog="scaling fit", description=__doc__.split("\n\n")[0])
  parser.add_argument("--data", required=True,
                      help="a CSV of points, a run directory or a sweep directory")
  parser.add_argument("--law", default="chinchilla",
                      choices=("chinchilla", "kaplan", "power", "saturating"))
  parser.add_argument("--approach", default="parametric",
                      choices=("parametric", "isoflop", "envelope", "frontier"),
                      help="Hoffmann et al. 2022's approaches 3, 2 and 1, or a Kaplan-style law "
                           "through the loss frontier of one input (--x)")
  parser.add_argument("--x", default="params", choices=("params", "tokens", "flops"),
                      help="the input of the one-input laws power and saturating")
  parser.add_argument("--n-column", default="params", choices=("params", "params_non_embedding"),
                      help="N: all parameters (Hoffmann) or non-embedding ones (Kaplan)")
  parser.add_argument("--flops-column", default="flops", choices=("flops", "flops_kaplan"),
                      help="the FLOP convention for C (isoflop, envelope, --x flops)")
  parser.add_argument("--huber-delta", type=float, default=1e-3)
  parser.add_argument("--least-squares", action="store_true",
                      help="fit least squares on log residuals instead of the Huber loss")
  parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                      help="resamples for standard errors and 95%% intervals (0: none)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--compute", type=float, nargs="+", default=[], metavar="C",
                      help="budgets in FLOPs (C = 6ND) for N_opt, D_opt, tokens per parameter")
  parser.add_argument("--all-starts", action="store_true",
                      help="polish every start of the grid, not only the best screened ones")
  parser.add_argument("--out", help="write the report as JSON here")
  return parser


def _use_compilation_cache() -> None:
  """Persists compiled solvers across processes, so a repeated `scaling fit` skips XLA compilation.

  $SCALING_FIT_CACHE picks the directory ("off" disables); a cache the user configured is kept.
  """
  import jax

  path = os.environ.get(_CACHE_ENV, os.path.join(os.path.expanduser("~"), ".cache", "scaling", "jax"))
  if path.lower() in ("", "off") or jax.config.jax_compilation_cache_dir is not None:
    return
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _x_column(args, name: str) -> str:
  """The data column behind a law input: N, D, or the one-input laws' x."""
  return {"N": args.n_column, "D": "tokens",
          "x": {"params": args.n_column, "tokens": "tokens", "flops": args.flops_column}[args.x]}[name]


def _law_fit(args, law, columns: list[str], table: dict, mask=None) -> dict:
  """Approach 3 (or a frontier fit): the law's fit, bootstrap and allocation, as a report."""
  # Deferred so that the isoflop and envelope approaches (numpy only) never import JAX.
  from scaling.fit import allocation, bootstrap, optimize

  if args.compute and law.inputs != ("N", "D"):
    raise InputError(f"--compute needs a law of (N, D); {law.name} has input {law.inputs}")
  budgets = args.compute
  mask = np.ones(table["loss"].size, bool) if mask is None else mask
  inputs = [table[c][mask] for c in columns]
  loss = table["loss"][mask]
  delta = None if args.least_squares else args.huber_delta
  result = optimize.fit(law, inputs, loss, delta=delta,
                        polished_starts=None if args.all_starts else optimize.LANES)
  estimate = allocation.quantities(law, result.theta, budgets)
  report = {
      "law": law.name, "approach": args.approach, "formula": law.formula,
      "inputs": dict(zip(law.inputs, columns)),
      "loss": "least_squares" if delta is None else "huber", "huber_delta": delta,
      "params": dict(result.params), "objective": result.objective, "n_points": result.n_points,
      "starts": result.starts, "starts_polished": result.starts_polished,
      "starts_at_best": result.starts_at_best, "converged": result.converged,
  }
  if law.exponents is not None:
    report["a"], report["b"] = float(estimate["a"]), float(estimate["b"])
  if budgets:
    report["allocation"] = [
        {"flops": c, "N_opt": float(estimate[f"N_opt@{c:.3g}"]),
         "D_opt": float(estimate[f"D_opt@{c:.3g}"]),
         "tokens_per_param": float(estimate[f"tokens_per_param@{c:.3g}"])} for c in budgets]
  if args.bootstrap:
    refits = bootstrap.bootstrap(result, inputs, loss, resamples=args.bootstrap, seed=args.seed)
    samples = allocation.quantities(law, refits.theta_BxT[refits.converged_B], budgets)
    report["stderr"], report["ci95"] = bootstrap.summarize(samples)
    report["bootstrap"] = {"resamples": refits.resamples, "converged": int(refits.converged_B.sum()),
                           "seed": args.seed}
  return report


def _optima_report(args, optima: approaches.Optima, n_points: int) -> dict:
  """Approaches 1 and 2: power laws through compute-optimal points. They are closed-form least
  squares, so the multi-start fields of the schema are null."""
  return {
      "law": "power", "approach": args.approach,
      "params": {"a": optima.a, "b": optima.b, "k_N": optima.k_n, "k_D": optima.k_d},
      "a": optima.a, "b": optima.b, "n_points": n_points,
      "objective": None, "starts": None, "starts_at_best": None,
      "optima": [{"flops": float(c), "N_opt": float(n), "D_opt": float(d), "loss": float(l)}
                 for c, n, d, l in zip(optima.flops_M, optima.params_M, optima.tokens_M,
                                       optima.loss_M)],
  }


def _isoflop(args) -> dict:
  columns = [args.n_column, "tokens", args.flops_column, "loss"]
  table = points.read(args.data, columns, optional=("budget",))
  # A sweep's nominal budget groups its runs; their real FLOPs differ by step rounding.
  budget = table["budget"] if "budget" in table else table[args.flops_column]
  point_arrays = (budget, table[args.n_column], table["tokens"], table["loss"])
  report = _optima_report(args, approaches.isoflop(*point_arrays), table["loss"].size)
  if args.bootstrap:
    from scaling.fit.bootstrap import summarize

    samples = approaches.isoflop_bootstrap(*point_arrays, resamples=args.bootstrap, seed=args.seed)
    report["stderr"], report["ci95"] = summarize(samples)
    report["bootstrap"] = {"resamples": args.bootstrap, "kept": int(samples["a"].size),
                           "seed": args.seed, "kind": "residual, within each budget"}
  return report


def _envelope(args) -> dict:
  columns = [args.n_column, "tokens", args.flops_column, "loss"]
  table = points.read(args.data, columns, curves=True)
  optima = approaches.envelope(table["run"], table[args.flops_column], table[args.n_column],
                               table["tokens"], table["loss"])
  return _optima_report(args, optima, table["loss"].size)


def _format(value) -> str:
  return f"{value:.6g}"


def _print_report(report: dict, source: str) -> None:
  approach = report["approach"]
  print(f"{report['law']} law, {approach} fit to {report['n_points']} points of {source}")
  if "formula" in report:
    print(report["formula"])
  if report["objective"] is not None:
    loss = ("least squares" if report["loss"] == "least_squares"
            else f"Huber δ = {report['huber_delta']:g}")
    print(f"objective {report['objective']:.10g} ({loss}); starts: {report['starts']} screened, "
          f"{report['starts_polished']} polished, {report['starts_at_best']} reached the best"
          f"{'' if report['converged'] else '; the best start did NOT converge'}")
  names = list(report["params"]) + [n for n in ("a", "b") if n in report and n not in report["params"]]
  values = {**report["params"], **{n: report[n] for n in ("a", "b") if n in report}}
  stderr, ci95 = report.get("stderr", {}), report.get("ci95", {})
  print(f"{'':20s}{'value':>14s}" + (f"{'stderr':>14s}   95% interval" if stderr else ""))
  for name in names:
    line = f"{name:20s}{_format(values[name]):>14s}"
    if name in stderr:
      line += f"{_format(stderr[name]):>14s}   [{_format(ci95[name][0])}, {_format(ci95[name][1])}]"
    print(line)
  if "a" in report:
    print("(N_opt ∝ C^a, D_opt ∝ C^b)")
  for row in report.get("allocation", []):
    c = row["flops"]
    print(f"at C = {c:.4g} FLOPs:")
    for key in ("N_opt", "D_opt", "tokens_per_param"):
      line = f"  {key:18s}{_format(row[key]):>14s}"
      name = f"{key}@{c:.3g}"
      if name in stderr:
        line += f"{_format(stderr[name]):>14s}   [{_format(ci95[name][0])}, {_format(ci95[name][1])}]"
      print(line)
  if approach == "isoflop":
    print(f"{'budget (FLOPs)':>16s}{'N_opt':>14s}{'D_opt':>14s}{'loss':>10s}")
    for row in report["optima"]:
      print(f"{row['flops']:>16.4g}{row['N_opt']:>14.4g}{row['D_opt']:>14.4g}{row['loss']:>10.4f}")
  if approach == "envelope":
    optima = report["optima"]
    print(f"{len(optima)} FLOP values from {optima[0]['flops']:.3g} to {optima[-1]['flops']:.3g}; "
          f"winning sizes from {min(r['N_opt'] for r in optima):.3g} to "
          f"{max(r['N_opt'] for r in optima):.3g}")
  if "bootstrap" in report:
    print(f"bootstrap: {json.dumps(report['bootstrap'])}")


def main(argv: list[str]) -> int:
  args = _parser().parse_args(argv)
  if args.bootstrap < 0 or args.bootstrap == 1:
    raise InputError(f"--bootstrap must be 0 (none) or at least 2, got {args.bootstrap}")
  if args.compute and args.approach != "parametric":
    raise InputError("--compute needs --approach parametric (a fitted law of N and D)")
  if args.approach == "isoflop":
    report = _isoflop(args)
  elif args.approach == "envelope":
    report = _envelope(args)
  else:
    _use_compilation_cache()
    from scaling.fit import laws  # deferred with the solver: it imports JAX

    law = laws.get(args.law)
    if args.approach == "frontier" and law.inputs != ("x",):
      raise InputError(f"--approach frontier fits a law of one input (--law power or saturating), "
                       f"not {law.name}")
    columns = [_x_column(args, name) for name in law.inputs]
    table = points.read(args.data, columns + ["loss"])
    mask = None
    if args.approach == "frontier":
      mask = approaches.frontier_mask(table[columns[0]], table["loss"])
    report = _law_fit(args, law, columns, table, mask)
    if mask is not None:
      report["frontier_points"] = int(mask.sum())
  report["data"] = args.data
  _print_report(report, args.data)
  if args.out:
    try:
      rundir.write_text(args.out, json.dumps(report, indent=2) + "\n")
    except OSError as e:
      raise InputError(f"--out {args.out}: {e.strerror or e}") from None
  return 0


def run(entry_point, argv: list[str]) -> int:
  """Runs a CLI entry point: bad input becomes one `error: ...` line on stderr and exit status 2."""
  try:
    return entry_point(argv)
  except InputError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(run(main, sys.argv[1:]))

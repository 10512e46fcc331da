"""`scaling fit`: turn (params, tokens, loss) points into a law, a table and a JSON report.

  scaling fit --data POINTS.csv|RUN_DIR|SWEEP_DIR [--approach parametric|isoflop|envelope|frontier|hparams]
      [--law LAW (a name in laws.LAWS)] [--huber-delta 1e-3 | --least-squares]
      [--window K] [--budget-rtol R] [--bootstrap N [--bootstrap-kind cases|noise]] [--seed S]
      [--compute C ... [--flops-per-token K]]
      [--fix NAME=VALUE ...]
      [--lr-column NAME] [--batch-column NAME] [--params N --tokens D]   (hparams)
      [--out fit.json]

An option that does not apply to the approach or law asked for is refused, not ignored. This
module parses and checks the arguments and prints the report; `report.py` builds it.

Bad input raises InputError; `run` (scaling/cli.py's, for `scaling fit` and `python -m
scaling.fit.cli` alike) turns it into one `error: ...` line on stderr and exit 2.
"""

import json
import os
import sys

import numpy as np

from scaling import checks, rundir, storage
from scaling.cli import run
from scaling.errors import ArgumentParser, InputError
from scaling.fit import isoflop, laws, points
from scaling.fit import report as fit_report

_CACHE_ENV = "SCALING_FIT_CACHE"


def _parser() -> ArgumentParser:
  # Options default to None so that one given where it does not apply can be refused.
  parser = ArgumentParser(prog="scaling fit", description=__doc__.split("\n\n")[0])
  parser.add_argument("--data", required=True,
                      help="a CSV of points, a run directory or a sweep directory")
  one_input = laws.of_inputs("x")
  parser.add_argument("--law", choices=tuple(laws.LAWS),
                      help=f"the law of parametric and frontier fits (default chinchilla; "
                           f"{' or '.join(one_input)} for the frontier)")
  parser.add_argument("--approach", default="parametric",
                      choices=("parametric", "isoflop", "envelope", "frontier", "hparams"),
                      help="Hoffmann et al. 2022's approaches 3, 2 and 1, a Kaplan-style law "
                           "through the loss frontier of one input (--x), or the learning-rate "
                           "(and batch) laws of an hparams sweep")
  parser.add_argument("--y", default="loss", choices=("loss", "bpb"),
                      help="what is fitted: the eval loss in nats per token (the default), or "
                           "bits per byte (results.csv's bpb, runs' eval_bpb), which compares "
                           "across tokenizers")
  parser.add_argument("--x", choices=("params", "tokens", "flops"),
                      help=f"the input of the one-input laws {' and '.join(one_input)} "
                           f"(default params)")
  parser.add_argument("--n-column", choices=("params", "params_non_embedding"),
                      help="N: all parameters (Hoffmann; the default) or non-embedding ones (Kaplan)")
  parser.add_argument("--flops-column", choices=("flops", "flops_kaplan"),
                      help="the FLOP column and so the convention of C (isoflop, envelope, "
                           "--x flops, --compute); default flops")
  parser.add_argument("--huber-delta", type=float)
  parser.add_argument("--least-squares", action="store_true",
                      help="fit least squares on log residuals instead of the Huber loss")
  parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                      help="resamples for standard errors and 95%% intervals (0: none)")
  parser.add_argument("--bootstrap-kind", choices=isoflop.BOOTSTRAP_KINDS,
                      help="isoflop: noise (the default) keeps the design and redraws each loss "
                           "as its parabola's value plus Gaussian noise of the measured run "
                           "noise, relative to the loss; cases draws sizes, then seeds, with "
                           "replacement")
  parser.add_argument("--seed", type=int, help="the bootstrap's random seed (default 0)")
  parser.add_argument("--compute", type=float, nargs="+", default=[], metavar="C",
                      help="budgets in FLOPs for N_opt, D_opt, tokens per parameter, in the "
                           "convention of the data's FLOP column (or of --flops-per-token)")
  parser.add_argument("--flops-per-token", type=float, metavar="K",
                      help="parametric --compute: budgets are C = K·N·D FLOPs (6: Kaplan's "
                           "approximation) instead of the data's FLOP column")
  parser.add_argument("--window", type=int, metavar="K",
                      help=f"isoflop: sizes fitted on each side of a budget's lowest loss "
                           f"(default {isoflop.WINDOW}; 0: every point)")
  parser.add_argument("--budget-rtol", type=float, metavar="R",
                      help=f"isoflop without a budget column: FLOP values within this relative "
                           f"gap are one budget (default {isoflop.BUDGET_RTOL:g})")
  parser.add_argument("--fix", nargs="+", default=[], metavar="NAME=VALUE",
                      help="hold quoted parameters of the law at these values and fit the rest "
                           "(e.g. --fix E=1.87 A=521: a fit in stages)")
  parser.add_argument("--all-starts", action="store_true",
                      help="polish every start of the grid, not only the best screened ones")
  parser.add_argument("--lr-column", help="hparams: the learning-rate column (default "
                                          "learning_rate)")
  parser.add_argument("--batch-column", help="hparams: the batch-size column (default batch_size, "
                                             "when the data has it)")
  parser.add_argument("--params", type=float, nargs="+", metavar="N",
                      help="hparams: predict lr_opt(N,D) at these N (with --tokens, pairwise)")
  parser.add_argument("--tokens", type=float, nargs="+", metavar="D",
                      help="hparams: ... and these D")
  parser.add_argument("--out", help="write the report as JSON here")
  return parser


# What each option is for; an option given elsewhere is refused rather than ignored.
_APPLIES = {
    "--law": ("parametric", "frontier"), "--x": ("parametric", "frontier"),
    "--huber-delta": ("parametric", "frontier"), "--least-squares": ("parametric", "frontier"),
    "--all-starts": ("parametric", "frontier"), "--flops-per-token": ("parametric",),
    "--fix": ("parametric", "frontier"),
    "--bootstrap": ("parametric", "frontier", "isoflop", "hparams"), "--window": ("isoflop",),
    "--lr-column": ("hparams",), "--batch-column": ("hparams",), "--params": ("hparams",),
    "--tokens": ("hparams",),
    "--budget-rtol": ("isoflop",), "--bootstrap-kind": ("isoflop",),
}


def _given(args, option: str) -> bool:
  value = getattr(args, option[2:].replace("-", "_"))
  return value not in (None, False, 0, [])


def _check_numbers(args) -> None:
  """Every number given is finite and in its range: a budget of inf, NaN or 0 FLOPs has no optimal
  allocation, and would otherwise come out as `N_opt inf` or a traceback."""
  for c in args.compute:
    checks.number(c, "--compute", above=0)
  if args.flops_per_token is not None:
    checks.number(args.flops_per_token, "--flops-per-token", above=0)
  if args.huber_delta is not None:
    checks.number(args.huber_delta, "--huber-delta", above=0)
  if args.budget_rtol is not None:
    checks.number(args.budget_rtol, "--budget-rtol", at_least=0, below=1)
  if args.seed is not None:
    checks.number(args.seed, "--seed", integer=True, at_least=0)
  _fixed_values(args.fix)  # NAME=NUMBER, finite, each name once


def _check_out(args) -> None:
  """`--out` can take the report, checked before any fitting as `--data` is: not one of the inputs
  (the --data file, or any file a run or sweep directory owns), not a directory, and in a place
  that can be written (a gs:// bucket that answers). Nothing is written here."""
  out = args.out
  if out is None:
    return
  if not out.strip():
    raise InputError("--out is empty; name a file for the JSON report, such as fit.json")
  same = storage.absolute(out) == storage.absolute(args.data)
  if not same and not storage.is_remote(out) and os.path.exists(out) and os.path.exists(args.data):
    same = os.path.samefile(out, args.data)
  if same:
    raise InputError(f"--out {out} is the --data file: the report would replace the points; "
                     "name another file")
  owner = rundir.owner(out)
  if owner is not None:
    raise InputError(f"--out {out} is a file of the run or sweep in {owner}; write the report "
                     "elsewhere (e.g. a fits/ folder beside it)")
  if storage.is_remote(out):
    storage.check_writable(out, "--out")  # the bucket answers and is ours
  if storage.is_dir(out):
    raise InputError(f"--out {out} is a directory; name a file such as "
                     f"{storage.join(out, 'fit.json')}")
  if not storage.is_remote(out):
    storage.check_writable(storage.parent(out), "--out")


def _check_options(args) -> None:
  """One line for the first option that does not apply to what was asked."""
  for option, approaches_ in _APPLIES.items():
    if _given(args, option) and args.approach not in approaches_:
      raise InputError(f"{option} does not apply to --approach {args.approach} (only to "
                       f"{' and '.join(approaches_)})")
  _check_numbers(args)
  if args.bootstrap < 0 or args.bootstrap == 1:
    raise InputError(f"--bootstrap must be 0 (none) or at least 2, got {args.bootstrap}")
  for option in ("--seed", "--bootstrap-kind"):
    # hparams always bootstraps (--bootstrap: how many resamples, default hparams.RESAMPLES)
    if _given(args, option) and not args.bootstrap and args.approach != "hparams":
      raise InputError(f"{option} does not apply without --bootstrap")
  if args.least_squares and args.huber_delta is not None:
    raise InputError("--huber-delta does not apply with --least-squares")
  if args.flops_per_token is not None and not args.compute:
    raise InputError("--flops-per-token does not apply without --compute")
  if args.window is not None and args.window < 0:
    raise InputError(f"--window must be >= 0 (0: every point), got {args.window}")
  if args.approach in ("parametric", "frontier"):
    default = "power" if args.approach == "frontier" and args.x else "chinchilla"
    law = laws.get(args.law or default)
    one_input = law.inputs == ("x",)
    if args.x is not None and not one_input:
      raise InputError(f"--x picks the input of the one-input laws "
                       f"{' and '.join(laws.of_inputs('x'))}; {law.name} is a law of "
                       f"({', '.join(law.inputs)})")
    x = args.x or "params"
    if args.n_column is not None and one_input and x != "params":
      raise InputError(f"--n-column does not apply to a law of --x {x}")
    uses_flops = bool(args.compute) and args.flops_per_token is None or (one_input and x == "flops")
    if args.flops_column is not None and not uses_flops:
      raise InputError("--flops-column does not apply here (only with --x flops, or --compute "
                       "without --flops-per-token)")


def _use_compilation_cache() -> None:
  """Persists compiled solvers across processes, so a repeated `scaling fit` skips XLA compilation.

  $SCALING_FIT_CACHE picks the directory ("off" disables); a cache the user configured is kept.
  """
  import jax

  from scaling import jax_cache

  path = os.environ.get(_CACHE_ENV, os.path.join(os.path.expanduser("~"), ".cache", "scaling", "jax"))
  if path.lower() in ("", "off") or jax.config.jax_compilation_cache_dir is not None:
    return
  jax_cache.cache_every_program(path)


def _resolve_defaults(args) -> None:
  """Fills the defaults of options left out (after `_check_options` saw what was given)."""
  if args.law is None:
    args.law = "power" if args.approach == "frontier" else "chinchilla"
  args.x = args.x or "params"
  args.n_column = args.n_column or "params"
  args.flops_column = args.flops_column or "flops"
  args.huber_delta = _or_default(args.huber_delta, 1e-3)
  args.seed = _or_default(args.seed, 0)
  args.bootstrap_kind_given = args.bootstrap_kind is not None
  args.bootstrap_kind = _or_default(args.bootstrap_kind, isoflop.DEFAULT_KIND)
  args.window = _or_default(args.window, isoflop.WINDOW)
  args.budget_rtol_given = args.budget_rtol is not None
  args.budget_rtol = _or_default(args.budget_rtol, isoflop.BUDGET_RTOL)
  args.fixed = _fixed_values(args.fix)  # quoted name -> value held (--fix), {} for none


def _or_default(value, default):
  return default if value is None else value


def _fixed_values(pairs: list[str]) -> dict[str, float]:
  """--fix NAME=VALUE ...: finite numbers, each name once (a repeated name is refused, not the
  last one silently kept)."""
  values = {}
  for pair in pairs:
    name, _, value = pair.partition("=")
    name = name.strip()
    try:
      number = float(value)
    except ValueError:
      raise InputError(f"--fix {pair!r}: expected NAME=NUMBER") from None
    checks.number(number, f"--fix {name}")
    if name in values:
      raise InputError(f"--fix names {name} twice ({name}={values[name]:g} and {pair}); "
                       "give each parameter once")
    values[name] = number
  return values


def _format(value) -> str:
  return f"{value:.6g}"


def _print_report(report: dict, source: str) -> None:
  approach = report["approach"]
  print(f"{report['law']} law, {approach} fit to {report['n_points']} points of {source}")
  if "formula" in report:
    print(report["formula"])
  if "inputs" in report:  # which column each input of the law is (x of a one-input law too)
    print("inputs: " + ", ".join(f"{name} = {column}" for name, column in report["inputs"].items())
          + (" (--x picks params, tokens or flops)" if "x" in report["inputs"] else ""))
  if report["objective"] is not None:
    loss = ("least squares" if report["loss"] == "least_squares"
            else f"Huber δ = {report['huber_delta']:g}")
    print(f"objective {report['objective']:.10g} ({loss}); starts: {report['starts']} screened, "
          f"{report['starts_polished']} polished, {report['starts_at_best']} reached the best"
          f"{'' if report['converged'] else '; the best start did NOT converge'}")
  _print_values(report)
  if "compute_convention" in report:
    print(f"compute: {report['compute_convention']}")
  if approach == "isoflop":
    _print_budgets(report)
  if approach == "envelope":
    optima = report["optima"]
    print(f"{len(optima)} FLOP values from {optima[0]['flops']:.3g} to {optima[-1]['flops']:.3g}; "
          f"winning sizes from {min(r['N_opt'] for r in optima):.3g} to "
          f"{max(r['N_opt'] for r in optima):.3g}")
  if "bootstrap" in report:
    print(f"bootstrap: {json.dumps(report['bootstrap'])}")


def _print_values(report: dict) -> None:
  """The fitted parameters, a and b, and each --compute budget's allocation, with their standard
  errors and intervals where the report has a bootstrap."""
  names = list(report["params"]) + [n for n in ("a", "b") if n in report and n not in report["params"]]
  values = {**report["params"], **{n: report[n] for n in ("a", "b") if n in report}}
  stderr, ci95 = report.get("stderr", {}), report.get("ci95", {})

  def interval(name: str) -> str:
    if name not in stderr:
      return ""
    return f"{_format(stderr[name]):>14s}   [{_format(ci95[name][0])}, {_format(ci95[name][1])}]"

  print(f"{'':20s}{'value':>14s}" + (f"{'stderr':>14s}   95% interval" if stderr else ""))
  for name in names:
    print(f"{name:20s}{_format(values[name]):>14s}{interval(name)}")
  if "a" in report:
    print("(N_opt ∝ C^a, D_opt ∝ C^b)")
  for row in report.get("allocation", []):
    c = row["flops"]
    print(f"at C = {c:.4g} FLOPs:")
    for key in ("N_opt", "D_opt", "tokens_per_param"):
      print(f"  {key:18s}{_format(row[key]):>14s}{interval(f'{key}@{c:.3g}')}")


def _print_budgets(report: dict) -> None:
  """An isoFLOP report's window and grouping, and a line per budget: its points fitted and its
  minimum, or why it has none."""
  print(f"window: {report['window']} sizes each side of the lowest loss"
        f"{' (0: every point)' if report['window'] == 0 else ''}; budgets: "
        f"{report['budget_grouping']}")
  print(f"{'budget (FLOPs)':>16s}{'fitted':>8s}{'N_opt':>14s}{'D_opt':>14s}{'loss':>10s}")
  for row in report["budgets"]:
    fitted = f"{len(row['params_fitted'])}/{row['n_points']}"
    if row["status"] == "fitted":
      print(f"{row['flops']:>16.4g}{fitted:>8s}{row['N_opt']:>14.4g}{row['D_opt']:>14.4g}"
            f"{row['loss']:>10.4f}")
    else:
      print(f"{row['flops']:>16.4g}{fitted:>8s}  {row['status']}")


def main(argv: list[str]) -> int:
  args = _parser().parse_args(argv)
  _check_options(args)
  _check_out(args)
  _resolve_defaults(args)
  if args.approach == "hparams":
    from scaling.fit import hparams

    report = hparams.from_args(args)
  elif args.approach == "isoflop":
    report = fit_report.isoflop_report(args)
  elif args.approach == "envelope":
    report = fit_report.envelope_report(args)
  else:
    _use_compilation_cache()
    report = fit_report.law_report(args)
  for message in report["warnings"] if args.approach not in ("isoflop", "envelope", "hparams") else ():
    points.warn(message)
  report["data"] = args.data
  report["y"] = args.y
  if args.approach == "hparams":
    hparams.print_report(report)
  else:
    _print_report(report, args.data)
  if args.out:
    try:
      storage.write_text(args.out, report_json(report))
    except OSError as e:
      raise InputError(f"--out {args.out}: {e.strerror or e}") from None
  return 0


def report_json(report: dict) -> str:
  """The report as RFC 8259 JSON, which has no NaN or Infinity: a value that is not finite (an
  infinite standard error when every resample diverged, an interval with no end) is written as
  null, and a line of `warnings` names each one and what it was."""
  replaced = []

  def finite(value, where: str):
    if isinstance(value, dict):
      return {key: finite(v, f"{where}.{key}" if where else str(key)) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
      return [finite(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not np.isfinite(value):
      replaced.append(f"{where} is {value} (written as null)")
      return None
    return value

  report = finite(report, "")
  report["warnings"] = [*report.get("warnings", []), *replaced]
  return json.dumps(report, indent=2, allow_nan=False) + "\n"


if __name__ == "__main__":
  sys.exit(run(main, sys.argv[1:], "fit"))

"""`scaling fit`: turn (params, tokens, loss) points into a law, a table and a JSON report.

  scaling fit --data POINTS.csv|RUN_DIR|SWEEP_DIR [--approach parametric|isoflop|envelope|frontier|hparams]
      [--law chinchilla|kaplan|power|saturating|data_constrained] [--huber-delta 1e-3 | --least-squares]
      [--window K] [--budget-rtol R] [--bootstrap N [--bootstrap-kind cases|noise]] [--seed S]
      [--compute C ... [--flops-per-token K]]
      [--fix NAME=VALUE ...]
      [--lr-column NAME] [--batch-column NAME] [--params N --tokens D]   (hparams)
      [--out fit.json]

An option that does not apply to the approach or law asked for is refused, not ignored.

Bad input raises InputError; `run` turns it into one `error: ...` line on stderr and exit 2.
"""

import json
import os
import sys

import numpy as np

from scaling import checks, rundir
from scaling.errors import ArgumentParser, InputError
from scaling.fit import approaches, points

_CACHE_ENV = "SCALING_FIT_CACHE"


def _parser() -> ArgumentParser:
  # Options default to None so that one given where it does not apply can be refused.
  parser = ArgumentParser(prog="scaling fit", description=__doc__.split("\n\n")[0])
  parser.add_argument("--data", required=True,
                      help="a CSV of points, a run directory or a sweep directory")
  parser.add_argument("--law", choices=tuple(LAW_NAMES),
                      help="the law of parametric and frontier fits (default chinchilla; "
                           "power or saturating for the frontier)")
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
                      help="the input of the one-input laws power and saturating (default params)")
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
  parser.add_argument("--bootstrap-kind", choices=approaches.BOOTSTRAP_KINDS,
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
                           f"(default {approaches.WINDOW}; 0: every point)")
  parser.add_argument("--budget-rtol", type=float, metavar="R",
                      help=f"isoflop without a budget column: FLOP values within this relative "
                           f"gap are one budget (default {approaches.BUDGET_RTOL:g})")
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
LAW_NAMES = ("chinchilla", "kaplan", "power", "saturating", "data_constrained")


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
  same = rundir.absolute(out) == rundir.absolute(args.data)
  if not same and not rundir.is_remote(out) and os.path.exists(out) and os.path.exists(args.data):
    same = os.path.samefile(out, args.data)
  if same:
    raise InputError(f"--out {out} is the --data file: the report would replace the points; "
                     "name another file")
  owner = rundir.owner(out)
  if owner is not None:
    raise InputError(f"--out {out} is a file of the run or sweep in {owner}; write the report "
                     "elsewhere (e.g. a fits/ folder beside it)")
  if rundir.is_remote(out):
    rundir.check_writable(out, "--out")  # the bucket answers and is ours
  if rundir.is_dir(out):
    raise InputError(f"--out {out} is a directory; name a file such as "
                     f"{rundir.join(out, 'fit.json')}")
  if not rundir.is_remote(out):
    rundir.check_writable(rundir.parent(out), "--out")


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
    law = args.law or ("power" if args.approach == "frontier" and args.x else "chinchilla")
    one_input = law in ("power", "saturating")
    if args.x is not None and not one_input:
      raise InputError(f"--x picks the input of the one-input laws power and saturating; "
                       f"{law} is a law of (N, D{', U' if law == 'data_constrained' else ''})")
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
  args.bootstrap_kind = _or_default(args.bootstrap_kind, approaches.DEFAULT_KIND)
  args.window = _or_default(args.window, approaches.WINDOW)
  args.budget_rtol_given = args.budget_rtol is not None
  args.budget_rtol = _or_default(args.budget_rtol, approaches.BUDGET_RTOL)


def _or_default(value, default):
  return default if value is None else value


def _x_column(args, name: str) -> str:
  """The data column behind a law input: N, D, U (unique tokens), or the one-input laws' x."""
  return {"N": args.n_column, "D": "tokens", "U": "unique_tokens",
          "x": {"params": args.n_column, "tokens": "tokens", "flops": args.flops_column}[args.x]}[name]


def _read(args, columns: list[str], **options) -> dict:
  """points.read, with the `loss` column read from --y's column (bpb) and named `loss` after."""
  table = points.read(args.data, [args.y if c == "loss" else c for c in columns], **options)
  table["loss"] = table.pop(args.y)
  return table


def _read_law_points(args, law, columns: list[str]) -> dict:
  """The columns a law needs; unique tokens from `unique_tokens`, else tokens / `epochs`."""
  wanted = [c for c in columns if c != "unique_tokens"]
  optional = ["budget", args.flops_column] + (["unique_tokens", "epochs"] if "U" in law.inputs else [])
  table = _read(args, wanted + ["loss"], optional=optional)
  if "U" in law.inputs and "unique_tokens" not in table:
    if "epochs" not in table:
      raise InputError(f"{args.data}: law {law.name} needs a 'unique_tokens' or an 'epochs' column")
    table["unique_tokens"] = table["tokens"] / table["epochs"]
  return table


def _check_identifiable(law, columns: list[str], inputs) -> None:
  """A law in an input that every point shares cannot separate that input's term."""
  for name, column, values in zip(law.inputs, columns, inputs):
    if np.unique(values).size == 1:
      raise InputError(f"every point has {column} = {values[0]:.6g}: law {law.name} in {name} is "
                       f"not identifiable from them")


# Power terms coefficient·x^-exponent of the laws with an irreducible loss, as
# (name, θ index of log coefficient, θ index of exponent, input column).
_TERMS = {"chinchilla": (("A", 0, 3, 0), ("B", 1, 4, 1)),
          "data_constrained": (("A", 0, 3, 0), ("B", 1, 4, 1)),
          "saturating": (("A", 0, 2, 0),)}


def _at_bound(law, theta, params: dict, inputs, loss) -> list[str]:
  """Warnings for fitted terms that vanished: E → 0, an exponent → 0 (its term a constant), a
  power term below 1e-3 of the smallest loss at every point (A or B → 0, or its exponent → ∞)."""
  warnings = []
  log_floor = np.log(1e-3 * float(np.min(loss)))
  if "E" in params and np.log(params["E"]) < log_floor:
    warnings.append(f"E = {params['E']:.3g} is at its bound 0 (no irreducible loss)")
  for name, value in params.items():
    if name.startswith(("alpha", "beta")) and abs(value) < 1e-3:
      warnings.append(f"{name} = {value:.3g} is at its bound 0: its term is a constant")
  for name, coefficient, exponent, column in _TERMS.get(law.name, ()) if theta is not None else ():
    log_term_P = theta[coefficient] - theta[exponent] * np.log(inputs[column])
    if np.max(log_term_P) < log_floor:
      warnings.append(f"{name}·x^-{law.theta_names[exponent]} (A = e^{theta[coefficient]:.3g}, "
                      f"{law.theta_names[exponent]} = {theta[exponent]:.3g}) is below 1e-3 of the "
                      f"loss at every point: the term is at its bound 0"
                      .replace("A = ", f"{name} = ", 1))
  return warnings


def _flops_per_token(args, table: dict):
  """(f(N) for the allocation, the convention in words): C = K·N·D with --flops-per-token K, else
  a power law through the data's FLOP column (the runs' own convention), else 6·N·D."""
  from scaling.fit import allocation

  if args.flops_per_token is not None:
    k = args.flops_per_token
    return (lambda n: k * n), f"C = {k:g}·N·D FLOPs (--flops-per-token {k:g})"
  if args.flops_column in table:
    k, p, miss = allocation.flops_per_token_law(table[args.n_column], table[args.flops_column],
                                                table["tokens"])
    return (lambda n: k * n**p), (
        f"C in the data's {args.flops_column!r} column: C = f(N)·D with f(N) = {k:.6g}·N^{p:.6g} "
        f"fitted to {args.flops_column}/tokens (largest miss {100 * miss:.2g} %)")
  return allocation.six_n, f"C = 6·N·D FLOPs (the data has no {args.flops_column!r} column)"


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
  optimize.prepare(law, inputs, loss)  # more points than parameters, every value positive
  _check_identifiable(law, columns, inputs)
  flops_per_token, convention = (_flops_per_token(args, table) if budgets
                                 else (allocation.six_n, None))
  delta = None if args.least_squares else args.huber_delta
  result = optimize.fit(law, inputs, loss, delta=delta,
                        polished_starts=None if args.all_starts else optimize.LANES)
  estimate = allocation.quantities(law, result.theta, budgets, flops_per_token)
  report = {
      "law": law.name, "approach": args.approach, "formula": law.formula,
      "inputs": dict(zip(law.inputs, columns)),
      "loss": "least_squares" if delta is None else "huber", "huber_delta": delta,
      "params": dict(result.params), "objective": result.objective, "n_points": result.n_points,
      "starts": result.starts, "starts_polished": result.starts_polished,
      "starts_at_best": result.starts_at_best, "converged": result.converged,
      "warnings": _at_bound(law, None if args.fix else result.theta, result.params, inputs,
                            loss),
  }
  if args.fix:
    report["fixed"] = _fixed_values(args.fix)
  if law.exponents is not None:
    report["a"], report["b"] = float(estimate["a"]), float(estimate["b"])
  if budgets:
    report["compute_convention"] = convention
    report["allocation"] = [
        {"flops": c, "N_opt": float(estimate[f"N_opt@{c:.3g}"]),
         "D_opt": float(estimate[f"D_opt@{c:.3g}"]),
         "tokens_per_param": float(estimate[f"tokens_per_param@{c:.3g}"])} for c in budgets]
  if args.bootstrap:
    refits = bootstrap.bootstrap(result, inputs, loss, resamples=args.bootstrap, seed=args.seed,
                                 law=law)
    samples = allocation.quantities(law, refits.theta_BxT[refits.converged_B], budgets,
                                    flops_per_token)
    report["stderr"], report["ci95"] = bootstrap.summarize(samples)
    report["bootstrap"] = {"resamples": refits.resamples, "converged": int(refits.converged_B.sum()),
                           "seed": args.seed, "kind": "cases: points drawn with replacement",
                           "interval": "percentile (2.5, 97.5)"}
  return report


def _allocation_of_optima(optima, budgets) -> list[dict]:
  """N_opt = k_N·C^a and D_opt = k_D·C^b at each budget."""
  rows = []
  for c in budgets:
    n, d = optima.k_n * c**optima.a, optima.k_d * c**optima.b
    rows.append({"flops": c, "N_opt": float(n), "D_opt": float(d), "tokens_per_param": float(d / n)})
  return rows


def _optima_report(args, optima: approaches.Optima, n_points: int, convention: str) -> dict:
  """Approaches 1 and 2: power laws through compute-optimal points. They are closed-form least
  squares, so the multi-start fields of the schema are null."""
  report = {
      "law": "power", "approach": args.approach,
      "params": {"a": optima.a, "b": optima.b, "k_N": optima.k_n, "k_D": optima.k_d},
      "a": optima.a, "b": optima.b, "n_points": n_points,
      "objective": None, "starts": None, "starts_at_best": None,
      "optima": [{"flops": float(c), "N_opt": float(n), "D_opt": float(d), "loss": float(l)}
                 for c, n, d, l in zip(optima.flops_M, optima.params_M, optima.tokens_M,
                                       optima.loss_M)],
      "compute_convention": convention,
      "warnings": list(getattr(optima, "warnings", ())),
  }
  if args.compute:
    report["allocation"] = _allocation_of_optima(optima, args.compute)
  return report


def _isoflop(args) -> dict:
  columns = [args.n_column, "tokens", args.flops_column, "loss"]
  table = _read(args, columns, optional=("budget", "seed"))
  # A sweep's nominal budget groups its runs; their real FLOPs differ by step rounding.
  from_column = "budget" in table
  budget = table["budget"] if from_column else table[args.flops_column]
  if from_column and args.budget_rtol_given:
    raise InputError("--budget-rtol does not apply: the data has a budget column")
  point_arrays = (budget, table[args.n_column], table["tokens"], table["loss"])
  options = {"window": args.window, "rtol": args.budget_rtol, "grouped": not from_column}
  optima = approaches.isoflop(*point_arrays, **options)
  convention = (f"C in the data's {'budget' if from_column else args.flops_column!r} column"
                + ("" if from_column else f" ({args.flops_column} convention)"))
  report = _optima_report(args, optima, table["loss"].size, convention)
  report["window"] = args.window
  report["budget_grouping"] = (
      "the data's budget column (exact values)" if from_column else
      f"{args.flops_column!r} values within {args.budget_rtol:g} (relative) of the next are one budget")
  report["budgets"] = [_profile_report(p, table[args.n_column]) for p in optima.profiles]
  if args.bootstrap:
    from scaling.fit.intervals import summarize_normal

    replicates = table.get("seed")
    kind = args.bootstrap_kind
    if kind == "noise":
      try:
        noise = approaches.run_noise(list(optima.profiles))
      except InputError as e:
        if args.bootstrap_kind_given:
          raise
        # The default needs the runs' noise measured; without it, the case bootstrap, said so.
        kind = "cases"
        message = f"{e}; the bootstrap resamples cases instead (--bootstrap-kind cases)"
        report["warnings"].append(message)
        points.warn(message)
    samples = approaches.isoflop_bootstrap(*point_arrays, resamples=args.bootstrap, seed=args.seed,
                                           replicate_P=replicates, kind=kind, **options)
    scale = approaches.INTERVAL_SCALE[kind]
    quantile = approaches.interval_quantile(kind, noise.dof if kind == "noise" else 0)
    _budget_intervals(report, optima, samples.pop("N_opt_BxM"), samples.pop("D_opt_BxM"), scale,
                      quantile)
    for c in args.compute:
      samples[f"N_opt@{c:.3g}"] = samples["k_N"] * c ** samples["a"]
      samples[f"D_opt@{c:.3g}"] = samples["k_D"] * c ** samples["b"]
      samples[f"tokens_per_param@{c:.3g}"] = samples[f"D_opt@{c:.3g}"] / samples[f"N_opt@{c:.3g}"]
    estimates = {**report["params"]}
    for row in report.get("allocation", []):
      for key in ("N_opt", "D_opt", "tokens_per_param"):
        estimates[f"{key}@{row['flops']:.3g}"] = row[key]
    report["stderr"], report["ci95"] = summarize_normal(samples, estimates,
                                                        positive=("k_N", "k_D", "@"), scale=scale,
                                                        quantile=quantile)
    report["bootstrap"] = {
        "resamples": args.bootstrap, "kept": int(samples["a"].size), "seed": args.seed,
        "kind": _isoflop_bootstrap_kind(kind, replicates is not None),
        "interval": ("estimate ± 1.96 bootstrap SD" if scale == "sd" else
                     f"estimate ± t(0.975, sigma_dof) = {quantile:.3f} × IQR / 1.349 of the "
                     "bootstrap samples") + " (in log space for k_N, k_D and allocations)",
        "scale": scale, "quantile": quantile}
    if kind == "noise":
      report["bootstrap"].update(
          sigma=noise.sigma, sigma_source=noise.source, sigma_dof=noise.dof,
          seed_sd=_or_none(noise.seed_sd), seed_dof=noise.seed_dof,
          residual_rms=_or_none(noise.residual_rms), residual_dof=noise.residual_dof,
          loss_scale=noise.loss_scale)
  return report


def _isoflop_bootstrap_kind(kind: str, has_seeds: bool) -> str:
  """The report's `bootstrap.kind`: the kind's name, a colon, what a resample is."""
  if kind == "noise":
    return ("noise: the design kept (budgets, sizes, seeds), each loss redrawn as its budget's "
            "parabola plus Gaussian noise of sigma × loss / loss_scale (relative noise), sigma "
            "the larger of the seed SD (runs of one budget and size) and the parabolas' residual "
            "RMS, both measured relative to the loss and stated in nats at loss_scale, the runs' "
            "mean loss")
  return ("cases: model sizes within each budget, then seeds (the seed column) within each size"
          if has_seeds else "cases: runs within each budget")


def _or_none(value: float):
  """NaN (a measurement there is none of) as JSON null."""
  return None if np.isnan(value) else value


def _budget_intervals(report: dict, optima: approaches.Isoflop, n_opt_BxM, d_opt_BxM,
                      scale: str, quantile: float) -> None:
  """Each optimum's own 95 % interval of N_opt and D_opt (its vertex over the resamples that have
  one there, counted in `resamples_with_minimum`), as the exponents': estimate ·/ exp(quantile ·
  spread) in log space, the kind's (`approaches.INTERVAL_SCALE`, `interval_quantile`)."""
  from scaling.fit.intervals import summarize_normal

  rows = iter(report["optima"])
  for m, profile in enumerate(optima.profiles):
    if profile.skipped:
      continue
    row = next(rows)
    samples = {"N_opt": n_opt_BxM[:, m], "D_opt": d_opt_BxM[:, m]}
    _, row["ci95"] = summarize_normal(samples, {k: row[k] for k in samples}, positive=tuple(samples),
                                      scale=scale, quantile=quantile)
    row["resamples_with_minimum"] = int(np.isfinite(n_opt_BxM[:, m]).sum())


def _profile_report(profile: approaches.IsoflopProfile, params_P) -> dict:
  """Which points of one budget its parabola used, with their weights, or why it has none."""
  row = {"flops": profile.flops, "n_points": int(profile.rows.size),
         "status": "fitted" if not profile.skipped else f"left out: {profile.skipped}",
         "params_fitted": [float(params_P[i]) for i in profile.rows[profile.fitted]],
         "weights": [round(float(w), 6) for w in profile.weights[profile.fitted]],
         "params_left_out": [float(params_P[i]) for i in profile.rows[~profile.fitted]]}
  if not profile.skipped:
    row["N_opt"], row["D_opt"], row["loss"] = profile.minimum
  return row


def _envelope(args) -> dict:
  columns = [args.n_column, "tokens", args.flops_column, "loss"]
  table = _read(args, columns, curves=True)
  optima = approaches.envelope(table["run"], table[args.flops_column], table[args.n_column],
                               table["tokens"], table["loss"])
  return _optima_report(args, optima, table["loss"].size,
                        f"C in the data's {args.flops_column!r} column")


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
  if "compute_convention" in report:
    print(f"compute: {report['compute_convention']}")
  if approach == "isoflop":
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
  if approach == "envelope":
    optima = report["optima"]
    print(f"{len(optima)} FLOP values from {optima[0]['flops']:.3g} to {optima[-1]['flops']:.3g}; "
          f"winning sizes from {min(r['N_opt'] for r in optima):.3g} to "
          f"{max(r['N_opt'] for r in optima):.3g}")
  if "bootstrap" in report:
    print(f"bootstrap: {json.dumps(report['bootstrap'])}")


def main(argv: list[str]) -> int:
  args = _parser().parse_args(argv)
  _check_options(args)
  _check_out(args)
  _resolve_defaults(args)
  if args.approach == "hparams":
    from scaling.fit import hparams

    report = hparams.from_args(args)
  elif args.approach == "isoflop":
    report = _isoflop(args)
  elif args.approach == "envelope":
    report = _envelope(args)
  else:
    _use_compilation_cache()
    from scaling.fit import laws  # deferred with the solver: it imports JAX

    law = laws.get(args.law)
    if args.fix:
      law = laws.with_fixed(law, _fixed_values(args.fix))
    if args.approach == "frontier" and law.inputs != ("x",):
      raise InputError(f"--approach frontier fits a law of one input (--law power or saturating), "
                       f"not {law.name}")
    columns = [_x_column(args, name) for name in law.inputs]
    table = _read_law_points(args, law, columns)
    mask = None
    if args.approach == "frontier":
      mask = approaches.frontier_mask(table[columns[0]], table["loss"])
    report = _law_fit(args, law, columns, table, mask)
    if mask is not None:
      report["frontier_points"] = int(mask.sum())
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
      rundir.write_text(args.out, report_json(report))
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


def run(entry_point, argv: list[str]) -> int:
  """Runs a CLI entry point: bad input becomes one `error: ...` line on stderr and exit status 2."""
  try:
    return entry_point(argv)
  except InputError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(run(main, sys.argv[1:]))

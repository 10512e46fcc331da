"""The reports of `scaling fit`: the points read as the arguments ask, fitted, turned into the
report dict that `cli.py` prints and writes as JSON (its keys are the `scaling fit` JSON).

One entry point per approach: `law_report` (parametric, frontier), `isoflop_report`,
`envelope_report`; `hparams.from_args` is the hparams approach's. Each takes the parsed and
checked arguments, with defaults filled (`cli._resolve_defaults`).
"""

import numpy as np

from scaling.errors import InputError
from scaling.fit import approaches, intervals, isoflop, laws, points


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


def _at_bound(law, theta, params: dict, inputs, loss) -> list[str]:
  """Warnings for fitted terms that vanished: E → 0, an exponent → 0 (its term a constant), a
  power term of `law.terms` below 1e-3 of the smallest loss at every point (A or B → 0, or its
  exponent → ∞; in θ, where a coefficient past float64's range is still a number; not checked
  without θ)."""
  warnings = []
  log_floor = np.log(1e-3 * float(np.min(loss)))
  if "E" in params and np.log(params["E"]) < log_floor:
    warnings.append(f"E = {params['E']:.3g} is at its bound 0 (no irreducible loss)")
  for name, value in params.items():
    if name.startswith(("alpha", "beta")) and abs(value) < 1e-3:
      warnings.append(f"{name} = {value:.3g} is at its bound 0: its term is a constant")
  index = laws.quoted_to_theta(law)
  for coefficient, exponent, column in law.terms if theta is not None else ():
    log_coefficient, power = theta[index[coefficient][0]], theta[index[exponent][0]]
    if np.max(log_coefficient - power * np.log(inputs[column])) < log_floor:
      warnings.append(f"{coefficient}·x^-{exponent} ({coefficient} = e^{log_coefficient:.3g}, "
                      f"{exponent} = {power:.3g}) is below 1e-3 of the loss at every point: the "
                      f"term is at its bound 0")
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


def law_report(args) -> dict:
  """Approach 3 (`--approach parametric`) or a law through the loss frontier of one input."""
  law = laws.get(args.law)
  if args.fixed:
    law = laws.with_fixed(law, args.fixed)
  if args.approach == "frontier" and law.inputs != ("x",):
    raise InputError(f"--approach frontier fits a law of one input (--law "
                     f"{' or '.join(laws.of_inputs('x'))}), not {law.name}")
  columns = [_x_column(args, name) for name in law.inputs]
  table = _read_law_points(args, law, columns)
  mask = None
  if args.approach == "frontier":
    mask = approaches.frontier_mask(table[columns[0]], table["loss"])
  report = _law_fit(args, law, columns, table, mask)
  if mask is not None:
    report["frontier_points"] = int(mask.sum())
  return report


def _law_fit(args, law, columns: list[str], table: dict, mask=None) -> dict:
  """The law's fit, bootstrap and allocation, as a report."""
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
      "warnings": _at_bound(law, None if args.fixed else result.theta, result.params, inputs,
                            loss),
  }
  if args.fixed:
    report["fixed"] = args.fixed
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
    report["stderr"], report["ci95"] = intervals.summarize(samples)
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


def isoflop_report(args) -> dict:
  """Approach 2: each budget's parabola and the power laws through their minima, with the
  bootstrap's intervals when asked."""
  columns = [args.n_column, "tokens", args.flops_column, "loss"]
  table = _read(args, columns, optional=("budget", "seed"))
  # A sweep's nominal budget groups its runs; their real FLOPs differ by step rounding.
  from_column = "budget" in table
  budget = table["budget"] if from_column else table[args.flops_column]
  if from_column and args.budget_rtol_given:
    raise InputError("--budget-rtol does not apply: the data has a budget column")
  point_arrays = (budget, table[args.n_column], table["tokens"], table["loss"])
  options = {"window": args.window, "rtol": args.budget_rtol, "grouped": not from_column}
  optima = isoflop.isoflop(*point_arrays, **options)
  convention = (f"C in the data's {'budget' if from_column else args.flops_column!r} column"
                + ("" if from_column else f" ({args.flops_column} convention)"))
  report = _optima_report(args, optima, table["loss"].size, convention)
  report["window"] = args.window
  report["budget_grouping"] = (
      "the data's budget column (exact values)" if from_column else
      f"{args.flops_column!r} values within {args.budget_rtol:g} (relative) of the next are one budget")
  report["budgets"] = [_profile_report(p, table[args.n_column]) for p in optima.profiles]
  if args.bootstrap:
    _isoflop_bootstrap(args, report, optima, point_arrays, options, table.get("seed"))
  return report


def _bootstrap_noise(args, report: dict, optima: isoflop.Isoflop):
  """(kind, the runs' RunNoise or None): the noise bootstrap needs the runs' noise measured;
  without it the default kind falls back to cases and says so, while noise asked for by name is
  an error."""
  kind = args.bootstrap_kind
  if kind != "noise":
    return kind, None
  try:
    return kind, isoflop.run_noise(list(optima.profiles))
  except InputError as e:
    if args.bootstrap_kind_given:
      raise
    message = f"{e}; the bootstrap resamples cases instead (--bootstrap-kind cases)"
    report["warnings"].append(message)
    points.warn(message)
    return "cases", None


def _isoflop_bootstrap(args, report: dict, optima: isoflop.Isoflop, point_arrays,
                       options: dict, replicates) -> None:
  """Adds the isoFLOP bootstrap's intervals (exponents, coefficients, allocations, each budget's
  optimum) and what it did to `report`."""
  from scaling.fit.intervals import summarize_normal

  kind, noise = _bootstrap_noise(args, report, optima)
  samples = isoflop.isoflop_bootstrap(*point_arrays, resamples=args.bootstrap, seed=args.seed,
                                      replicate_P=replicates, kind=kind, **options)
  scale = isoflop.INTERVAL_SCALE[kind]
  quantile = isoflop.interval_quantile(kind, noise.dof if kind == "noise" else 0)
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


def _budget_intervals(report: dict, optima: isoflop.Isoflop, n_opt_BxM, d_opt_BxM,
                      scale: str, quantile: float) -> None:
  """Each optimum's own 95 % interval of N_opt and D_opt (its vertex over the resamples that have
  one there, counted in `resamples_with_minimum`), as the exponents': estimate ·/ exp(quantile ·
  spread) in log space, the kind's (`isoflop.INTERVAL_SCALE`, `interval_quantile`)."""
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


def _profile_report(profile: isoflop.IsoflopProfile, params_P) -> dict:
  """Which points of one budget its parabola used, with their weights, or why it has none."""
  row = {"flops": profile.flops, "n_points": int(profile.rows.size),
         "status": "fitted" if not profile.skipped else f"left out: {profile.skipped}",
         "params_fitted": [float(params_P[i]) for i in profile.rows[profile.fitted]],
         "weights": [round(float(w), 6) for w in profile.weights[profile.fitted]],
         "params_left_out": [float(params_P[i]) for i in profile.rows[~profile.fitted]]}
  if not profile.skipped:
    row["N_opt"], row["D_opt"], row["loss"] = profile.minimum
  return row


def envelope_report(args) -> dict:
  """Approach 1: the power laws through the envelope of the training curves."""
  columns = [args.n_column, "tokens", args.flops_column, "loss"]
  table = _read(args, columns, curves=True)
  optima = approaches.envelope(table["run"], table[args.flops_column], table[args.n_column],
                               table["tokens"], table["loss"])
  return _optima_report(args, optima, table["loss"].size,
                        f"C in the data's {args.flops_column!r} column")

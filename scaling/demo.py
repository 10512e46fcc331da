"""`scaling demo`: from nothing to a compute-optimal law on this machine, in one command.

An isoFLOP sweep of tiny byte-level Transformers on the embedded corpus (4 budgets × 5 sizes, each
under two seeds, sized for a 2-core CPU), then Hoffmann et al. 2022's Approach 2 (isoFLOP
parabolas, its intervals from the measured run noise) and Approach 3 (the parametric L(N, D)) with
bootstrap intervals, each profile set against the run noise, the figures, and an honest check: fit
without the largest budget and predict its optimal loss. What it printed, and what that shows:
README, "The demo".
"""

import contextlib
import io
import math
import sys
import time

import numpy as np

from scaling import storage
from scaling.errors import ArgumentParser, InputError

# Chinchilla-convention FLOPs over 1.5 decades (README, "The demo"). The smallest budget is one
# whose five sizes are distinct two-layer shapes.
BUDGETS = (5e10, 1.6e11, 5e11, 1.6e12)  # 32×: 10^1.505
# Run noise is measured, not assumed: every run is trained again with another seed (init and data
# order), so Approach 2's bootstrap redraws the losses with a measured σ (`scaling fit
# --bootstrap-kind noise`, the default; with 5 sizes per budget, drawing sizes with replacement
# often leaves 3 distinct ones and the case bootstrap over-covers, docs/fit.md). The largest budget
# is replicated too, though it is half the FLOPs: an end of the range has the most leverage on the
# slope (how much narrower that makes a's interval: README, "The demo"; docs/fit.md, calibration).
REPLICATE_SEEDS = (1,)
REPLICATE_BUDGETS = BUDGETS
# Approach 2's bootstrap is closed-form (a fraction of a second for thousands of resamples); its
# interval is ± t·IQR/1.349 of the resamples, and a quartile read off a few hundred resamples
# still wobbles by several per cent (docs/fit.md).
ISOFLOP_RESAMPLES = 2000


def tiny_isoflop_sweep(budgets, replicate_budgets):
  """An isoFLOP sweep of tiny byte-level Transformers sized for a CPU: the demo's and, at other
  budgets, configs/sweeps/isoflop_tiny.py's. One recipe, built here so an installed package runs
  it."""
  from scaling.sweep.config import cpu_defaults

  config = cpu_defaults()  # 64-byte context, 64k held-out bytes for each final loss, one evaluation
  # Porian et al. 2024 find AdamW's usual β2 = 0.95 too low at small batch sizes; these runs take
  # 16 × 64 = 1k tokens per step, so β2 = 0.99 (warmup and LR follow the cpu_tiny recipe: a short
  # warmup and a larger LR for narrower models, as they also find).
  config.base.adam_b2 = 0.99
  config.sweep.kind = "isoflop"
  config.sweep.recipe = "cpu_tiny"
  # Head dim 4 and at least two layers (models/ladder.py, "heads:<h>"): widths step by one head,
  # so neighbouring sizes differ only in scale.
  config.sweep.rule = "heads:4"
  config.sweep.flops_convention = "chinchilla"
  config.sweep.budgets = budgets
  config.sweep.sizes_per_budget = 5
  config.sweep.size_span = 8.0
  # Tiny byte-level models spend most FLOPs on embeddings, logits and attention, so their optimum
  # is far from Hoffmann's 20 tokens per parameter: the grid is centred where this recipe's isoFLOP
  # minima were measured (README, "The demo"; docs/sweeps.md). Remeasure with a wide size_span at
  # budgets far from these.
  config.sweep.optimum = "tokens_per_param"
  config.sweep.optimum_tokens_per_param = 60.0
  config.sweep.replicate_seeds = REPLICATE_SEEDS
  config.sweep.replicate_budgets = replicate_budgets
  return config


def demo_config():
  """The demo's sweep, with the log and progress output of a command that prints a summary."""
  config = tiny_isoflop_sweep(BUDGETS, REPLICATE_BUDGETS)
  config.base.log_every = 50
  config.base.progress = False  # the runner's bar over runs is enough on a terminal
  return config


def _interval(report: dict, name: str) -> str:
  value = report[name]
  if "ci95" in report and name in report["ci95"]:
    lo, hi = report["ci95"][name]
    return f"{value:.3f} (95% CI {lo:.3f} to {hi:.3f})"
  return f"{value:.3f}"


def _fit(argv: list[str], out: str) -> dict:
  from scaling.fit import cli as fit_cli

  fit_cli.main([*argv, "--out", out])
  return storage.read_json(out)


def _parametric_optimum(params: dict, rows: list[dict], budget: float) -> tuple[float, float]:
  """argmin over N of the fitted L(N, D) on the isoFLOP curve D = C / flops_per_token(N).

  flops_per_token is the family's own (chinchilla convention, as logged), a log-log line through
  the runs, not 6N: for these tiny models embeddings, logits and attention dominate it.
  """
  log_n = np.log([r["params"] for r in rows])
  slope, intercept = np.polyfit(log_n, np.log([r["flops"] / r["tokens"] for r in rows]), 1)
  n_grid = np.exp(np.linspace(log_n.min() - 3, log_n.max() + 6, 20_000))
  d_grid = budget / np.exp(intercept + slope * np.log(n_grid))
  loss = params["E"] + params["A"] * n_grid ** -params["alpha"] + params["B"] * d_grid ** -params["beta"]
  best = int(np.argmin(loss))
  return float(n_grid[best]), float(d_grid[best])


def _holdout_check(rows: list[dict]) -> str:
  """Fits Approach 2 on all budgets but the largest, extrapolates L_opt(C), compares with the
  largest budget's own isoFLOP minimum."""
  from scaling.fit import isoflop

  budget = np.array([r["budget"] for r in rows])
  columns = [np.array([r[k] for r in rows], dtype=float) for k in ("params", "tokens", "loss")]
  largest = budget.max()
  held_in = budget < largest
  observed = isoflop.isoflop(budget, *columns, quiet=True)
  try:
    fitted = isoflop.isoflop(budget[held_in], *(c[held_in] for c in columns), quiet=True)
  except InputError as e:  # e.g. a budget below the largest without a bracketed minimum
    return f"held-out budget {largest:.3g} FLOPs: no check, the budgets below it do not fit ({e})"
  if not np.isclose(observed.flops_M.max(), largest):
    return f"held-out budget {largest:.3g} FLOPs: no check, it has no isoFLOP minimum of its own"
  # L_opt(C) = k·C^-γ through the held-in budgets' minima (Kaplan et al. 2020's L(C_min) form).
  slope, intercept = np.polyfit(np.log(fitted.flops_M), np.log(fitted.loss_M), 1)
  predicted = float(np.exp(intercept + slope * np.log(largest)))
  actual = float(observed.loss_M[np.argmax(observed.flops_M)])
  n_predicted = fitted.k_n * largest ** fitted.a
  n_actual = float(observed.params_M[np.argmax(observed.flops_M)])
  return (f"held-out budget {largest:.3g} FLOPs, fitted on the {held_in.sum()} runs below it: "
          f"predicted optimal loss {predicted:.4f} vs {actual:.4f} measured "
          f"({100 * (predicted - actual) / actual:+.1f}%); predicted N_opt {n_predicted:,.0f} vs "
          f"{n_actual:,.0f} ({100 * (n_predicted - n_actual) / n_actual:+.0f}%)")


def profile_noise(rows: list[dict], report: dict) -> list[dict]:
  """Per budget: how deep its profile is and the run noise in it, so "a parabola" can be judged
  against measured noise.

  depth: the highest minus the lowest fitted loss; residual, seed_sd and seed_dof: what the noise
  bootstrap measures (`run_noise`) in this budget alone: its fitted points' RMS about the parabola
  and the pooled SD between seeds of one size, both relative to each loss and in nats at the
  budget's mean loss. NaN (0 df) where there is nothing to measure.
  """
  from scaling.fit import isoflop

  budget_P = np.array([r["budget"] for r in rows])
  columns = [np.array([r[k] for r in rows], dtype=float) for k in ("params", "tokens", "loss")]
  optima = {round(o["flops"]): o for o in report["optima"]}
  table = []
  for profile in isoflop.isoflop_profiles(budget_P, *columns, window=report["window"],
                                          grouped=False):
    fitted = profile.fitted if not profile.skipped else np.zeros(profile.rows.size, bool)
    try:
      noise = isoflop.run_noise([profile])
      residual, seed_sd, seed_dof = noise.residual_rms, noise.seed_sd, noise.seed_dof
    except InputError:  # neither replicates nor a parabola through more than 3 sizes
      residual, seed_sd, seed_dof = math.nan, math.nan, 0
    table.append({"budget": profile.flops, "sizes": np.unique(profile.log_params).size,
                  "runs": profile.rows.size, "fitted": int(fitted.sum()),
                  "depth": float(np.ptp(profile.loss[fitted])) if fitted.any() else math.nan,
                  "residual": residual, "seed_sd": seed_sd, "seed_dof": seed_dof,
                  "optimum": optima.get(round(profile.flops))})
  return table


def noise_lines(table: list[dict], pooled: tuple[float, int]) -> list[str]:
  """`profile_noise`'s table, then what its columns mean with the seed SD pooled over all budgets
  (`pooled`: the fit's, and its degrees of freedom)."""
  lines = [f"{'budget':>9}  {'sizes':>5}  {'runs':>4}  {'N_opt (95% CI)':>28}  {'depth':>6}  "
           f"{'residual':>8}  {'seed SD':>12}"]
  for row in table:
    optimum = row["optimum"]
    ci = (optimum or {}).get("ci95", {}).get("N_opt")
    n_opt = ("no minimum" if not optimum else f"{optimum['N_opt']:,.0f}"
             + (f" ({ci[0]:,.0f}–{ci[1]:,.0f})" if ci else ""))
    seed = f"{row['seed_sd']:.4f} ({row['seed_dof']} df)" if row["seed_dof"] else "-"
    lines.append(f"{row['budget']:>9.3g}  {row['sizes']:>5}  {row['runs']:>4}  {n_opt:>28}  "
                 f"{row['depth']:>6.4f}  {row['residual']:>8.4f}  {seed:>12}")
  sd, dof = pooled
  lines.append(f"depth: highest minus lowest loss the parabola fits; residual: its points' RMS "
               f"about it (the fit's df taken out); seed SD: between seeds of one size, pooled "
               f"over all budgets {sd:.4f} ({dof} df); both relative to each loss, in nats at the "
               "budget's mean loss (pooled: all runs')" if dof
               else "no replicate seeds: run noise unmeasured")
  return lines


def interval_line(report_bootstrap: dict, resamples: int, rows: list[dict]) -> str:
  """What Approach 2's interval is made of: the noise bootstrap's design, σ and where σ came from."""
  b = report_bootstrap
  pairs = sum(len(losses) > 1 for losses in _losses_per_size(rows).values())
  seeds = (f"the seed SD between replicate runs, {b['seed_sd']:.4f} ({b['seed_dof']} df, from "
           f"{pairs} sizes trained under 2 or more seeds)" if b["seed_dof"] else
           "the seed SD (unmeasured: no replicate runs)")
  residual = (f"the parabolas' residual RMS, {b['residual_rms']:.4f} ({b['residual_dof']:.1f} df)"
              if b["residual_dof"] else "the parabolas' residual RMS (no degrees of freedom)")
  return (f"  its 95% CI: a ± {b.get('quantile', 1.96):.2f} × IQR/1.349 (Student's t at σ's df) "
          f"over {b['kept']} of {resamples} noise resamples: the design "
          f"kept (the same budgets, sizes and seeds), every loss redrawn as its budget's parabola "
          f"plus Gaussian noise of σ = {b['sigma']:.4f} nats, the larger of {seeds} and {residual} "
          f"(here {'the seed SD' if b['sigma_source'] == 'seeds' else 'the residual RMS'}); each resample refitted through windows, parabolas and "
          "power laws")


def _losses_per_size(rows: list[dict]) -> dict:
  """{(budget, params): the final losses of its runs, one per seed}."""
  groups = {}
  for row in rows:
    groups.setdefault((row["budget"], row["params"]), []).append(row["loss"])
  return groups


def main(argv: list[str]) -> int:
  parser = ArgumentParser(prog="scaling demo", description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", default="runs/demo",
                      help="where runs, results.csv, fits and figures go (re-running resumes)")
  parser.add_argument("--bootstrap", type=int, default=200,
                      help="resamples for Approach 3's 95%% intervals")
  parser.add_argument("--isoflop-bootstrap", type=int, default=ISOFLOP_RESAMPLES,
                      help="resamples for Approach 2's 95%% intervals")
  args = parser.parse_args(argv)
  return run(demo_config(), args.workdir, args.bootstrap, args.isoflop_bootstrap)


def run(config, workdir: str, bootstrap: int, isoflop_bootstrap: int = ISOFLOP_RESAMPLES) -> int:
  """Trains `config`'s sweep in `workdir` (resuming), fits, draws and prints the summary."""
  from scaling.plots import cli as plots_cli
  from scaling.sweep import results

  started = time.perf_counter()
  code = _train(config, workdir)
  if code is not None:
    return code
  trained = time.perf_counter() - started
  rows = results.read(workdir)
  fits = _fit_approaches(workdir, rows, bootstrap, isoflop_bootstrap)
  plots_cli.main([workdir, "--fit", storage.join(workdir, "fit_isoflop.json"),
                  "--fit", storage.join(workdir, "fit_parametric.json")])
  _print_summary(rows, fits, trained, isoflop_bootstrap)
  print(f"total {(time.perf_counter() - started) / 60:.1f} min; outputs in {workdir}")
  return 0


def _train(config, workdir: str) -> int | None:
  """Plans and trains the sweep (finished runs are skipped); the exit code if it did not finish."""
  from scaling.sweep import plan as plan_lib
  from scaling.sweep import runner

  plan = plan_lib.build(config, workdir)
  print(plan.table(), flush=True)
  outcome = runner.run(plan)
  if outcome.preempted:
    from scaling.cli import signal_exit_code

    print(f"preempted during {outcome.preempted} ({outcome.signal}): run the same command again "
          "to resume", file=sys.stderr)
    return signal_exit_code(outcome.signal)
  if outcome.failed:
    for name, reason in outcome.failed.items():
      print(f"failed: {name}: {reason}", file=sys.stderr)
    return 1
  return None


def _fit_approaches(workdir: str, rows: list[dict], bootstrap: int,
                    isoflop_bootstrap: int) -> dict[str, dict]:
  """Approach 2 (printing the fitter's tables and the noise table), again with Kaplan's N (quiet:
  only its a is summarized) and Approach 3; their reports by name, each also saved in `workdir`."""
  print("\n== Approach 2: isoFLOP profiles (Hoffmann et al. 2022, sec. 3.2) ==")
  noise_bootstrap = ["--bootstrap", str(isoflop_bootstrap)]  # the default kind: noise
  isoflop = _fit(["--data", workdir, "--approach", "isoflop", *noise_bootstrap],
                 storage.join(workdir, "fit_isoflop.json"))
  pooled = isoflop["bootstrap"]["seed_sd"], isoflop["bootstrap"]["seed_dof"]
  print("\nEach budget's profile against the run noise measured by replicate seeds:")
  print("\n".join(noise_lines(profile_noise(rows, isoflop), pooled)))
  with contextlib.redirect_stdout(io.StringIO()):
    non_embedding = _fit(["--data", workdir, "--approach", "isoflop", "--n-column",
                          "params_non_embedding", *noise_bootstrap],
                         storage.join(workdir, "fit_isoflop_non_embedding.json"))
  print("\n== Approach 3: parametric L(N, D) = E + A/N^α + B/D^β (sec. 3.3) ==")
  parametric = _fit(["--data", workdir, "--approach", "parametric", "--law", "chinchilla",
                     "--bootstrap", str(bootstrap)], storage.join(workdir, "fit_parametric.json"))
  return {"isoflop": isoflop, "non_embedding": non_embedding, "parametric": parametric}


def _print_summary(rows: list[dict], fits: dict[str, dict], trained: float,
                   isoflop_bootstrap: int) -> None:
  """The exponents of both approaches with their intervals, the compute-optimal N and D at 10×
  the largest budget, and the held-out check."""
  isoflop, non_embedding, parametric = fits["isoflop"], fits["non_embedding"], fits["parametric"]
  largest = max(r["budget"] for r in rows)
  target = 10 * largest
  k_n, k_d = isoflop["params"]["k_N"], isoflop["params"]["k_D"]
  print(f"\n== Summary ({len(rows)} runs, trained in {trained / 60:.1f} min; N = all parameters, "
        "C = training FLOPs, chinchilla convention) ==")
  print(f"Approach 2: N_opt ∝ C^a, a = {_interval(isoflop, 'a')}; "
        f"D_opt ∝ C^b, b = {_interval(isoflop, 'b')}")
  print(interval_line(isoflop["bootstrap"], isoflop_bootstrap, rows))
  moved = non_embedding["a"] - isoflop["a"]
  print(f"  with N = non-embedding parameters (Kaplan et al.'s) instead of all: a = "
        f"{_interval(non_embedding, 'a')}, a moved by {moved:+.3f} (the "
        "embeddings, 2·256·d_model, are a larger share of the smaller models' N)")
  print(f"Approach 3: a = {_interval(parametric, 'a')}; b = {_interval(parametric, 'b')} "
        "(β/(α+β), α/(α+β): exact when C ∝ N·D; its CI resamples the runs as independent points)")
  print(f"Compute-optimal at C = {target:.3g} FLOPs (10× the largest budget), Approach 2: "
        f"N_opt = {k_n * target ** isoflop['a']:,.0f} parameters, "
        f"D_opt = {k_d * target ** isoflop['b']:,.0f} tokens")
  n_opt, d_opt = _parametric_optimum(parametric["params"], rows, target)
  n_here, _ = _parametric_optimum(parametric["params"], rows, largest)
  print(f"  Approach 3, on the runs' own FLOPs per token: N_opt = {n_opt:,.0f}, D_opt = {d_opt:,.0f} "
        f"(local a = {np.log(n_opt / n_here) / np.log(target / largest):.3f})")
  print(_holdout_check(rows))
  print("Chinchilla found a ≈ 0.49 (Approach 2) and 0.46 (Approach 3) at 1e18–1e22 FLOPs; these "
        "models are ~1e4 parameters, byte-level, where embeddings, logits and attention dominate "
        "the FLOPs, so their exponents need not match (README, 'The demo').")

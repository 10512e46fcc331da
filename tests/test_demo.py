"""The demo's own arithmetic: the parametric optimum on the family's FLOPs, the held-out check."""

import math
import os

import numpy as np
import pytest

from scaling import demo, storage
from scaling.sweep import plan as plan_lib
from scaling.sweep import results

LAW = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann et al. 2022


def isoflop_rows(budgets=(1e18, 1e19, 1e20), sizes=7):
  """Runs on C = 6ND with losses from LAW, sizes spread around each budget's optimum."""
  rows = []
  for budget in budgets:
    for n in np.geomspace(1e7, 1e10, sizes):
      d = budget / (6 * n)
      loss = LAW["E"] + LAW["A"] * n ** -LAW["alpha"] + LAW["B"] * d ** -LAW["beta"]
      rows.append({"params": n, "tokens": d, "flops": budget, "loss": loss, "budget": budget})
  return rows


def test_parametric_optimum_matches_the_closed_form_when_c_is_6nd():
  budget = 1e21
  alpha, beta = LAW["alpha"], LAW["beta"]
  g = (alpha * LAW["A"] / (beta * LAW["B"])) ** (1 / (alpha + beta))
  n_expected = g * (budget / 6) ** (beta / (alpha + beta))  # Hoffmann et al. 2022, eq. (4)
  n_opt, d_opt = demo._parametric_optimum(LAW, isoflop_rows(), budget)
  assert n_opt == pytest.approx(n_expected, rel=2e-3)
  assert 6 * n_opt * d_opt == pytest.approx(budget, rel=1e-9)


def test_holdout_check_reports_prediction_against_measurement():
  line = demo._holdout_check(isoflop_rows())
  assert line.startswith("held-out budget 1e+20 FLOPs, fitted on the 14 runs below it")
  predicted, measured = (float(x) for x in
                         line.split("predicted optimal loss ")[1].split(" measured")[0].split(" vs "))
  assert predicted == pytest.approx(measured, rel=0.05)


def test_demo_sweep_meets_the_issue_shape():
  config = demo.demo_config()
  budgets = config.sweep.budgets
  assert len(budgets) >= 4 and math.log10(max(budgets) / min(budgets)) >= 1.5
  assert config.sweep.sizes_per_budget >= 5 and config.sweep.replicate_seeds
  assert config.sweep.kind == "isoflop" and config.base.data.source == "stdlib"
  plan = plan_lib.build(config, "/demo")
  for run in plan.runs:  # the smooth ladder: one head width, never a one-layer model
    assert run.model.head_dim == 4 and run.model.n_layers >= 2
  assert {run.budget for run in plan.runs if run.config.seed != config.base.seed} == set(
      config.sweep.replicate_budgets)


@pytest.mark.slow  # 12 tiny runs: about a minute on an idle 2-core CPU
def test_a_reduced_demo_trains_replicates_fits_and_sets_profiles_against_seed_noise(
    tmp_path, capsys):
  config = demo.demo_config()
  config.base.model.seq_len = 32
  config.sweep.budgets = (1.2e10, 2.4e10, 4.8e10)
  config.sweep.sizes_per_budget = 3
  config.sweep.size_span = 4.0
  config.sweep.optimum = "sizes"
  config.sweep.optimum_sizes = (4.7e3, 8.3e3, 1.29e4)
  config.sweep.replicate_budgets = (1.2e10,)
  workdir = str(tmp_path / "demo")
  assert demo.run(config, workdir, bootstrap=20) == 0
  out = capsys.readouterr().out
  rows = results.read(workdir)
  assert len(rows) == 12 and sorted({row["seed"] for row in rows}) == [0, 1]
  assert sum(row["name"].endswith("_s1") for row in rows) == 3
  # The noise table: one line per budget, the replicated one with its seed SD and degrees of
  # freedom, and the pooled spread, the fit's own, named in the interval's explanation too.
  bootstrap = storage.read_json(os.path.join(workdir, "fit_isoflop.json"))["bootstrap"]
  assert bootstrap["kind"].startswith("noise:") and bootstrap["seed_dof"] == 3
  pooled = f"{bootstrap['seed_sd']:.4f} (3 df"
  assert f"pooled over all budgets {pooled})" in out and f"replicate runs, {pooled}," in out
  assert "(3 df)" in out.split("Each budget's profile")[1].splitlines()[2]
  assert "noise resamples: the design kept" in out and "with N = non-embedding parameters" in out
  assert f"σ = {bootstrap['sigma']:.4f} nats" in out
  assert "held-out budget 4.8e+10 FLOPs" in out
  for name in ("isoflop", "parametric_contours", "training_curves"):
    assert os.path.getsize(os.path.join(workdir, "figures", f"{name}.png")) > 10_000


def replicated_rows(sd=0.01, seeds=3):
  """Runs on C = 6ND at 5 sizes over a factor 6 around each budget's optimum, as the demo's grid,
  each under `seeds` seeds with losses scattered by `sd`."""
  rng = np.random.default_rng(0)
  alpha, beta = LAW["alpha"], LAW["beta"]
  g = (alpha * LAW["A"] / (beta * LAW["B"])) ** (1 / (alpha + beta))
  rows = []
  for budget in (1e18, 1e19, 1e20):
    n_opt = g * (budget / 6) ** (beta / (alpha + beta))  # Hoffmann et al. 2022, eq. (4)
    for n in n_opt * np.geomspace(1 / 2.5, 2.5, 5):
      d = budget / (6 * n)
      loss = LAW["E"] + LAW["A"] * n ** -alpha + LAW["B"] * d ** -beta
      for seed in range(seeds):
        rows.append({"params": n, "tokens": d, "flops": budget, "budget": budget, "seed": seed,
                     "loss": loss + sd * rng.standard_normal()})
  return rows


def test_interval_line_names_sigma_and_where_it_came_from():
  rows = replicated_rows(seeds=2)
  bootstrap = {"kept": 1990, "sigma": 0.0225, "sigma_source": "parabolas", "seed_sd": 0.0216,
               "seed_dof": 15, "residual_rms": 0.0225, "residual_dof": 19.4}
  line = demo.interval_line(bootstrap, 2000, rows)
  assert "over 1990 of 2000 noise resamples: the design kept" in line
  assert "σ = 0.0225 nats" in line and "0.0216 (15 df, from 15 sizes trained under 2" in line
  assert "0.0225 (19.4 df) (here the residual RMS)" in line
  unmeasured = demo.interval_line({**bootstrap, "seed_sd": None, "seed_dof": 0,
                                   "sigma_source": "parabolas"}, 2000, rows[::2])
  assert "the seed SD (unmeasured: no replicate runs)" in unmeasured


def test_profile_noise_measures_each_budget_as_the_noise_bootstrap_does():
  """A budget's row is `run_noise` of that budget alone: the seeds' SD of log loss and the
  residuals relative to the parabola, both in nats at the budget's mean loss."""
  from scaling.fit import isoflop

  rows = replicated_rows(sd=0.01)
  budget = np.array([r["budget"] for r in rows])
  columns = [np.array([r[k] for r in rows]) for k in ("params", "tokens", "loss")]
  report = {"window": isoflop.WINDOW, "optima": []}
  table = demo.profile_noise(rows, report)
  for row, profile in zip(table, isoflop.isoflop_profiles(budget, *columns, grouped=False)):
    mean_loss = profile.loss.mean()
    log_sd = np.sqrt(sum(np.var(np.log(profile.loss[profile.log_params == n]), ddof=1) * 2
                         for n in np.unique(profile.log_params)) / 10)  # 5 sizes, 2 df each
    assert row["seed_dof"] == 10 and row["seed_sd"] == pytest.approx(mean_loss * log_sd)
    assert row["optimum"] is None
  single = demo.profile_noise(rows[::3], report)  # one seed, so only the residuals measure noise
  assert all(row["seed_dof"] == 0 and math.isnan(row["seed_sd"]) for row in single)
  assert all(row["residual"] > 0 for row in single)


def test_profile_noise_sees_the_seed_noise_in_the_residuals():
  from scaling.fit import isoflop

  rows = replicated_rows(sd=0.01)
  budget = np.array([r["budget"] for r in rows])
  columns = [np.array([r[k] for r in rows]) for k in ("params", "tokens", "loss")]
  optima = isoflop.isoflop(budget, *columns, grouped=False)
  report = {"window": isoflop.WINDOW,
            "optima": [{"flops": c, "N_opt": n} for c, n in zip(optima.flops_M, optima.params_M)]}
  table = demo.profile_noise(rows, report)
  assert [row["budget"] for row in table] == [1e18, 1e19, 1e20]
  for row in table:
    assert row["sizes"] == 5 and row["runs"] == 15 and row["seed_dof"] == 10
    assert 0.005 < row["seed_sd"] < 0.015
    # The law is smooth, so what the parabola leaves is the seed noise (plus its curvature error).
    assert 0.5 < row["residual"] / row["seed_sd"] < 2
    assert row["depth"] > 0 and row["optimum"]["N_opt"] > 0
  noise = isoflop.run_noise(isoflop.isoflop_profiles(budget, *columns, grouped=False))
  lines = demo.noise_lines(table, (noise.seed_sd, noise.seed_dof))
  assert len(lines) == 5 and f"pooled over all budgets {noise.seed_sd:.4f} (30 df)" in lines[-1]

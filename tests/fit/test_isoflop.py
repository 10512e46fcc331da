"""Hoffmann's approach 2 (IsoFLOP) recovers a known law's exponents; its bootstraps cover them."""

import numpy as np
import pytest

import calibration
from fit_synthetic import hoffmann_loss, isoflop_grid
from scaling.errors import InputError
from scaling.fit import bench, isoflop

H = bench.HOFFMANN
TRUE_A = H["beta"] / (H["alpha"] + H["beta"])  # Hoffmann et al. 2022 eq. 4: 0.4516
G = (H["alpha"] * H["A"] / (H["beta"] * H["B"])) ** (1 / (H["alpha"] + H["beta"]))  # N_opt = G(C/6)^a


def test_isoflop_recovers_a_within_0_02():
  budgets, params, tokens, loss = isoflop_grid(np.geomspace(1e18, 1e21, 7), sigma=0.002, seed=1)
  optima = isoflop.isoflop(budgets, params, tokens, loss)
  assert optima.a == pytest.approx(TRUE_A, abs=0.02)
  assert optima.b == pytest.approx(1 - TRUE_A, abs=0.02)
  assert optima.flops_M.size == 7
  # With C = 6ND exactly, D_opt = C / (6 N_opt) at every budget.
  np.testing.assert_allclose(optima.tokens_M, optima.flops_M / (6 * optima.params_M), rtol=1e-10)


def test_isoflop_bootstrap_interval_contains_a():
  budgets, params, tokens, loss = isoflop_grid(np.geomspace(1e18, 1e21, 7), sigma=0.002, seed=1)
  samples = isoflop.isoflop_bootstrap(budgets, params, tokens, loss, resamples=200, seed=0)
  lo, hi = np.percentile(samples["a"], [2.5, 97.5])
  assert lo < TRUE_A < hi and hi - lo < 0.05


def test_a_wide_skewed_grid_needs_the_window():
  """One set of sizes (1e7-1e12) for every budget, as real sweeps train: the grid is skewed
  differently at each budget, and a parabola through every point bends to the far losses; the
  window around the minimum does not."""
  rows = []
  for c in np.geomspace(1e18, 1e21, 6):
    for n in np.geomspace(1e7, 1e12, 21):
      rows.append((c, n, c / (6 * n), hoffmann_loss(n, c / (6 * n))))
  budgets, params, tokens, loss = (np.array(x) for x in zip(*rows))
  windowed = isoflop.isoflop(budgets, params, tokens, loss)
  every_point = isoflop.isoflop(budgets, params, tokens, loss, window=0)
  assert windowed.a == pytest.approx(TRUE_A, abs=0.01)
  assert abs(every_point.a - TRUE_A) > 0.05
  assert all(5 <= p.fitted.sum() <= 6 for p in windowed.profiles)
  assert all(np.all(p.fitted) for p in every_point.profiles)


def test_unbracketed_budget_is_left_out_with_a_warning_naming_it(capsys):
  budgets, params, tokens, loss = isoflop_grid([1e18, 1e19, 1e20])
  beyond = (budgets == 1e20) & (params > np.median(params[budgets == 1e20]))
  keep = ~beyond  # the 1e20 budget now ends at its optimum: its lowest loss is its largest size
  optima = isoflop.isoflop(budgets[keep], params[keep], tokens[keep], loss[keep])
  assert optima.flops_M.tolist() == [1e18, 1e19]
  message = "isoFLOP budget 1e+20: lowest loss at the largest size, no bracketed minimum"
  assert message in capsys.readouterr().err and any(message in w for w in optima.warnings)
  assert optima.profiles[2].skipped


def test_non_convex_budget_is_left_out():
  budgets, params, tokens, loss = isoflop_grid([1e18, 1e19, 1e20])
  flipped = budgets == 1e20
  loss = np.where(flipped, 2 * loss[flipped].mean() - loss, loss)  # lowest at both ends
  optima = isoflop.isoflop(budgets, params, tokens, loss, window=0, quiet=True)
  assert optima.flops_M.tolist() == [1e18, 1e19]
  assert "isoFLOP budget 1e+20: loss is not convex in log N; budget left out" in optima.warnings


def llama3_like_points(seed=0):
  """133 points over 9 budgets as in Llama 3's Fig. 2 (6e18-1e22 FLOPs, up to 16 sizes each),
  with N and D digitised to 3 significant digits and C recomputed as 6·N·D."""
  rng = np.random.default_rng(seed)
  budgets_M = np.array([6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 1e22])
  sizes_M = [16, 16, 16, 16, 16, 16, 15, 12, 10]
  rows = []
  for c, sizes in zip(budgets_M, sizes_M):
    n_opt = G * (c / 6) ** TRUE_A
    for n in n_opt * np.geomspace(1 / 10, 10, sizes) * np.exp(0.02 * rng.standard_normal(sizes)):
      n_read, d_read = float(f"{n:.3g}"), float(f"{c / (6 * n):.3g}")
      rows.append((6 * n_read * d_read, n_read, d_read, hoffmann_loss(n_read, d_read)))
  assert len(rows) == 133
  return budgets_M, sizes_M, *(np.array(x) for x in zip(*rows))


def test_recomputed_flops_group_into_their_budgets():
  budgets_M, sizes_M, flops, params, tokens, loss = llama3_like_points()
  assert np.unique(flops).size > 100  # as floats, nearly every row is its own "budget"
  index_P, grouped_M = isoflop.group_budgets(flops)
  np.testing.assert_allclose(grouped_M, budgets_M, rtol=0.01)
  assert np.bincount(index_P).tolist() == sizes_M
  optima = isoflop.isoflop(flops, params, tokens, loss, quiet=True)
  assert optima.flops_M.size == 9 and optima.a == pytest.approx(TRUE_A, abs=0.03)


def test_exact_grouping_names_the_distinct_values():
  _, _, flops, params, tokens, loss = llama3_like_points()
  with pytest.raises(InputError, match=r"isoFLOP budget .* has 1 model size; a parabola"):
    isoflop.isoflop(flops, params, tokens, loss, grouped=False)
  near = np.array([1e19, 1.01e19, 1.02e19, 2e19, 2e19, 2e19])
  with pytest.raises(InputError, match=r"budget 1.01e\+19 has 2 model sizes \(FLOP values "
                                       r"1e\+19, 1.01e\+19, 1.02e\+19, grouped within 0.1"):
    isoflop.isoflop(near, np.array([1, 2, 2, 1, 2, 3.0]) * 1e8, np.full(6, 1e9), np.full(6, 3.0))


def test_resampling_draws_sizes_then_their_seeds():
  """Each drawn size brings its replicate runs (seeds), drawn with replacement: per resample, a
  size's counts sum to (times drawn) x (its seeds), and the sizes' draws sum to the sizes."""
  size_P = np.repeat(np.arange(4), 3)
  seed_P = np.tile(["s0", "s1", "s2"], 4)
  counts_BxP = isoflop._resample_counts(np.random.default_rng(0), size_P, seed_P, 500)
  per_size_BxS = counts_BxP.reshape(500, 4, 3).sum(axis=2)
  assert np.all(per_size_BxS % 3 == 0) and np.all(per_size_BxS.sum(axis=1) == 12)
  assert counts_BxP.std() > 0 and (counts_BxP.reshape(500, 4, 3).std(axis=2) > 0).any()


@pytest.mark.parametrize("seeds, sweeps", [(1, 200), (3, 200)])
def test_case_bootstrap_intervals_cover_the_truth_where_sizes_are_many(seeds, sweeps):
  """The case bootstrap (`--bootstrap-kind cases`) where it is calibrated: 9 sizes × 1.6, σ = 0.5 %
  loss noise (the windowed parabolas' residuals on Porian et al.'s points are 0.1-0.35 %), the 95 %
  intervals of a and b contain the true exponents in 90-99 % of 200 sweeps (binomial spread
  ±1.5 %), one seed per size and 3 replicate seeds per size."""
  row = calibration.isoflop_coverage({"seeds": seeds}, 0.005, sweeps, kind="cases")
  assert row["failed"] == 0 and 0.90 <= row["a"] <= 0.99 and 0.90 <= row["b"] <= 0.99, row


CALIBRATED = {"demo": "demo: 4 budgets over 1.5 decades, 5 sizes × 8^(1/4), 2 seeds, σ 0.42 %",
              "demo-1-seed": "demo with 1 seed",
              "9x1.6-7-budgets-1-seed": "9 sizes × 1.6, 7 budgets 1e18-1e21, 1 seed, σ 0.5 %"}


@pytest.mark.parametrize("design", CALIBRATED.values(), ids=CALIBRATED.keys())
def test_default_interval_covers_the_truth_at_its_estimators_width(design):
  """The default interval (noise bootstrap, relative noise, ± t(0.975, ν)·IQR/1.349) at the demo's
  design with σ from 2 seeds (ν ≈ 20) and from the parabolas alone (1 seed, ν ≈ 7, where 1.96 in
  place of t covered 91 %), and at 7 budgets over 3 decades (the optimal loss falls by a third;
  σ pooled in nats made it 1.2x wide): 400 sweeps of 200 resamples cover the true a and b in 92-98 % (binomial
  SD ±1.1 %; the true coverage is 94-97 %, docs/fit.md), and the median width is at most
  1.2 × 3.92 × the SD of the estimates across the sweeps. About 4 s of CPU each."""
  row = calibration.isoflop_coverage(*calibration.DESIGNS[design], 400)
  assert row["failed"] == 0 and 0.92 <= row["a"] <= 0.98 and 0.92 <= row["b"] <= 0.98, row
  assert row["width_ratio"] <= 1.2, row


def test_noise_bootstrap_measures_sigma_and_scales_with_it():
  """σ is the larger of the seeds' SD and the parabolas' residual RMS (a profile bent off its
  parabola raises the second, not the first); the spread of a follows σ; no replicates and no
  residual degrees of freedom, or an unknown kind, is an error."""
  budgets, params, tokens, loss, seed = calibration.sweep(np.random.default_rng(3), 0.004,
                                                          **calibration.DEMO)
  noise = isoflop.run_noise(isoflop.isoflop_profiles(budgets, params, tokens, loss))
  assert noise.seed_dof == 20 and noise.residual_dof > 0
  assert noise.sigma == max(noise.seed_sd, noise.residual_rms)
  assert noise.source == ("seeds" if noise.seed_sd >= noise.residual_rms else "parabolas")
  # the same for each seed:
  zigzag = 0.04 * np.cos(np.pi * np.log(params) / np.log(calibration.DEMO["step"]))
  bent = isoflop.run_noise(isoflop.isoflop_profiles(budgets, params, tokens, loss + zigzag))
  assert bent.source == "parabolas" and bent.seed_sd == pytest.approx(noise.seed_sd, rel=0.01)
  assert bent.sigma > 2 * noise.seed_sd
  truth = hoffmann_loss(params, tokens)
  sd = {}
  for scale in (0.5, 1):  # halving the noise, where a's spread is still linear in it
    samples = isoflop.isoflop_bootstrap(budgets, params, tokens, truth + scale * (loss - truth),
                                        resamples=400, seed=0, kind="noise")
    assert samples["N_opt_BxM"].shape == (400, 4)
    sd[scale] = samples["a"].std()
  assert 1.6 < sd[1] / sd[0.5] < 2.4, sd
  with pytest.raises(InputError, match="cannot measure the runs' noise"):
    isoflop.run_noise(isoflop.isoflop_profiles(
        np.repeat([1e18, 1e19], 3), np.tile([1e8, 2e8, 4e8], 2), np.full(6, 1e9),
        np.tile([3.1, 3.0, 3.1], 2)))
  with pytest.raises(InputError, match="one of cases, noise, got 'wild'"):
    isoflop.isoflop_bootstrap(budgets, params, tokens, loss, resamples=2, seed=0, kind="wild")


def test_noise_is_measured_and_redrawn_relative_to_each_loss():
  """Replicate runs with 1 % log-normal noise at two budgets whose losses differ by a third: σ over
  loss_scale (the runs' mean loss) is that 1 %, and a noise resample's SD at every run is that
  fraction of the run's loss, so less in nats at the budget with the lower losses."""
  budgets, params, tokens, loss, _ = calibration.sweep(
      np.random.default_rng(5), 0.01, budgets=np.array([1e18, 1e21]), sizes=7, step=1.6, seeds=6)
  profiles = isoflop.isoflop_profiles(budgets, params, tokens, loss)
  noise = isoflop.run_noise(profiles)
  assert noise.loss_scale == pytest.approx(loss.mean())
  assert noise.seed_dof == 70 and noise.relative == pytest.approx(0.01, rel=0.2)
  sd_in_nats = []
  for profile in profiles:
    draws_BxP = isoflop._noise_losses(np.random.default_rng(0), profile, noise.relative, 4000)
    relative_sd_P = draws_BxP.std(axis=0) / draws_BxP.mean(axis=0)
    assert relative_sd_P == pytest.approx(np.full(relative_sd_P.size, noise.relative), rel=0.05)
    sd_in_nats.append(draws_BxP.std(axis=0).mean())
  assert sd_in_nats[1] / sd_in_nats[0] == pytest.approx(
      loss[budgets == 1e21].mean() / loss[budgets == 1e18].mean(), rel=0.05)
  assert sd_in_nats[1] < 0.75 * sd_in_nats[0]


def test_residual_degrees_of_freedom_make_the_weighted_rms_unbiased():
  """With weights 0 or 1 a parabola leaves the points less 3; with the window's fractional edge
  weights, Σw·r² / ν still averages σ² (Σw − 3 would overstate σ² by 28 % here)."""
  log_n = np.log(np.geomspace(1e8, 1e9, 7))
  assert isoflop._residual_dof(log_n, np.array([0, 1, 1, 1, 1, 1, 0.0])) == pytest.approx(2)
  weights = np.array([0.3, 1, 1, 1, 1, 1, 0.3])
  noise_BxP = np.random.default_rng(0).standard_normal((20000, 7))
  design = np.vander(log_n - log_n.mean(), 3)
  fitted = np.linalg.solve(design.T @ (weights[:, None] * design), (design.T * weights) @ noise_BxP.T)
  residual_ss = (weights * (noise_BxP - (design @ fitted).T) ** 2).sum(axis=1).mean()
  dof = isoflop._residual_dof(log_n, weights)
  assert residual_ss / dof == pytest.approx(1, abs=0.02) and dof > weights.sum() - 3 + 0.3


def test_student_t_quantile_matches_scipy():
  from scipy import stats

  for dof in (0.7, 1, 2, 7.4, 20, 500):
    assert isoflop.student_t_975(dof) == pytest.approx(stats.t.ppf(0.975, dof), rel=1e-5)
  assert isoflop.interval_quantile("cases", 7) == 1.96
  assert isoflop.interval_quantile("noise", 20) == pytest.approx(2.086, abs=1e-3)

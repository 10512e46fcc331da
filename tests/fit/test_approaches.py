"""Hoffmann's approaches 1 and 2 recover a known law's exponents; the frontier is Pareto-minimal."""

import numpy as np
import pytest

from fit_synthetic import hoffmann_loss, isoflop_grid
from scaling.errors import InputError
from scaling.fit import approaches, bench, intervals

H = bench.HOFFMANN
TRUE_A = H["beta"] / (H["alpha"] + H["beta"])  # Hoffmann et al. 2022 eq. 4: 0.4516
G = (H["alpha"] * H["A"] / (H["beta"] * H["B"])) ** (1 / (H["alpha"] + H["beta"]))  # N_opt = G(C/6)^a


def test_isoflop_recovers_a_within_0_02():
  budgets, params, tokens, loss = isoflop_grid(np.geomspace(1e18, 1e21, 7), sigma=0.002, seed=1)
  optima = approaches.isoflop(budgets, params, tokens, loss)
  assert optima.a == pytest.approx(TRUE_A, abs=0.02)
  assert optima.b == pytest.approx(1 - TRUE_A, abs=0.02)
  assert optima.flops_M.size == 7
  # With C = 6ND exactly, D_opt = C / (6 N_opt) at every budget.
  np.testing.assert_allclose(optima.tokens_M, optima.flops_M / (6 * optima.params_M), rtol=1e-10)


def test_isoflop_bootstrap_interval_contains_a():
  budgets, params, tokens, loss = isoflop_grid(np.geomspace(1e18, 1e21, 7), sigma=0.002, seed=1)
  samples = approaches.isoflop_bootstrap(budgets, params, tokens, loss, resamples=200, seed=0)
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
  windowed = approaches.isoflop(budgets, params, tokens, loss)
  every_point = approaches.isoflop(budgets, params, tokens, loss, window=0)
  assert windowed.a == pytest.approx(TRUE_A, abs=0.01)
  assert abs(every_point.a - TRUE_A) > 0.05
  assert all(5 <= p.fitted.sum() <= 6 for p in windowed.profiles)
  assert all(np.all(p.fitted) for p in every_point.profiles)


def test_unbracketed_budget_is_left_out_with_a_warning_naming_it(capsys):
  budgets, params, tokens, loss = isoflop_grid([1e18, 1e19, 1e20])
  beyond = (budgets == 1e20) & (params > np.median(params[budgets == 1e20]))
  keep = ~beyond  # the 1e20 budget now ends at its optimum: its lowest loss is its largest size
  optima = approaches.isoflop(budgets[keep], params[keep], tokens[keep], loss[keep])
  assert optima.flops_M.tolist() == [1e18, 1e19]
  message = "isoFLOP budget 1e+20: lowest loss at the largest size, no bracketed minimum"
  assert message in capsys.readouterr().err and any(message in w for w in optima.warnings)
  assert optima.profiles[2].skipped


def test_non_convex_budget_is_left_out():
  budgets, params, tokens, loss = isoflop_grid([1e18, 1e19, 1e20])
  flipped = budgets == 1e20
  loss = np.where(flipped, 2 * loss[flipped].mean() - loss, loss)  # lowest at both ends
  optima = approaches.isoflop(budgets, params, tokens, loss, window=0, quiet=True)
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
  index_P, grouped_M = approaches.group_budgets(flops)
  np.testing.assert_allclose(grouped_M, budgets_M, rtol=0.01)
  assert np.bincount(index_P).tolist() == sizes_M
  optima = approaches.isoflop(flops, params, tokens, loss, quiet=True)
  assert optima.flops_M.size == 9 and optima.a == pytest.approx(TRUE_A, abs=0.03)


def test_exact_grouping_names_the_distinct_values():
  _, _, flops, params, tokens, loss = llama3_like_points()
  with pytest.raises(InputError, match=r"isoFLOP budget .* has 1 model size; a parabola"):
    approaches.isoflop(flops, params, tokens, loss, grouped=False)
  near = np.array([1e19, 1.01e19, 1.02e19, 2e19, 2e19, 2e19])
  with pytest.raises(InputError, match=r"budget 1.01e\+19 has 2 model sizes \(FLOP values "
                                       r"1e\+19, 1.01e\+19, 1.02e\+19, grouped within 0.1"):
    approaches.isoflop(near, np.array([1, 2, 2, 1, 2, 3.0]) * 1e8, np.full(6, 1e9), np.full(6, 3.0))


def test_resampling_draws_sizes_then_their_seeds():
  """Each drawn size brings its replicate runs (seeds), drawn with replacement: per resample, a
  size's counts sum to (times drawn) x (its seeds), and the sizes' draws sum to the sizes."""
  size_P = np.repeat(np.arange(4), 3)
  seed_P = np.tile(["s0", "s1", "s2"], 4)
  counts_BxP = approaches._resample_counts(np.random.default_rng(0), size_P, seed_P, 500)
  per_size_BxS = counts_BxP.reshape(500, 4, 3).sum(axis=2)
  assert np.all(per_size_BxS % 3 == 0) and np.all(per_size_BxS.sum(axis=1) == 12)
  assert counts_BxP.std() > 0 and (counts_BxP.reshape(500, 4, 3).std(axis=2) > 0).any()


def sweep(rng, sigma, budgets=np.geomspace(1e18, 1e21, 7), sizes=9, step=1.6, seeds=1):
  """An isoFLOP sweep of Hoffmann's law: per budget, `sizes` sizes a factor `step` apart, the
  grid offset from N_opt by up to ± one step (real grids are not centred on the unknown optimum),
  `seeds` replicate runs each (one count, or one per budget) with log-normal noise σ."""
  rows = []
  for c, seeds_of_budget in zip(budgets, np.broadcast_to(seeds, len(budgets))):
    centre = G * (c / 6) ** TRUE_A * step ** rng.uniform(-1, 1)
    for n in centre * step ** (np.arange(sizes) - (sizes - 1) / 2):
      for seed in range(seeds_of_budget):
        rows.append((c, n, c / (6 * n), hoffmann_loss(n, c / (6 * n))
                     * np.exp(sigma * rng.standard_normal()), seed))
  return [np.array(x) for x in zip(*rows)]


# `scaling demo`'s design: 4 budgets over 1.5 decades, 5 sizes spanning a factor 8 (size_span),
# every size under 2 seeds; before, the largest budget had one (the calibration table's rows).
DEMO_DESIGN = {"budgets": np.geomspace(1e18, 10**19.5, 4), "sizes": 5, "step": 8 ** (1 / 4),
               "seeds": 2}
EARLIER_DEMO_DESIGN = {**DEMO_DESIGN, "seeds": (2, 2, 2, 1)}
# Noise for it: 0.42 % puts its profiles ≈ 9 σ deep, as the demo's own runs are (docs/fit.md); 0.29 %
# is quieter, 0.94 % noisier.
DEMO_SIGMAS = (0.0029, 0.0042, 0.0094)


def coverage(rng, sigma, sweeps, kind="cases", resamples=200, **design):
  """(fraction of sweeps whose 95 % intervals contain the true a, the same for b, the widths of
  a's intervals, sweeps without an estimate) for the isoFLOP bootstrap of `kind` on synthetic
  `sweep`s; a sweep with fewer than 2 budgets that have a minimum has no estimate and is left out."""
  covered = {"a": 0, "b": 0}
  widths, failed = [], 0
  for i in range(sweeps):
    budgets, params, tokens, loss, seed = sweep(rng, sigma, **design)
    try:
      optima = approaches.isoflop(budgets, params, tokens, loss, quiet=True)
    except InputError:
      failed += 1
      continue
    samples = approaches.isoflop_bootstrap(budgets, params, tokens, loss, resamples=resamples,
                                           seed=i, replicate_P=seed, kind=kind)
    _, ci95 = intervals.summarize_normal({"a": samples["a"], "b": samples["b"]},
                                         {"a": optima.a, "b": optima.b})
    covered["a"] += ci95["a"][0] <= TRUE_A <= ci95["a"][1]
    covered["b"] += ci95["b"][0] <= 1 - TRUE_A <= ci95["b"][1]
    widths.append(ci95["a"][1] - ci95["a"][0])
  estimated = sweeps - failed
  return covered["a"] / estimated, covered["b"] / estimated, np.array(widths), failed


@pytest.mark.parametrize("seeds, sweeps", [(1, 200), (3, 200)])
def test_isoflop_intervals_cover_the_truth(seeds, sweeps):
  """Calibration: on synthetic sweeps with σ = 0.5 % loss noise (the windowed parabolas' residuals
  on Porian et al.'s points are 0.1-0.35 %, with 2 of 5 degrees of freedom left), the 95 %
  intervals of a and b contain the true exponents in 90-99 % of them: 200 sweeps (binomial
  spread ±2 %), one seed per size and 3 replicate seeds per size."""
  covered_a, covered_b, _, failed = coverage(np.random.default_rng(0), 0.005, sweeps, seeds=seeds)
  assert failed == 0 and 0.90 <= covered_a <= 0.99 and 0.90 <= covered_b <= 0.99, (covered_a, covered_b)


def test_noise_bootstrap_covers_the_truth_at_the_demos_design():
  """Calibration of the noise bootstrap where the case bootstrap is too wide: the demo's design
  (few sizes, so drawing them with replacement often leaves 3 distinct ones), σ = 0.42 % of the
  loss: the profiles are then ≈ 9 σ deep (Hoffmann's law, span 8), as the demo's own runs are
  (≈ 9.6: depth 0.12-0.21 nats, seed SD 0.0175). 200 sweeps of 2000 resamples, as the demo draws."""
  covered_a, covered_b, _, failed = coverage(np.random.default_rng(0), 0.0042, 200, kind="noise",
                                             resamples=2000, **DEMO_DESIGN)
  assert failed == 0 and 0.90 <= covered_a <= 0.99 and 0.90 <= covered_b <= 0.99, (covered_a, covered_b)


def test_noise_bootstrap_measures_sigma_and_scales_with_it():
  """σ is the larger of the seeds' SD and the parabolas' residual RMS (a profile bent off its
  parabola raises the second, not the first); the spread of a follows σ; no replicates and no
  residual degrees of freedom, or an unknown kind, is an error."""
  budgets, params, tokens, loss, seed = sweep(np.random.default_rng(3), 0.004, **DEMO_DESIGN)
  noise = approaches.run_noise(approaches.isoflop_profiles(budgets, params, tokens, loss))
  assert noise.seed_dof == 20 and noise.residual_dof > 0
  assert noise.sigma == max(noise.seed_sd, noise.residual_rms)
  assert noise.source == ("seeds" if noise.seed_sd >= noise.residual_rms else "parabolas")
  zigzag = 0.04 * np.cos(np.pi * np.log(params) / np.log(DEMO_DESIGN["step"]))  # same for each seed
  bent = approaches.run_noise(approaches.isoflop_profiles(budgets, params, tokens, loss + zigzag))
  assert bent.source == "parabolas" and bent.seed_sd == pytest.approx(noise.seed_sd)
  assert bent.sigma > 2 * noise.seed_sd
  truth = hoffmann_loss(params, tokens)
  sd = {}
  for scale in (0.5, 1):  # halving the noise, where a's spread is still linear in it
    samples = approaches.isoflop_bootstrap(budgets, params, tokens, truth + scale * (loss - truth),
                                           resamples=400, seed=0, kind="noise")
    assert samples["N_opt_BxM"].shape == (400, 4)
    sd[scale] = samples["a"].std()
  assert 1.6 < sd[1] / sd[0.5] < 2.4, sd
  with pytest.raises(InputError, match="cannot measure the runs' noise"):
    approaches.run_noise(approaches.isoflop_profiles(
        np.repeat([1e18, 1e19], 3), np.tile([1e8, 2e8, 4e8], 2), np.full(6, 1e9),
        np.tile([3.1, 3.0, 3.1], 2)))
  with pytest.raises(InputError, match="one of cases, noise, got 'wild'"):
    approaches.isoflop_bootstrap(budgets, params, tokens, loss, resamples=2, seed=0, kind="wild")


if __name__ == "__main__":  # docs/fit.md's calibration table: python tests/fit/test_approaches.py
  designs = {"9 sizes × 1.6, 7 budgets 1e18-1e21": ({}, (0.005,)),
             "demo: 5 sizes × 8^(1/4), 4 budgets 1.5 decades, 2 seeds": (DEMO_DESIGN, DEMO_SIGMAS),
             "earlier demo: the largest budget 1 seed": (EARLIER_DEMO_DESIGN, DEMO_SIGMAS)}
  for label, (design, sigmas) in designs.items():
    for sigma in sigmas:
      for kind, resamples in (("cases", 200), ("noise", 200), ("noise", 2000)):
        a, b, widths, failed = coverage(np.random.default_rng(123), sigma, 300, kind, resamples,
                                        **design)
        print(f"{label} | σ {100 * sigma:.2f} % | {kind} × {resamples} | a covered {100 * a:.1f} % | "
              f"b {100 * b:.1f} % | width of a's interval: median {np.median(widths):.3f}, "
              f"wider than 0.2 in {100 * np.mean(widths > 0.2):.1f} % | no estimate {failed}",
              flush=True)


def test_envelope_of_training_curves_recovers_a():
  sizes = np.geomspace(3e7, 3e9, 13)
  tokens = np.geomspace(1e8, 3e11, 60)
  run, params, seen = (np.repeat(np.arange(13), 60), np.repeat(sizes, 60), np.tile(tokens, 13))
  optima = approaches.envelope(run, 6 * params * seen, params, seen, hoffmann_loss(params, seen))
  assert optima.a == pytest.approx(TRUE_A, abs=0.01)
  assert optima.b == pytest.approx(1 - TRUE_A, abs=0.01)
  assert optima.params_M.min() > sizes.min() and optima.params_M.max() < sizes.max()


def test_envelope_needs_three_sizes():
  run = np.repeat([0, 1], 5)
  values = np.tile(np.geomspace(1e9, 1e10, 5), 2)
  with pytest.raises(InputError, match="at least 3 model sizes"):
    approaches.envelope(run, values, np.repeat([1e7, 1e8], 5), values, np.full(10, 3.0))


def test_frontier_keeps_points_no_smaller_x_beats():
  x = np.array([1, 2, 2, 3, 4, 5.0])
  loss = np.array([5, 4, 4.5, 4.2, 3, 3.0])
  assert approaches.frontier_mask(x, loss).tolist() == [True, True, False, False, True, False]

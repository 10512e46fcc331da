"""Laws are data: each log-space function matches its published form, with its names and grid."""

import itertools

import jax
import numpy as np
import pytest

from scaling.errors import InputError
from scaling.fit import laws, optimize


def _log_loss(law, theta, *inputs):
  with jax.enable_x64(True):
    return np.asarray(law.log_loss(np.asarray(theta), np.log(np.stack(inputs, axis=1))))


RNG = np.random.default_rng(0)
N = 10 ** RNG.uniform(6, 11, 50)
D = 10 ** RNG.uniform(8, 13, 50)


def test_registry_has_the_four_laws():
  assert {"power", "saturating", "kaplan", "chinchilla"} <= set(laws.LAWS)
  with pytest.raises(InputError, match="unknown law 'nope'"):
    laws.get("nope")


def test_chinchilla_is_hoffmann_eq_2_in_lse_form():
  law = laws.get("chinchilla")
  theta = np.array([6.0, 6.1, 0.5, 0.34, 0.28])
  params = law.params(theta)
  direct = params["E"] + params["A"] / N ** params["alpha"] + params["B"] / D ** params["beta"]
  np.testing.assert_allclose(_log_loss(law, theta, N, D), np.log(direct), rtol=1e-13)
  assert law.param_names == ("E", "A", "B", "alpha", "beta")


def test_kaplan_is_eq_1_5():
  law = laws.get("kaplan")
  theta = np.array([np.log(6.4e13), np.log(1.8e13), 0.076, 0.103])
  direct = ((6.4e13 / N) ** (0.076 / 0.103) + 1.8e13 / D) ** 0.103
  np.testing.assert_allclose(_log_loss(law, theta, N, D), np.log(direct), rtol=1e-13)


def test_one_input_laws():
  theta = np.array([3.0, 0.076])
  np.testing.assert_allclose(_log_loss(laws.get("power"), theta, N), np.log(np.exp(3.0) * N ** -0.076))
  theta = np.array([6.0, 0.5, 0.3])
  np.testing.assert_allclose(_log_loss(laws.get("saturating"), theta, N),
                             np.log(np.exp(0.5) + np.exp(6.0) * N ** -0.3), rtol=1e-13)


def test_chinchilla_grid_is_hoffmanns_4500_starts():
  starts = laws.get("chinchilla").starts()
  assert starts.shape == (4500, 5)
  a, b, e, alpha, beta = (np.unique(starts[:, i]) for i in range(5))
  np.testing.assert_array_equal(alpha, [0, 0.5, 1, 1.5, 2])
  np.testing.assert_array_equal(beta, alpha)
  np.testing.assert_array_equal(e, [-1, -0.5, 0, 0.5, 1])
  np.testing.assert_array_equal(a, [0, 5, 10, 15, 20, 25])
  np.testing.assert_array_equal(b, a)


def test_exponents_are_hoffmann_eq_4():
  a, b = laws.get("chinchilla").exponents({"alpha": 0.34, "beta": 0.28})
  assert a == pytest.approx(0.28 / 0.62) and b == pytest.approx(0.34 / 0.62)


def test_a_new_law_is_one_function_plus_one_registration(monkeypatch, points_sigma_0001):
  monkeypatch.setattr(laws, "LAWS", dict(laws.LAWS))
  laws.register(laws.Law(
      name="data_only", inputs=("D",), theta_names=("b", "e", "beta"),
      log_loss=lambda t, log_x: laws.logsumexp(t[0] - t[2] * log_x[:, 0], t[1]),
      start_grid=((0.0, 5.0), (0.0, 1.0), (0.2, 0.5)),
      params=lambda t: {"E": np.exp(t[..., 1]), "B": np.exp(t[..., 0]), "beta": t[..., 2]}))
  _, tokens, _ = points_sigma_0001
  loss = 2.0 + 300.0 / tokens ** 0.3
  result = optimize.fit("data_only", (tokens,), loss)
  assert result.starts == len(list(itertools.product((0, 5), (0, 1), (0.2, 0.5))))
  assert result.params["beta"] == pytest.approx(0.3, rel=1e-6)
  assert result.params["E"] == pytest.approx(2.0, rel=1e-6)


# Muennighoff et al. 2023's fit on C4 (their Appendix), to generate points from.
MUENNIGHOFF = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.353, "beta": 0.353,
               "R_D_star": 15.4, "R_N_star": 5.3}


def _data_constrained_numpy(p, n, d, u):
  """The paper's eqs. 5-7 written directly: effective data D' and parameters N'."""
  u = np.minimum(u, d)  # unique tokens seen
  r_d = np.maximum(d / u - 1, 0)
  d_eff = u + u * p["R_D_star"] * (1 - np.exp(-r_d / p["R_D_star"]))
  g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
  n_for_u = g * (g * u) ** (p["beta"] / p["alpha"])  # N_opt at the budget where D_opt = U
  u_n = np.minimum(n, n_for_u)
  r_n = np.maximum(n / u_n - 1, 0)
  n_eff = u_n + u_n * p["R_N_star"] * (1 - np.exp(-r_n / p["R_N_star"]))
  return p["E"] + p["A"] / n_eff ** p["alpha"] + p["B"] / d_eff ** p["beta"]


def _theta(p):
  return [np.log(p["A"]), np.log(p["B"]), np.log(p["E"]), p["alpha"], p["beta"],
          np.log(p["R_D_star"]), np.log(p["R_N_star"])]


def test_data_constrained_is_muennighoff_eqs_5_to_7():
  law = laws.get("data_constrained")
  epochs = 10 ** RNG.uniform(-0.5, 2, 50)  # some runs see less than their unique data
  unique = D / epochs
  np.testing.assert_allclose(np.exp(_log_loss(law, _theta(MUENNIGHOFF), N, D, unique)),
                             _data_constrained_numpy(MUENNIGHOFF, N, D, unique), rtol=1e-10)
  # One epoch of data, and a model no larger than that data's compute-optimal one: Chinchilla.
  p = MUENNIGHOFF
  g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
  small = N < g * (g * D) ** (p["beta"] / p["alpha"])  # U_D = D here
  assert small.sum() > 10
  np.testing.assert_allclose(_log_loss(law, _theta(MUENNIGHOFF), N[small], D[small], 10 * D[small]),
                             _log_loss(laws.get("chinchilla"), _theta(MUENNIGHOFF)[:5], N[small],
                                       D[small]), rtol=1e-12)
  assert law.param_names == ("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star")


def test_data_constrained_fit_recovers_r_d_and_r_n():
  """Runs like datablations': sizes 1e7-9e9, 1-60 epochs of 1e8-1e11 unique tokens, σ = 0.3 %."""
  rng = np.random.default_rng(1)
  n = 10 ** rng.uniform(7, 10, 300)
  unique = 10 ** rng.uniform(8, 11, 300)
  tokens = unique * 10 ** rng.uniform(0, np.log10(60), 300)
  loss = _data_constrained_numpy(MUENNIGHOFF, n, tokens, unique) * np.exp(
      0.003 * rng.standard_normal(300))
  # A small grid bracketing the truth keeps the test fast; the default grid has 40,500 starts.
  starts = np.array(list(itertools.product((5.0, 7.0), (6.0, 8.0), (0.5,), (0.4,), (0.4,),
                                           (2.0, 3.0), (1.0, 2.0))))
  fit = optimize.fit("data_constrained", (n, tokens, unique), loss, starts=starts)
  assert fit.params["R_D_star"] == pytest.approx(15.4, rel=0.25)
  assert fit.params["R_N_star"] == pytest.approx(5.3, rel=0.35)
  assert fit.params["alpha"] == pytest.approx(0.353, abs=0.03)


def test_with_fixed_fits_the_free_parameters_only(points_sigma_0001):
  params, tokens, loss = points_sigma_0001
  h = optimize.fit("chinchilla", (params, tokens), loss).params
  staged = laws.with_fixed(laws.get("chinchilla"), {"E": h["E"], "A": h["A"], "B": h["B"]})
  assert staged.theta_names == ("alpha", "beta") and len(staged.starts()) == 25
  fit = optimize.fit(staged, (params, tokens), loss)
  assert fit.params["E"] == pytest.approx(h["E"], rel=1e-12)
  assert fit.params["alpha"] == pytest.approx(h["alpha"], rel=1e-6)
  assert fit.params["beta"] == pytest.approx(h["beta"], rel=1e-6)
  with pytest.raises(InputError, match="law chinchilla has no parameter G to fix"):
    laws.with_fixed(laws.get("chinchilla"), {"G": 1.0})
  with pytest.raises(InputError, match="fixed A must be positive"):
    laws.with_fixed(laws.get("chinchilla"), {"A": -1.0})

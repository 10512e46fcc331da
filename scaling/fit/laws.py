"""Scaling laws as data: a pure function of fitted parameters and inputs, names, and a start grid.

Every law predicts the log of the loss from parameters θ in an unconstrained log space. Hoffmann et
al. 2022 (App. D.2) fit E + A/N^α + B/D^β as LSE(a − α log N, b − β log D, e) with A = e^a, B = e^b,
E = e^e: every term stays positive without constraints, and the Huber loss on log residuals is
scale-free. `params` maps θ to the numbers people quote (E, A, B, α, β).

A new law is one function plus one `register(Law(...))`, here: its entry carries all that
`scaling fit` (`--law`'s choices, the power terms it checks for a vanished term) and the contour
figure (the formula, θ from a report's quoted parameters) know of it. This module imports JAX
only when a law is evaluated, so `scaling fit --help` lists the laws without importing JAX.

Shapes: T fitted parameters, P points, I inputs of a law (N, D or one x), B leading batch dims.
"""

import dataclasses
import functools
import itertools
from collections.abc import Callable

import numpy as np

from scaling.errors import InputError


def logsumexp(*terms):
  """log Σ exp(terms), stable. The largest term is factored out as a constant for autodiff: the
  value does not depend on it, so the derivatives stay exact and cost fewer operations."""
  import jax
  import jax.numpy as jnp

  top = jax.lax.stop_gradient(functools.reduce(jnp.maximum, terms))
  return top + jnp.log(sum(jnp.exp(term - top) for term in terms))


@dataclasses.dataclass(frozen=True)
class Law:
  """One scaling law. `log_loss(theta_T, log_x_PxI) -> log L̂_P` must be jax-traceable."""

  name: str
  inputs: tuple[str, ...]  # what each column of log_x is: "N" (params), "D" (tokens) or "x"
  theta_names: tuple[str, ...]
  log_loss: Callable
  start_grid: tuple[tuple[float, ...], ...]  # values per θ name; the starts are their product
  params: Callable  # theta_BxT (numpy) -> {quoted name: value_B}
  # (a, b) with N_opt ∝ C^a and D_opt ∝ C^b when C ∝ N·D, for laws of (N, D) that define them.
  exponents: Callable | None = None
  formula: str = ""  # the law and where it is published, for reports and figure titles
  # Power terms coefficient·input^-exponent the fit may drive to 0 (`scaling fit` warns), as
  # (quoted coefficient, e^θ; quoted exponent, θ; column of log_x).
  terms: tuple[tuple[str, str, int], ...] = ()

  @property
  def param_names(self) -> tuple[str, ...]:
    return tuple(self.params(np.zeros((1, len(self.theta_names)))))

  def starts(self) -> np.ndarray:
    """The start grid as an S x T array, in θ order."""
    return np.array(list(itertools.product(*self.start_grid)), dtype=np.float64)


LAWS: dict[str, Law] = {}


def register(law: Law) -> Law:
  LAWS[law.name] = law
  return law


def of_inputs(*inputs: str) -> list[str]:
  """The names of the laws of exactly these inputs: "x", the one-input laws a frontier fit takes;
  "N", "D", those `--compute` allocates and the contour figure draws."""
  return [name for name, law in LAWS.items() if law.inputs == inputs]


def get(name: str) -> Law:
  if name not in LAWS:
    raise InputError(f"unknown law {name!r}; known: {', '.join(LAWS)}")
  return LAWS[name]


def theta_of(law: Law, quoted: dict) -> np.ndarray:
  """θ from the parameters a report quotes (`params`' names): a fit report is enough to evaluate
  its law. A missing name raises KeyError."""
  theta = np.zeros(len(law.theta_names))
  for name, (t, exponentiated) in quoted_to_theta(law).items():
    theta[t] = np.log(quoted[name]) if exponentiated else quoted[name]
  return theta


def quoted_to_theta(law: Law) -> dict[str, tuple[int, bool]]:
  """Each quoted parameter's θ index and whether it is e^θ (else θ itself): every law here
  quotes each fitted value either as it is or exponentiated, which a probe of `params` finds."""
  zero = law.params(np.zeros((1, len(law.theta_names))))
  mapping = {}
  for t in range(len(law.theta_names)):
    probe = np.zeros((1, len(law.theta_names)))
    probe[0, t] = 0.5
    for name, value in law.params(probe).items():
      if not np.isclose(value[0], zero[name][0]):
        mapping[name] = (t, bool(np.isclose(zero[name][0], 1.0)))
  return mapping


def with_fixed(law: Law, values: dict[str, float]) -> Law:
  """`law` with some quoted parameters held at `values` and the rest fitted: a fit in stages,
  as Muennighoff et al. 2023 fit R_D* and R_N* with the single-epoch law held fixed. The
  derived law keeps the name, quotes every parameter (the fixed ones too), and starts from the
  free parameters' grid."""
  mapping = quoted_to_theta(law)
  unknown = sorted(set(values) - set(mapping))
  if unknown:
    raise InputError(f"law {law.name} has no parameter {', '.join(unknown)} to fix; it has "
                     f"{', '.join(mapping)}")
  fixed_theta = {}
  for name, value in values.items():
    index, exponentiated = mapping[name]
    if exponentiated and not value > 0:
      raise InputError(f"fixed {name} must be positive, got {value}")
    fixed_theta[index] = float(np.log(value)) if exponentiated else float(value)
  free = tuple(t for t in range(len(law.theta_names)) if t not in fixed_theta)
  if not free:
    raise InputError(f"every parameter of law {law.name} is fixed: nothing to fit")
  fixed_index = tuple(fixed_theta)
  fixed_value = tuple(fixed_theta.values())

  def full(theta_xT, xp):
    parts = [None] * len(law.theta_names)
    for j, t in enumerate(free):
      parts[t] = theta_xT[..., j]
    for t, value in zip(fixed_index, fixed_value):
      parts[t] = xp.full(theta_xT.shape[:-1], value, dtype=theta_xT.dtype)
    return xp.stack(parts, axis=-1)

  def log_loss(theta_T, log_x_PxI):
    import jax.numpy as jnp

    return law.log_loss(full(theta_T, jnp), log_x_PxI)

  return Law(
      name=law.name, inputs=law.inputs,
      theta_names=tuple(law.theta_names[t] for t in free),
      log_loss=log_loss,
      start_grid=tuple(law.start_grid[t] for t in free),
      params=lambda t: law.params(full(np.asarray(t, dtype=np.float64), np)),
      exponents=law.exponents, formula=f"{law.formula}; fixed: "
      + ", ".join(f"{k} = {v:g}" for k, v in values.items()), terms=law.terms)


def _power(theta_T, log_x_PxI):
  a, alpha = theta_T
  return a - alpha * log_x_PxI[:, 0]


def _saturating(theta_T, log_x_PxI):
  a, e, alpha = theta_T
  return logsumexp(a - alpha * log_x_PxI[:, 0], e)


def _kaplan(theta_T, log_x_PxI):
  log_n_c, log_d_c, alpha_n, alpha_d = theta_T
  log_n, log_d = log_x_PxI[:, 0], log_x_PxI[:, 1]
  return alpha_d * logsumexp(alpha_n / alpha_d * (log_n_c - log_n), log_d_c - log_d)


def _chinchilla(theta_T, log_x_PxI):
  a, b, e, alpha, beta = theta_T
  log_n, log_d = log_x_PxI[:, 0], log_x_PxI[:, 1]
  return logsumexp(a - alpha * log_n, b - beta * log_d, e)


def _data_constrained(theta_T, log_x_PxI):
  """Muennighoff et al. 2023 eqs. 5-7: repeated tokens and parameters beyond what the unique data
  can use are worth less, saturating at R_D* (R_N*) repetitions' worth."""
  import jax.numpy as jnp

  a, b, e, alpha, beta, log_r_d, log_r_n = theta_T
  log_n, log_d = log_x_PxI[:, 0], log_x_PxI[:, 1]
  log_u = jnp.minimum(log_x_PxI[:, 2], log_d)  # U_D: the unique tokens seen (all, if D < U)
  r_d_star, r_n_star = jnp.exp(log_r_d), jnp.exp(log_r_n)
  repeats_d = jnp.maximum(jnp.exp(log_d - log_u) - 1.0, 0.0)  # R_D: epochs beyond the first
  log_d_eff = log_u + jnp.log1p(r_d_star * -jnp.expm1(-repeats_d / r_d_star))
  # U_N: the compute-optimal size for U_D tokens under the law's own (A, B, α, β) (Hoffmann
  # eq. 4: N_opt = G·(C/6)^(β/(α+β)), D_opt = (C/6)^(α/(α+β))/G, G = (αA/(βB))^(1/(α+β))).
  log_g = (jnp.log(alpha) + a - jnp.log(beta) - b) / (alpha + beta)
  log_u_n = jnp.minimum(log_n, log_g + beta / alpha * (log_g + log_u))
  repeats_n = jnp.maximum(jnp.exp(log_n - log_u_n) - 1.0, 0.0)
  log_n_eff = log_u_n + jnp.log1p(r_n_star * -jnp.expm1(-repeats_n / r_n_star))
  return logsumexp(a - alpha * log_n_eff, b - beta * log_d_eff, e)


# Grids. Hoffmann et al. 2022 App. D.2: α, β ∈ {0, 0.5, …, 2}, e ∈ {−1, −0.5, …, 1},
# a, b ∈ {0, 5, …, 25}: 4,500 starts. The other laws reuse its ranges for the terms they share.
_EXPONENTS = (0.0, 0.5, 1.0, 1.5, 2.0)
_LOG_E = (-1.0, -0.5, 0.0, 0.5, 1.0)
_LOG_COEFFICIENTS = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)

register(Law(
    name="chinchilla",
    inputs=("N", "D"),
    theta_names=("a", "b", "e", "alpha", "beta"),
    log_loss=_chinchilla,
    start_grid=(_LOG_COEFFICIENTS, _LOG_COEFFICIENTS, _LOG_E, _EXPONENTS, _EXPONENTS),
    params=lambda t: {"E": np.exp(t[..., 2]), "A": np.exp(t[..., 0]), "B": np.exp(t[..., 1]),
                      "alpha": t[..., 3], "beta": t[..., 4]},
    # Hoffmann et al. 2022 eq. 4: N_opt ∝ C^(β/(α+β)), D_opt ∝ C^(α/(α+β)).
    exponents=lambda p: (p["beta"] / (p["alpha"] + p["beta"]),
                         p["alpha"] / (p["alpha"] + p["beta"])),
    formula="L(N, D) = E + A/N^α + B/D^β, Hoffmann et al. 2022 eq. 2, fitted in LSE form (App. D.2)",
    terms=(("A", "alpha", 0), ("B", "beta", 1)),
))

register(Law(
    name="kaplan",
    inputs=("N", "D"),
    theta_names=("log_n_c", "log_d_c", "alpha_n", "alpha_d"),
    log_loss=_kaplan,
    # α_N/α_D divides: the grid keeps α_D away from 0. Kaplan's fit: log N_c 31.8, log D_c 30.5.
    start_grid=((10.0, 20.0, 30.0, 40.0), (10.0, 20.0, 30.0, 40.0), (0.05, 0.1, 0.2, 0.5),
                (0.05, 0.1, 0.2, 0.5)),
    params=lambda t: {"N_c": np.exp(t[..., 0]), "D_c": np.exp(t[..., 1]), "alpha_N": t[..., 2],
                      "alpha_D": t[..., 3]},
    # Minimising (N_c/N)^(α_N/α_D) + D_c/D at N·D = C/6 gives N_opt ∝ C^(α_D/(α_N+α_D)).
    exponents=lambda p: (p["alpha_D"] / (p["alpha_N"] + p["alpha_D"]),
                         p["alpha_N"] / (p["alpha_N"] + p["alpha_D"])),
    formula="L(N, D) = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D, Kaplan et al. 2020 eq. 1.5",
))

register(Law(
    name="power",
    inputs=("x",),
    theta_names=("a", "alpha"),
    log_loss=_power,
    # Linear in θ once logged, so the Huber objective is convex: a few starts only check that.
    start_grid=((0.0, 5.0, 10.0), (0.0, 0.5, 1.0)),
    params=lambda t: {"A": np.exp(t[..., 0]), "alpha": t[..., 1]},
    formula="L = A·x^-α; Kaplan et al. 2020 eqs. 1.1-1.3 write it (x_c/x)^α with A = x_c^α",
))

register(Law(
    name="saturating",
    inputs=("x",),
    theta_names=("a", "e", "alpha"),
    log_loss=_saturating,
    start_grid=(_LOG_COEFFICIENTS, _LOG_E, _EXPONENTS),
    params=lambda t: {"E": np.exp(t[..., 1]), "A": np.exp(t[..., 0]), "alpha": t[..., 2]},
    formula="L = E + A·x^-α: a power law plus irreducible loss (Hoffmann et al. 2022 eq. 2, one input)",
    terms=(("A", "alpha", 0),),
))

register(Law(
    name="data_constrained",
    inputs=("N", "D", "U"),
    theta_names=("a", "b", "e", "alpha", "beta", "log_r_d", "log_r_n"),
    log_loss=_data_constrained,
    # Hoffmann's grid without exponents of 0 (U_N divides by α), times R* ∈ {e, e^2, e^3}.
    start_grid=(_LOG_COEFFICIENTS, _LOG_COEFFICIENTS, _LOG_E, _EXPONENTS[1:], _EXPONENTS[1:],
                (1.0, 2.0, 3.0), (1.0, 2.0, 3.0)),
    params=lambda t: {"E": np.exp(t[..., 2]), "A": np.exp(t[..., 0]), "B": np.exp(t[..., 1]),
                      "alpha": t[..., 3], "beta": t[..., 4], "R_D_star": np.exp(t[..., 5]),
                      "R_N_star": np.exp(t[..., 6])},
    formula=("L = E + A/N'^α + B/D'^β with D' = U_D + U_D·R_D*·(1 - e^(-R_D/R_D*)), "
             "N' = U_N + U_N·R_N*·(1 - e^(-R_N/R_N*)), U_D = min(U, D), R_D = D/U_D - 1, "
             "U_N = min(N, N_opt(U_D)), "
             "R_N = N/U_N - 1: Muennighoff et al. 2023 eqs. 5-7"),
    terms=(("A", "alpha", 0), ("B", "beta", 1)),
))

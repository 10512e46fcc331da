"""Compute-optimal allocation from a fitted law of (N, D): N_opt(C), D_opt(C), tokens per parameter.

At a budget C spent as C = f(N)·D FLOPs (f the training FLOPs per token; 6N by default, Kaplan et
al. 2020 sec. 2.1), the optimal size minimises L(N, C/f(N)) over N (Hoffmann et al. 2022 eq. 1).
For Chinchilla's law with f = 6N this has a closed form (Hoffmann et al. 2022 eq. 4); solving it
numerically instead serves every law and every FLOP convention with one code path, and the tests
check it against the closed form. The search runs in u = log N: a 512-point grid brackets the
minimum, golden-section search (Kiefer 1953) narrows the bracket, and Newton steps on dL/du finish:
the loss is flat at its minimum, so comparing values alone cannot place it closer than ~1e-7.

Shapes: B parameter sets (bootstrap resamples), M budgets, Q (θ, budget) pairs, G grid points,
T fitted parameters.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from scaling.errors import InputError
from scaling.fit import laws as laws_lib
from scaling.fit import optimize

_GRID = 512
_GOLDEN_STEPS = 40
_NEWTON_STEPS = 4
_INVERSE_GOLDEN = (np.sqrt(5.0) - 1) / 2


def six_n(n):
  """Training FLOPs per token ≈ 6N: 2N forward, 4N backward (Kaplan et al. 2020 sec. 2.1)."""
  return 6.0 * n


def flops_per_token_law(params_P, flops_P, tokens_P) -> tuple[float, float, float]:
  """(k, p, worst relative miss) of f(N) = k·N^p fitted to runs' flops / tokens (least squares in
  log-log). It carries a sweep's own FLOP convention (embeddings, attention, logits) to any N;
  for these models f is close to proportional to N."""
  per_token_P = np.asarray(flops_P, dtype=np.float64) / np.asarray(tokens_P, dtype=np.float64)
  params_P = np.asarray(params_P, dtype=np.float64)
  if np.unique(params_P).size < 2:
    raise InputError("FLOPs per token need runs of at least 2 sizes to extend to other sizes")
  p, log_k = np.polyfit(np.log(params_P), np.log(per_token_P), 1)
  if p <= 0:
    raise InputError("FLOPs per token do not grow with N in these runs; no C -> D mapping")
  miss = np.max(np.abs(np.exp(log_k) * params_P**p / per_token_P - 1))
  return float(np.exp(log_k)), float(p), float(miss)


@functools.partial(jax.jit, static_argnums=(0, 3), compiler_options=optimize.COMPILER_OPTIONS)
def _optimal_log_n(law, theta_QxT, log_flops_Q, flops_per_token):
  """log N_opt of each (θ, budget) pair."""
  def log_loss(theta_T, log_flops, log_n_G):
    log_d_G = log_flops - jnp.log(flops_per_token(jnp.exp(log_n_G)))
    return law.log_loss(theta_T, jnp.stack([log_n_G, log_d_G], axis=1))

  def optimum(theta_T, log_flops):
    # N from 1 to C: beyond C / f(N) < 1 token, far past any optimum.
    grid_G = jnp.linspace(0.0, log_flops, _GRID)
    i = jnp.clip(jnp.argmin(log_loss(theta_T, log_flops, grid_G)), 1, _GRID - 2)

    def golden(_, bracket):
      lo, hi = bracket
      left, right = hi - _INVERSE_GOLDEN * (hi - lo), lo + _INVERSE_GOLDEN * (hi - lo)
      values = log_loss(theta_T, log_flops, jnp.stack([left, right]))
      return jnp.where(values[0] < values[1], jnp.stack([lo, right]), jnp.stack([left, hi]))

    lo, hi = jax.lax.fori_loop(0, _GOLDEN_STEPS, golden, jnp.stack([grid_G[i - 1], grid_G[i + 1]]))
    slope = jax.grad(lambda u: log_loss(theta_T, log_flops, u[None])[0])
    curvature = jax.grad(slope)

    def newton(_, u):
      step = slope(u) / curvature(u)
      return jnp.where(jnp.isfinite(step) & (curvature(u) > 0), u - step, u)

    return jax.lax.fori_loop(0, _NEWTON_STEPS, newton, 0.5 * (lo + hi))

  return jax.vmap(optimum)(theta_QxT, log_flops_Q)


@optimize.float64
def optimal_allocation(law, theta, flops, flops_per_token=six_n):
  """N_opt and D_opt (each [..., M]) of a law of (N, D) at budgets `flops` [M], for θ [T] or [B, T].

  `flops_per_token(N)` must be jax-traceable and increasing in N.
  """
  law = laws_lib.get(law) if isinstance(law, str) else law
  if law.inputs != ("N", "D"):
    raise InputError(f"law {law.name} is not a law of (N, D): no compute-optimal allocation")
  flops_M = np.atleast_1d(np.asarray(flops, dtype=np.float64))
  if not np.all(np.isfinite(flops_M) & (flops_M > 1)):
    raise InputError(f"compute budgets must be finite and > 1 FLOP, got {flops_M}")
  theta = np.asarray(theta, dtype=np.float64)
  theta_BxT = np.atleast_2d(theta)
  b, m = theta_BxT.shape[0], flops_M.size
  # All (θ, budget) pairs in one batch, padded to a multiple of 64 so calls share compiled code.
  pairs = b * m
  pad = -pairs % 64
  theta_QxT = np.concatenate([np.repeat(theta_BxT, m, axis=0), np.repeat(theta_BxT[:1], pad, axis=0)])
  log_flops_Q = np.concatenate([np.tile(np.log(flops_M), b), np.full(pad, np.log(flops_M[0]))])
  log_n_Q = np.asarray(_optimal_log_n(law, theta_QxT, log_flops_Q, flops_per_token))
  log_n_BxM = log_n_Q[:pairs].reshape(b, m)
  n_opt = np.exp(log_n_BxM)
  d_opt = flops_M / np.asarray(flops_per_token(n_opt))
  if theta.ndim == 1:
    return n_opt[0], d_opt[0]
  return n_opt, d_opt


def quantities(law, theta, budgets=(), flops_per_token=six_n) -> dict[str, np.ndarray]:
  """Everything worth an interval: the quoted parameters, the exponents a and b when the law
  defines them, and N_opt, D_opt and tokens per parameter at each budget. θ [T] or [B, T]."""
  law = laws_lib.get(law) if isinstance(law, str) else law
  params = law.params(np.asarray(theta, dtype=np.float64))
  values = dict(params)
  if law.exponents is not None:
    values["a"], values["b"] = law.exponents(params)
  if len(budgets):
    n_opt, d_opt = optimal_allocation(law, theta, budgets, flops_per_token)
    for m, flops in enumerate(budgets):
      values[f"N_opt@{flops:.3g}"] = n_opt[..., m]
      values[f"D_opt@{flops:.3g}"] = d_opt[..., m]
      values[f"tokens_per_param@{flops:.3g}"] = d_opt[..., m] / n_opt[..., m]
  return values

"""Multi-start fitting of a law: screen every start by its objective, polish the best with damped Newton.

Hoffmann et al. 2022 (App. D.2) run L-BFGS from each of 4,500 grid starts and keep the best. Run
as one vmapped batch, L-BFGS waits for its slowest start, and most of the grid starts far from any
plausible law (A = e^25 ...). Instead (the measurements behind both: docs/fit.md, "Optimizer"):

1. Screening. The objective *at the start* ranks the grid well enough that the `LANES` best-ranked
   starts, polished, reach the optimum of polishing them all. It costs one objective evaluation
   per start.
2. Polishing. With a handful of parameters, exact second derivatives are cheap, and damped Newton
   (Levenberg 1944, Marquardt 1963) converges in a few steps once close. Far from the optimum the
   Huber loss with δ = 1e-3 is nearly L1: its Hessian is almost zero and Newton is lost. There the
   IRLS matrix Jᵀ·diag(w·ψ(r)/r)·J sees the geometry (it majorises the Huber loss; it is
   Gauss-Newton for least squares). Each iteration solves both damped systems, keeps the step that
   lowers the objective more, and adapts each system's damping on its own (Madsen, Nielsen &
   Tingleff 2004, sec. 3.2). A start stops when a step gains less than `FTOL` of the objective or
   when no damping finds a descent; stopped starts stay frozen while the others finish.

Everything runs in float64 inside `float64`, which restores the caller's x64 setting on return.

Shapes: S starts, K polished lanes, T fitted parameters, P points (padded), I law inputs.
"""

import dataclasses
import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from scaling import checks
from scaling.errors import InputError
from scaling.fit import laws as laws_lib
from scaling.fit import objective as objective_lib

HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, App. D.2
LANES = 64  # starts polished at once; also the chunk size of bootstrap refits
MAX_ITERATIONS = 300
FTOL = 1e-12  # stop once a step lowers the objective by less than this fraction
AT_BEST_RTOL = 1e-8  # a start "reached the best" if its objective is this close (relative) ...
AT_BEST_ATOL = 1e-14  # ... or this close (absolute; for exact synthetic data, best ≈ 0)
_INITIAL_DAMPING = 1e-3
_MAX_DAMPING = 1e15  # a step this damped is ~1e-15 of a gradient step: nothing left to gain
_SCREEN_CHUNK = 512  # starts per screening call: one compiled shape, bounded memory
# XLA:CPU's newer fusion emitters compile the solver more slowly than the classic LLVM emitters,
# for the same run time, and compiling dominates a cold `scaling fit` (docs/fit.md, "Optimizer").
# Other backends ignore the option.
COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


def float64(fn):
  """Runs `fn` with jax_enable_x64 on, restoring the caller's setting (training keeps float32).

  The flag is process-global; `jax.enable_x64` scopes it (JAX >= 0.8). It is part of jit's cache
  key, so functions traced here are retraced, never reused, under float32.
  """

  @functools.wraps(fn)
  def in_float64(*args, **kwargs):
    with jax.enable_x64(True):
      return fn(*args, **kwargs)

  return in_float64


class Data(NamedTuple):
  """Points ready for the solver: logs, padded with zero-weight copies to a shared size."""

  log_x_PxI: np.ndarray
  log_loss_P: np.ndarray
  weights_P: np.ndarray
  n_points: int  # before padding


def _padded_size(n: int) -> int:
  """Rounds up by at most 12.5 % (multiples of ≥ 64) so nearby data sizes share compiled code."""
  step = max(64, 2 ** (n.bit_length() - 3))
  return -(-n // step) * step


def prepare(law: laws_lib.Law, inputs: Sequence, loss, weights=None) -> Data:
  """Checks points for `law` (one array per law input, then the losses) and takes logs."""
  if len(inputs) != len(law.inputs):
    raise InputError(f"law {law.name} takes {len(law.inputs)} inputs {law.inputs}, got {len(inputs)}")
  columns = [checks.positive_array(x, f"input {name}") for name, x in zip(law.inputs, inputs)]
  loss = checks.positive_array(loss, "loss")
  if weights is None:
    weights = np.ones_like(loss)
  weights = np.asarray(weights, dtype=np.float64)
  if any(c.shape != loss.shape for c in columns) or weights.shape != loss.shape:
    raise InputError(f"inputs, loss and weights differ in length: "
                     f"{[c.size for c in columns]}, {loss.size}, {weights.size}")
  if not np.all(np.isfinite(weights) & (weights >= 0)):
    raise InputError("weights must be finite and non-negative")
  n_points = int(np.count_nonzero(weights))
  if n_points <= len(law.theta_names):
    raise InputError(f"law {law.name} has {len(law.theta_names)} parameters but only "
                     f"{n_points} points; it needs more points than parameters")
  pad = _padded_size(loss.size) - loss.size
  log_x_PxI = np.log(np.stack(columns, axis=1))
  return Data(log_x_PxI=np.concatenate([log_x_PxI, np.repeat(log_x_PxI[:1], pad, axis=0)]),
              log_loss_P=np.concatenate([np.log(loss), np.repeat(np.log(loss[:1]), pad)]),
              weights_P=np.concatenate([weights, np.zeros(pad)]),
              n_points=loss.size)


def _objective_or_inf(law, theta_T, data: Data, weights_P, delta):
  value = objective_lib.objective(law, theta_T, data.log_x_PxI, data.log_loss_P, weights_P, delta)
  return jnp.where(jnp.isfinite(value), value, jnp.inf)


@functools.partial(jax.jit, static_argnums=0, compiler_options=COMPILER_OPTIONS)
def _objectives(law, theta_SxT, data: Data, delta):
  return jax.vmap(lambda t: _objective_or_inf(law, t, data, data.weights_P, delta))(theta_SxT)


def _screen(law, theta_SxT, data: Data, delta) -> np.ndarray:
  """The objective at every start, `_SCREEN_CHUNK` starts per call (the last chunk padded)."""
  values = []
  for begin in range(0, theta_SxT.shape[0], _SCREEN_CHUNK):
    chunk = theta_SxT[begin:begin + _SCREEN_CHUNK]
    padded = np.concatenate([chunk, np.repeat(chunk[:1], _SCREEN_CHUNK - chunk.shape[0], axis=0)])
    values.append(np.asarray(_objectives(law, padded, data, delta))[:chunk.shape[0]])
  return np.concatenate(values)


def _derivatives(law, theta_T, data: Data, weights_P, delta):
  """Gradient, exact Hessian and IRLS matrix of the objective Σ w·ρ(y − ŷ(θ)) at θ.

  With J = ∂ŷ/∂θ: gradient −Jᵀ(wψ), Hessian Jᵀdiag(wψ')J − Σ_p w_p ψ_p ∇²ŷ_p. The last term is
  the forward derivative of θ ↦ J(θ)ᵀ(wψ) with wψ held fixed: forward mode only, which traces,
  compiles and runs faster here than jax.hessian's forward-over-reverse.
  """
  def log_loss(t):
    return law.log_loss(t, data.log_x_PxI)

  r_P = data.log_loss_P - log_loss(theta_T)
  influence_P = weights_P * objective_lib.huber_influence(r_P, delta)  # w·ψ(r)
  inside_P = weights_P * (jnp.abs(r_P) <= delta)  # w·ψ'(r)

  def law_gradient(t):  # Jᵀ(wψ) with wψ held fixed, and J
    jacobian_PxT = jax.jacfwd(log_loss)(t)
    return jacobian_PxT.T @ influence_P, jacobian_PxT

  curvature_of_law_TxT, jacobian_PxT = jax.jacfwd(law_gradient, has_aux=True)(theta_T)
  gradient_T = -jacobian_PxT.T @ influence_P
  hessian_TxT = (jacobian_PxT.T * inside_P[None, :]) @ jacobian_PxT - curvature_of_law_TxT
  # ψ(r)/r: 1 inside ±δ, δ/|r| outside (a majoriser of the Huber loss, Holland & Welsch 1977).
  irls_weights_P = weights_P * jnp.where(jnp.abs(r_P) <= delta, 1.0, delta / jnp.abs(r_P))
  irls_TxT = (jacobian_PxT.T * irls_weights_P[None, :]) @ jacobian_PxT
  return gradient_T, hessian_TxT, irls_TxT


def _solve_positive_definite(matrix_xTxT, rhs_xT):
  """x with matrix·x = rhs by Gauss-Jordan elimination, NaN where the matrix is not positive
  definite (for a symmetric matrix, elimination without pivoting meets only positive pivots iff it
  is). Written out rather than LAPACK's Cholesky: jaxlib's LAPACK bindings import scipy on first
  use, which costs a `scaling fit` process more than the whole solve."""
  augmented = jnp.concatenate([matrix_xTxT, rhs_xT[..., None]], axis=-1)

  def eliminate(k, carry):
    augmented, smallest_pivot = carry
    row = jax.lax.dynamic_index_in_dim(augmented, k, axis=-2, keepdims=False)
    pivot = jax.lax.dynamic_index_in_dim(row, k, axis=-1, keepdims=False)
    row = row / pivot[..., None]
    column = jax.lax.dynamic_index_in_dim(augmented, k, axis=-1, keepdims=True)
    augmented = jax.lax.dynamic_update_index_in_dim(augmented - column * row[..., None, :], row, k,
                                                    axis=-2)
    return augmented, jnp.minimum(smallest_pivot, pivot)

  augmented, smallest_pivot = jax.lax.fori_loop(
      0, matrix_xTxT.shape[-1], eliminate, (augmented, jnp.full(matrix_xTxT.shape[:-2], jnp.inf)))
  return jnp.where(smallest_pivot[..., None] > 0, augmented[..., -1], jnp.nan)


class _Lanes(NamedTuple):
  """The state of the polished starts; index 0 of the last axis of `damping` is Newton, 1 IRLS."""

  theta: jax.Array
  value: jax.Array
  damping: jax.Array
  damping_growth: jax.Array
  stopped: jax.Array
  converged: jax.Array
  iterations: jax.Array


def _step(law, data: Data, delta, lane: _Lanes, weights_P) -> _Lanes:
  """One damped Newton / IRLS iteration of one start (Madsen, Nielsen & Tingleff 2004, alg. 3.16)."""
  gradient_T, hessian_TxT, irls_TxT = _derivatives(law, lane.theta, data, weights_P, delta)
  # Marquardt's scaling: damp each parameter by its own curvature, floored for unused terms.
  scale_T = jnp.diag(irls_TxT) + 1e-12 * jnp.max(jnp.diag(irls_TxT))
  curvature_2xTxT = jnp.stack([hessian_TxT, irls_TxT])
  system_2xTxT = curvature_2xTxT + lane.damping[:, None, None] * jnp.diag(scale_T)[None]
  step_2xT = _solve_positive_definite(system_2xTxT,
                                      -jnp.broadcast_to(gradient_T, (2, gradient_T.size)))
  trial_2xT = lane.theta[None, :] + step_2xT
  trial_value_2 = jax.vmap(lambda t: _objective_or_inf(law, t, data, weights_P, delta))(trial_2xT)
  trial_value_2 = jnp.where(jnp.isnan(trial_value_2), jnp.inf, trial_value_2)
  quadratic_2 = jnp.sum(step_2xT * (curvature_2xTxT @ step_2xT[..., None])[..., 0], axis=-1)
  predicted_2 = -(step_2xT @ gradient_T + 0.5 * quadratic_2)  # the decrease the model promises
  gain_2 = jnp.where(predicted_2 > 0, (lane.value - trial_value_2) / predicted_2, 0.0)
  improved_2 = trial_value_2 < lane.value
  # Nielsen's update (Madsen et al. 2004, eq. 3.15): shrink after a good step, grow ever faster
  # after consecutive failures.
  damping = jnp.where(improved_2,
                      lane.damping * jnp.maximum(1 / 3, 1 - (2 * jnp.clip(gain_2, 0, 1) - 1) ** 3),
                      lane.damping * lane.damping_growth)
  damping_growth = jnp.where(improved_2, 2.0, 2 * lane.damping_growth)
  best = jnp.argmin(trial_value_2)
  accepted = improved_2[best]
  new_value = jnp.where(accepted, trial_value_2[best], lane.value)
  small_gain = accepted & (lane.value - new_value <= FTOL * lane.value)
  no_descent = ~accepted & jnp.all(damping >= _MAX_DAMPING)
  moved = _Lanes(theta=jnp.where(accepted, trial_2xT[best], lane.theta), value=new_value,
                 damping=jnp.clip(damping, 1e-12, _MAX_DAMPING),
                 damping_growth=jnp.minimum(damping_growth, 1e6),
                 stopped=small_gain | no_descent, converged=small_gain | no_descent,
                 iterations=lane.iterations + 1)
  return jax.tree.map(lambda old, new: jnp.where(lane.stopped, old, new), lane, moved)


@functools.partial(jax.jit, static_argnums=0, compiler_options=COMPILER_OPTIONS)
def _polish(law, theta_KxT, data: Data, weights_KxP, delta, max_iterations):
  value_K = jax.vmap(lambda t, w: _objective_or_inf(law, t, data, w, delta))(theta_KxT, weights_KxP)
  lanes_k = theta_KxT.shape[0]
  lanes = _Lanes(theta=theta_KxT, value=value_K,
                 damping=jnp.full((lanes_k, 2), _INITIAL_DAMPING),
                 damping_growth=jnp.full((lanes_k, 2), 2.0),
                 stopped=~jnp.isfinite(value_K), converged=jnp.zeros(lanes_k, bool),
                 iterations=jnp.zeros(lanes_k, jnp.int32))
  step = jax.vmap(functools.partial(_step, law, data, delta))

  def running(carry):
    lanes, i = carry
    return (i < max_iterations) & ~jnp.all(lanes.stopped)

  def advance(carry):
    lanes, i = carry
    return step(lanes, weights_KxP), i + 1

  lanes, _ = jax.lax.while_loop(running, advance, (lanes, 0))
  return lanes.theta, lanes.value, lanes.converged, lanes.iterations


def polish(law, theta_NxT, data: Data, weights_NxP, delta, max_iterations=MAX_ITERATIONS,
           lanes=LANES):
  """Polishes N starts, each with its own point weights, `lanes` at a time (one compiled shape).

  Call inside `float64`. Returns numpy theta_NxT, objective_N, converged_N, iterations_N.
  """
  n = theta_NxT.shape[0]
  outputs = []
  for begin in range(0, n, lanes):
    chunk = slice(begin, min(begin + lanes, n))
    pad = lanes - (chunk.stop - chunk.start)
    theta = np.concatenate([theta_NxT[chunk], np.repeat(theta_NxT[chunk][:1], pad, axis=0)])
    weights = np.concatenate([weights_NxP[chunk], np.repeat(weights_NxP[chunk][:1], pad, axis=0)])
    result = _polish(law, theta, data, weights, delta, max_iterations)
    outputs.append([np.asarray(x)[:lanes - pad] for x in result])
  return [np.concatenate(parts) for parts in zip(*outputs)]


def delta_value(delta: float | None) -> float:
  """Huber δ for the solver; None means least squares."""
  if delta is None:
    return np.inf
  if not delta > 0:
    raise InputError(f"Huber delta must be positive, got {delta}")
  return float(delta)


@float64
def objective_value(law, theta, inputs: Sequence, loss, *, weights=None,
                    delta: float | None = HUBER_DELTA) -> float:
  """The objective of `law` at θ on the points, as `fit` minimises it."""
  law = laws_lib.get(law) if isinstance(law, str) else law
  data = prepare(law, inputs, loss, weights)
  return float(objective_lib.objective(law, jnp.asarray(theta, jnp.float64), data.log_x_PxI,
                                       data.log_loss_P, data.weights_P, delta_value(delta)))


@dataclasses.dataclass(frozen=True)
class StartResults:
  """Every start: where it began and ended. Screened-out starts keep their start values."""

  theta_start_SxT: np.ndarray
  objective_start_S: np.ndarray
  theta_SxT: np.ndarray
  objective_S: np.ndarray
  polished_S: np.ndarray
  converged_S: np.ndarray
  iterations_S: np.ndarray


@dataclasses.dataclass(frozen=True)
class Fit:
  """The best fit of a law, and how the multi-start search got there."""

  law: str
  params: dict[str, float]  # the quoted parameters (E, A, B, alpha, beta for chinchilla)
  theta: np.ndarray  # the fitted log-space parameters, in law.theta_names order
  objective: float
  n_points: int
  delta: float | None  # None: least squares
  starts: int  # grid starts screened
  starts_polished: int
  starts_at_best: int  # polished starts whose objective is within AT_BEST_* of the best
  converged: bool  # the best start stopped on its own, not at max_iterations
  per_start: StartResults | None = None


@float64
def fit(law, inputs: Sequence, loss, *, weights=None, delta: float | None = HUBER_DELTA,
        starts=None, polished_starts: int | None = LANES, max_iterations: int = MAX_ITERATIONS,
        per_start: bool = False) -> Fit:
  """Fits `law` to points: inputs in law order (N, D for chinchilla and kaplan; x for power and
  saturating), losses, optional weights. `starts` overrides the law's grid (an S x T array in θ
  space); `polished_starts=None` polishes every start instead of the screened best."""
  law = laws_lib.get(law) if isinstance(law, str) else law
  data = prepare(law, inputs, loss, weights)
  solver_delta = delta_value(delta)
  theta_start_SxT = law.starts() if starts is None else np.asarray(starts, dtype=np.float64)
  if theta_start_SxT.ndim != 2 or theta_start_SxT.shape[1] != len(law.theta_names):
    raise InputError(f"starts for law {law.name} must be S x {len(law.theta_names)}, "
                     f"got shape {theta_start_SxT.shape}")
  objective_start_S = _screen(law, theta_start_SxT, data, solver_delta)
  n_starts = theta_start_SxT.shape[0]
  n_polished = n_starts if polished_starts is None else min(polished_starts, n_starts)
  chosen = np.argsort(objective_start_S, kind="stable")[:n_polished]
  weights_KxP = np.broadcast_to(data.weights_P, (n_polished, data.weights_P.size))
  theta_KxT, objective_K, converged_K, iterations_K = polish(
      law, theta_start_SxT[chosen], data, weights_KxP, solver_delta, max_iterations,
      lanes=LANES if polished_starts is not None else max(LANES, min(n_starts, 512)))
  best = int(np.argmin(objective_K))
  best_objective = float(objective_K[best])
  at_best = objective_K <= best_objective + AT_BEST_RTOL * abs(best_objective) + AT_BEST_ATOL
  if not np.isfinite(best_objective):
    raise InputError(f"law {law.name}: the objective is not finite at any polished start")
  results = None
  if per_start:
    theta_SxT, objective_S = theta_start_SxT.copy(), objective_start_S.copy()
    theta_SxT[chosen], objective_S[chosen] = theta_KxT, objective_K
    polished_S, converged_S = np.zeros(n_starts, bool), np.zeros(n_starts, bool)
    iterations_S = np.zeros(n_starts, np.int32)
    polished_S[chosen], converged_S[chosen], iterations_S[chosen] = True, converged_K, iterations_K
    results = StartResults(theta_start_SxT, objective_start_S, theta_SxT, objective_S, polished_S,
                           converged_S, iterations_S)
  theta = theta_KxT[best]
  return Fit(law=law.name,
             params={k: float(v) for k, v in law.params(theta).items()},
             theta=theta, objective=best_objective, n_points=data.n_points, delta=delta,
             starts=n_starts, starts_polished=n_polished, starts_at_best=int(at_best.sum()),
             converged=bool(converged_K[best]), per_start=results)

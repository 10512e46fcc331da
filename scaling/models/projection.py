"""Projections: every weight matmul of the Transformer (and the chunked loss's logits), as one 2-D
dot over the tokens, with a backward pass that XLA:CPU runs without copying the activations.

Shape letters: the legend in `scaling.models`; here T = B·L tokens, I and O a weight's input and
output features.

Projecting the tokens flattened to [T, I] makes every weight gradient one dot contracting T, which
XLA runs without writing a transposed copy of the activations (contracting B and L as two dims made
it transpose the largest one).
"""

import functools

import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def dense(x_TxI: jax.Array, w_IxO: jax.Array, out_dtype=None, grad_dtype=None) -> jax.Array:
  """x @ w, w cast to x's dtype (in `out_dtype`, default x's); the weight gradient comes out of its
  dot in `grad_dtype` (default the weight's), then in the weight's own dtype.

  `grad_dtype` is where the gradient is summed over the devices that split the tokens: XLA reduces
  (or reduce-scatters over fsdp) the dot's output in the dot's output type, so float32 here reduces
  the partial sums of a bf16 step in float32, as MaxText's grad_dtype does, and bfloat16 halves
  those bytes (`config.grad_dtype`).

  A weight gradient contracts the T tokens, the major dimension of both operands, so XLA:CPU's dot
  needs one of them transposed in memory; left to itself it transposed the output gradient even
  when that is the larger (SwiGLU's [T, 2F] against x's [T, D]). Ordering the dot's operands here
  picks the cheaper copy, which XLA then fuses into the dot (no copy is left in the optimized HLO).
  """
  return jnp.matmul(x_TxI, w_IxO.astype(x_TxI.dtype), preferred_element_type=out_dtype)


def _dense_fwd(x_TxI, w_IxO, out_dtype, grad_dtype):
  return dense(x_TxI, w_IxO, out_dtype, grad_dtype), (x_TxI, w_IxO)


def _dense_bwd(out_dtype, grad_dtype, residuals, g_TxO):
  del out_dtype
  x_TxI, w_IxO = residuals
  g_TxO = g_TxO.astype(x_TxI.dtype)
  g_x_TxI = jnp.einsum("TO,IO->TI", g_TxO, w_IxO.astype(x_TxI.dtype))
  grad_dtype = grad_dtype or w_IxO.dtype
  if x_TxI.shape[1] <= g_TxO.shape[1]:
    g_w_IxO = jnp.einsum("TI,TO->IO", x_TxI, g_TxO, preferred_element_type=grad_dtype)
  else:
    g_w_IxO = jnp.einsum("TO,TI->OI", g_TxO, x_TxI, preferred_element_type=grad_dtype).T
  return g_x_TxI, g_w_IxO.astype(w_IxO.dtype)


dense.defvjp(_dense_fwd, _dense_bwd)


def project(x_BxLxI: jax.Array, w_IxO: jax.Array, out_dtype=None, grad_dtype=None) -> jax.Array:
  """x [B, L, I] times a weight [I, *out] -> [B, L, *out], as one `dense` over the T = B·L tokens;
  its output is named "dense" for the remat policies (`transformer.REMAT_POLICIES`)."""
  B, L, I = x_BxLxI.shape
  out_TxO = dense(x_BxLxI.reshape(B * L, I), w_IxO.reshape(I, -1), out_dtype, grad_dtype)
  out_TxO = checkpoint_name(out_TxO, "dense")
  return out_TxO.reshape(B, L, *w_IxO.shape[1:])

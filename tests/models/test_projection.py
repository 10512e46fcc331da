"""scaling.models.projection: a projection is the plain matmul, its weight gradient summed in
`grad_dtype`."""

import jax
import jax.numpy as jnp
import numpy as np

from scaling.models.projection import dense, project


def test_weight_gradients_are_summed_in_grad_dtype():
  """bf16 operands: the weight gradient's dot comes out in `grad_dtype`, so in float32 it is the
  float32 sum of the bf16 products (what a reduce over devices then adds), in bfloat16 that sum
  rounded; either way the weight's gradient is float32, and the input's and the loss are the same."""
  keys = jax.random.split(jax.random.key(3), 3)
  x_TxI = jax.random.normal(keys[0], (512, 48), jnp.float32).astype(jnp.bfloat16)
  w_IxO = jax.random.normal(keys[1], (48, 40), jnp.float32)
  g_TxO = jax.random.normal(keys[2], (512, 40), jnp.float32).astype(jnp.bfloat16)
  want_IxO = np.asarray(x_TxI, np.float64).T @ np.asarray(g_TxO, np.float64)
  grads = {}
  for grad_dtype in (jnp.float32, jnp.bfloat16):
    out, vjp = jax.vjp(lambda x, w: dense(x, w, None, grad_dtype), x_TxI, w_IxO)
    assert out.dtype == jnp.bfloat16
    grads[grad_dtype] = vjp(g_TxO)
    assert grads[grad_dtype][1].dtype == jnp.float32 and grads[grad_dtype][0].dtype == jnp.bfloat16
  error = {k: np.abs(np.asarray(g[1], np.float64) - want_IxO).max() for k, g in grads.items()}
  assert error[jnp.float32] < 1e-3 * np.abs(want_IxO).max()
  assert error[jnp.bfloat16] > 4 * error[jnp.float32]  # bf16 rounds sums of magnitude ~20: steps of 0.125
  np.testing.assert_array_equal(grads[jnp.float32][0], grads[jnp.bfloat16][0])


def test_a_projection_is_the_plain_einsum_in_value_and_gradients():
  """[B, L, I] times [I, C, F] in both operand orders of the weight gradient's dot (I below and
  above the output width): the einsum's output and gradients."""
  keys = jax.random.split(jax.random.key(5), 4)
  for I, out_shape in ((16, (3, 8)), (40, (2, 4))):
    x_BxLxI = jax.random.normal(keys[0], (2, 8, I))
    w = jax.random.normal(keys[1], (I, *out_shape))
    g = jax.random.normal(keys[2], (2, 8, *out_shape))

    def loss(fn):
      return lambda x, w: jnp.sum(fn(x, w) * g)

    ours = jax.jit(jax.value_and_grad(loss(project), argnums=(0, 1)))(x_BxLxI, w)
    plain = jax.jit(jax.value_and_grad(loss(lambda x, w: jnp.einsum("BLI,I...->BL...", x, w)),
                                       argnums=(0, 1)))(x_BxLxI, w)
    assert project(x_BxLxI, w).shape == (2, 8, *out_shape)
    for got, want in zip(jax.tree.leaves(ours), jax.tree.leaves(plain)):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

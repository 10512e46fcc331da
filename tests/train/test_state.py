"""The loss the train step differentiates: optax's cross-entropy, value and gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from scaling.train import state as state_lib


def test_token_losses_and_their_gradient_are_optax_cross_entropy():
  logits_BxLxV = 3.0 * jax.random.normal(jax.random.key(0), (2, 5, 11))
  targets_BxL = jax.random.randint(jax.random.key(1), (2, 5), 0, 11)
  weights_BxL = jax.random.uniform(jax.random.key(2), (2, 5))

  def ours(logits):
    return (state_lib.token_losses(logits, targets_BxL) * weights_BxL).sum()

  def reference(logits):
    return (optax.softmax_cross_entropy_with_integer_labels(logits, targets_BxL) * weights_BxL).sum()

  np.testing.assert_allclose(state_lib.token_losses(logits_BxLxV, targets_BxL),
                             optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, targets_BxL),
                             rtol=1e-6)
  np.testing.assert_allclose(jax.grad(ours)(logits_BxLxV), jax.grad(reference)(logits_BxLxV),
                             rtol=1e-5, atol=1e-7)
  bf16 = state_lib.token_losses(logits_BxLxV.astype(jnp.bfloat16), targets_BxL)
  assert bf16.dtype == jnp.float32

"""Shared building blocks: the embedding lookup's hand-written gradient."""

import jax
import jax.numpy as jnp
import numpy as np

from scaling.models import layers


def test_embedding_gradient_is_the_scatter_add_autodiff_gives():
  """Repeated tokens add up; rows no token used get zero; the gradient is float32."""
  table_VxD = jax.random.normal(jax.random.key(0), (50, 16), jnp.float32)
  tokens_BxL = jnp.array([[3, 7, 3, 0], [49, 7, 7, 1]])
  g_BxLxD = jax.random.normal(jax.random.key(1), (2, 4, 16), jnp.float32)
  out, vjp = jax.vjp(lambda t: layers.embed_tokens(t, tokens_BxL), table_VxD)
  want_out, want_vjp = jax.vjp(lambda t: jnp.take(t, tokens_BxL, axis=0), table_VxD)
  np.testing.assert_array_equal(out, want_out)
  (got,), (want,) = vjp(g_BxLxD), want_vjp(g_BxLxD)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-6)
  assert not np.any(got[2])

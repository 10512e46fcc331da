"""Stacked LSTM language model (Hochreiter & Schmidhuber 1997), the recurrent baseline that
Kaplan et al. 2020 (Fig. 7) compare with Transformers.

Shape letters: the legend in scaling/models/__init__.py (G: the four gates i, f, g, o).

LSTM layers in the shared recurrent stack (`scaling.models.recurrent`: embedding, input norm, Z
layers, final norm, output; what the norms changed for this cell: README, "The model family").
The input projection of all L steps is one matmul before a `jax.lax.scan` over time, so the scan
body does only the recurrent matmul and the gate arithmetic. The carried state (h, c) and the gate
arithmetic are float32.

Parameters of one layer: w_x [D, G=4, D], w_h [D, 4, D], b [4·D] -> 8·D² + 4·D. The bias is flat
so that weight decay (masked to ndim ≥ 2) leaves it alone; its forget-gate part starts at 1.

Forward FLOPs per token (a multiply-add = 2): each layer 2·4·(d_in + d)·d = 16·D² (bias adds, gate
nonlinearities and norms not counted); the chinchilla convention adds the embedding lookup as a
one-hot matmul 2·V·D and the logits 2·D·V. Training = 3 × forward (backward = 2 × forward).
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.models import layers, recurrent, registry
from scaling.models.recurrent import RecurrentConfig
from scaling.parallel.rules import constrain


class LstmLayer(nnx.Module):
  """One LSTM layer over a sequence: x_BxLxD, (h, c) -> h_BxLxD, (h, c)."""

  state_names = ("h", "c")

  def __init__(self, cfg: RecurrentConfig, *, rngs: nnx.Rngs):
    D = cfg.d_model
    std = 1.0 / math.sqrt(D)  # fan-in: gate pre-activations O(1) for O(1) inputs
    self.w_x = layers.param(rngs, (D, 4, D), ("embed", "gate", "recurrent"), std)
    self.w_h = layers.param(rngs, (D, 4, D), ("embed", "gate", "recurrent"), std)
    # Forget gate starts open (Gers et al. 2000; Jozefowicz et al. 2015): gradients reach far back.
    bias_4xD = jnp.zeros((4, D), jnp.float32).at[1].set(1.0)
    self.b = nnx.Param(bias_4xD.reshape(4 * D), out_sharding=("gates",))

  def __call__(self, x_BxLxD: jax.Array, state: tuple) -> tuple[jax.Array, tuple]:
    dtype, D = x_BxLxD.dtype, x_BxLxD.shape[-1]
    w_h = self.w_h[...].astype(dtype)
    # All L input projections in one matmul; the scan below only adds the recurrent term.
    xg_BxLxGxD = jnp.einsum("BLI,IGD->BLGD", x_BxLxD, self.w_x[...].astype(dtype),
                            preferred_element_type=jnp.float32)
    xg_BxLxGxD = xg_BxLxGxD + self.b[...].reshape(1, 1, 4, D)

    def step(carry, xg_BxGxD):
      h_BxD, c_BxD = carry
      g_BxGxD = xg_BxGxD + jnp.einsum("BI,IGD->BGD", h_BxD.astype(dtype), w_h,
                                      preferred_element_type=jnp.float32)
      i, f, o = (jax.nn.sigmoid(g_BxGxD[:, k]) for k in (0, 1, 3))
      c_BxD = f * c_BxD + i * jnp.tanh(g_BxGxD[:, 2])
      h_BxD = constrain(o * jnp.tanh(c_BxD), ("batch", "act_embed"))
      return (h_BxD, c_BxD), h_BxD

    (h_BxD, c_BxD), h_LxBxD = jax.lax.scan(step, state, jnp.swapaxes(xg_BxLxGxD, 0, 1))
    return jnp.swapaxes(h_LxBxD, 0, 1).astype(dtype), (h_BxD, c_BxD)


class Lstm(recurrent.Recurrent):
  """Embedding, stacked LSTM layers, output; see the module docstring."""

  layer_cls = LstmLayer


def param_counts(cfg: RecurrentConfig) -> dict[str, int]:
  """Per layer w_x [D, 4, D] + w_h [D, 4, D] + b [4·D] = 8·D² + 4·D."""
  D = cfg.d_model
  return recurrent.param_counts_for(cfg, 8 * D * D + 4 * D)


def flops_per_token(cfg: RecurrentConfig) -> dict[str, float]:
  """Per layer forward 2·4·(d_in + d)·d = 16·D² (d_in = d = D)."""
  D = cfg.d_model
  return recurrent.flops_per_token_for(cfg, param_counts(cfg), 2 * 4 * (D + D) * D)


registry.register("lstm", recurrent.architecture(Lstm, param_counts, flops_per_token))

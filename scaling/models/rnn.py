"""Stacked Elman RNN language model (Elman 1990): h_t = tanh(x_t·W_x + h_{t-1}·W_h + b).

Shape letters: the legend in `scaling.models`.

The simplest cell on the shared recurrent stack (`scaling.models.recurrent`: embedding [V, D] ->
input norm -> Z layers of input width D -> final norm -> output [D, V] or the tied embedding). The
input projection of all L steps is one matmul before a `jax.lax.scan` over time; the carried h and
the tanh are float32.

Parameters of one layer: w_x [D, D], w_h [D, D], b [D] -> 2·D² + D.

Forward FLOPs per token (a multiply-add = 2): each layer 2·(d_in + d)·d = 4·D² (bias add, tanh and
norms not counted); the chinchilla convention adds the embedding lookup as a one-hot matmul 2·V·D
and the logits 2·D·V. Training = 3 × forward (backward = 2 × forward).
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.models import layers, recurrent, registry
from scaling.models.recurrent import RecurrentConfig
from scaling.parallel.rules import constrain


class RnnLayer(nnx.Module):
  """One Elman layer over a sequence: x_BxLxD, (h,) -> h_BxLxD, (h,)."""

  state_names = ("h",)

  def __init__(self, cfg: RecurrentConfig, *, rngs: nnx.Rngs):
    D = cfg.d_model
    std = 1.0 / math.sqrt(D)  # fan-in; w_h's spectral radius about 1: h neither dies nor explodes
    self.w_x = layers.param(rngs, (D, D), ("embed", "recurrent"), std)
    self.w_h = layers.param(rngs, (D, D), ("embed", "recurrent"), std)
    self.b = nnx.Param(jnp.zeros((D,), jnp.float32), out_sharding=("recurrent",))

  def __call__(self, x_BxLxD: jax.Array, state: tuple) -> tuple[jax.Array, tuple]:
    dtype = x_BxLxD.dtype
    w_h = self.w_h[...].astype(dtype)
    # All L input projections in one matmul; the scan below only adds the recurrent term.
    xw_BxLxD = jnp.einsum("BLI,ID->BLD", x_BxLxD, self.w_x[...].astype(dtype),
                          preferred_element_type=jnp.float32) + self.b[...][None, None, :]

    def step(h_BxD, xw_BxD):
      h_BxD = jnp.tanh(xw_BxD + jnp.einsum("BI,ID->BD", h_BxD.astype(dtype), w_h,
                                           preferred_element_type=jnp.float32))
      h_BxD = constrain(h_BxD, ("batch", "act_embed"))
      return h_BxD, h_BxD

    h_BxD, h_LxBxD = jax.lax.scan(step, state[0], jnp.swapaxes(xw_BxLxD, 0, 1))
    return jnp.swapaxes(h_LxBxD, 0, 1).astype(dtype), (h_BxD,)


class Rnn(recurrent.Recurrent):
  """Embedding, stacked Elman layers, output; see the module docstring."""

  layer_cls = RnnLayer


def param_counts(cfg: RecurrentConfig) -> dict[str, int]:
  """Per layer w_x [D, D] + w_h [D, D] + b [D] = 2·D² + D."""
  D = cfg.d_model
  return recurrent.param_counts_for(cfg, 2 * D * D + D)


def flops_per_token(cfg: RecurrentConfig) -> dict[str, float]:
  """Per layer forward 2·(d_in + d)·d = 4·D² (d_in = d = D)."""
  D = cfg.d_model
  return recurrent.flops_per_token_for(cfg, param_counts(cfg), 2 * (D + D) * D)


registry.register("rnn", recurrent.architecture(Rnn, param_counts, flops_per_token))

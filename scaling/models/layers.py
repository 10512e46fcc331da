"""Building blocks every family shares, so parameters and norms are made (and counted) one way.

Every parameter is float32 and names its logical axes (`scaling.parallel.rules` splits them);
`norm_params` counts what `norm` builds.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.models.config import ModelConfig
from scaling.parallel.rules import constrain, split_size


def param(rngs: nnx.Rngs, shape, logical_axes, std: float) -> nnx.Param:
  """A float32 normal(0, std) parameter that carries its logical axis names."""
  value = std * jax.random.normal(rngs.params(), shape, jnp.float32)
  return nnx.Param(value, out_sharding=logical_axes)


def norm_params(cfg: ModelConfig) -> int:
  """One `norm` layer: LayerNorm has a scale and a bias [D], RMSNorm a scale only."""
  return 2 * cfg.d_model if cfg.norm == "layernorm" else cfg.d_model


def norm(cfg: ModelConfig, rngs: nnx.Rngs) -> nnx.Module:
  """`cfg.norm` over D: LayerNorm (scale and bias) or RMSNorm (scale)."""
  if cfg.norm == "layernorm":
    return nnx.LayerNorm(
        cfg.d_model, epsilon=1e-5, rngs=rngs,
        scale_metadata={"out_sharding": ("norm",)}, bias_metadata={"out_sharding": ("norm",)})
  return nnx.RMSNorm(cfg.d_model, epsilon=1e-6, rngs=rngs, scale_metadata={"out_sharding": ("norm",)})


@jax.custom_vjp
def embed_tokens(table_VxD: jax.Array, tokens_BxL: jax.Array) -> jax.Array:
  """The rows of an embedding table for `tokens_BxL`, laid out over the batch.

  The table is FSDP-sharded over D; a gather from it would come out split over D, and turning that
  into the batch-split activation moves the fsdp axis between dimensions, which XLA's SPMD
  partitioner does by replicating the whole tensor ("involuntary full rematerialization"). So the
  table is first all-gathered over D, as FSDP does for every weight before use.

  The gradient is each device's scatter-add of its own tokens' rows into a float32 [V, D], laid
  out as the table is, so the sum over the batch's devices is a reduce-scatter over fsdp; left to
  autodiff, XLA all-reduced the whole [V, D] on every device and then kept its slice (f32[131072,
  1024], 512 MiB, at a 128k vocabulary).
  """
  return jnp.take(constrain(table_VxD, ("vocab", "act_embed")), tokens_BxL, axis=0)


def _embed_fwd(table_VxD, tokens_BxL):
  shape_Vx0 = jnp.zeros((table_VxD.shape[0], 0), table_VxD.dtype)  # the table's V and dtype, no data
  return embed_tokens(table_VxD, tokens_BxL), (tokens_BxL, shape_Vx0)


def _embed_bwd(residuals, g_BxLxD):
  tokens_BxL, shape_Vx0 = residuals
  g_VxD = jnp.zeros((shape_Vx0.shape[0], g_BxLxD.shape[-1]), jnp.float32)
  # With V split too (over tensor), XLA reaches the table's layout straight from the batch-split
  # rows only by replicating them ("involuntary full rematerialization", seen on a 2x2x2 mesh):
  # there the scatter keeps the activation's D and the chip's [V/tensor, D] is then all-reduced.
  scatter_layout = ("vocab", "act_embed") if split_size("vocab") > 1 else ("vocab", "embed")
  g_VxD = constrain(g_VxD.at[tokens_BxL].add(g_BxLxD.astype(jnp.float32)), scatter_layout)
  g_VxD = constrain(g_VxD, ("vocab", "embed"))
  return g_VxD.astype(shape_Vx0.dtype), None


embed_tokens.defvjp(_embed_fwd, _embed_bwd)

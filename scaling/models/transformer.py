"""Decoder-only Transformer family, from Kaplan/GPT-2 style to a modern (Llama-like) style.

Shape letters: B batch, L sequence length, D d_model, H heads, K head dim, F MLP hidden, V vocab.

Options span what scaling papers trained: LayerNorm + GELU MLP + learned positions + tied embeddings
(GPT-2, Kaplan et al. 2020) or RMSNorm + SwiGLU + rotary positions + untied embeddings (modern).
Every parameter names its logical axes; `scaling.parallel.rules` decides how they are split.
No linear layer has a bias, so `scaling.models.accounting` counts exactly these parameters.
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.models import accounting, layers, registry
from scaling.errors import InputError
from scaling.models.config import ModelConfig
from scaling.parallel.rules import constrain


REMAT_POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def attention_implementation(cfg: ModelConfig) -> str:
  """The `jax.nn.dot_product_attention` implementation: cuDNN's fused kernel on GPU under bf16 with
  head dims it supports (≤ 128, multiple of 8), XLA's elsewhere (CPU, TPU, float32)."""
  if cfg.attention != "auto":
    return cfg.attention
  fused_ok = cfg.dtype == "bfloat16" and cfg.head_dim <= 128 and cfg.head_dim % 8 == 0
  return "cudnn" if fused_ok and jax.default_backend() == "gpu" else "xla"


def rotary(x_BxLxHxK: jax.Array, positions_L: jax.Array) -> jax.Array:
  """Rotary position embedding (Su et al. 2021), rotating the two halves of each head."""
  half = x_BxLxHxK.shape[-1] // 2
  inv_freq = 1.0 / (10_000.0 ** (jnp.arange(half, dtype=jnp.float32) / half))
  angle_LxK = positions_L.astype(jnp.float32)[:, None] * inv_freq[None, :]
  sin, cos = jnp.sin(angle_LxK)[None, :, None, :], jnp.cos(angle_LxK)[None, :, None, :]
  x1, x2 = jnp.split(x_BxLxHxK.astype(jnp.float32), 2, axis=-1)
  rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return rotated.astype(x_BxLxHxK.dtype)


class Attention(nnx.Module):
  """Causal multi-head self-attention through `jax.nn.dot_product_attention`."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    D, H, K = cfg.d_model, cfg.n_heads, cfg.head_dim
    out_std = cfg.init_std / math.sqrt(2 * cfg.n_layers)  # GPT-2: residual projections scaled by depth
    self.wq = layers.param(rngs, (D, H, K), ("embed", "heads", "head_dim"), cfg.init_std)
    self.wk = layers.param(rngs, (D, H, K), ("embed", "heads", "head_dim"), cfg.init_std)
    self.wv = layers.param(rngs, (D, H, K), ("embed", "heads", "head_dim"), cfg.init_std)
    self.wo = layers.param(rngs, (H, K, D), ("heads", "head_dim", "embed"), out_std)

  def __call__(self, x_BxLxD: jax.Array, positions_L: jax.Array, kv_cache=None):
    """Self-attention over the sequence; with `kv_cache` = (keys_BxMxHxK, values_BxMxHxK, index),
    x holds the tokens at positions index.. of a sequence whose earlier keys and values are cached,
    and the call returns (output, (keys, values)) with this chunk's written in."""
    dtype = x_BxLxD.dtype
    q_BxLxHxK = jnp.einsum("BLD,DHK->BLHK", x_BxLxD, self.wq[...].astype(dtype))
    k_BxLxHxK = jnp.einsum("BLD,DHK->BLHK", x_BxLxD, self.wk[...].astype(dtype))
    v_BxLxHxK = jnp.einsum("BLD,DHK->BLHK", x_BxLxD, self.wv[...].astype(dtype))
    if self.cfg.position == "rotary":
      q_BxLxHxK = rotary(q_BxLxHxK, positions_L)
      k_BxLxHxK = rotary(k_BxLxHxK, positions_L)
    if kv_cache is None:
      out_BxLxHxK = jax.nn.dot_product_attention(
          q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, is_causal=True,
          implementation=attention_implementation(self.cfg))
      return jnp.einsum("BLHK,HKD->BLD", out_BxLxHxK, self.wo[...].astype(dtype))
    keys_BxMxHxK, values_BxMxHxK, index = kv_cache
    keys_BxMxHxK = jax.lax.dynamic_update_slice(keys_BxMxHxK, k_BxLxHxK, (0, index, 0, 0))
    values_BxMxHxK = jax.lax.dynamic_update_slice(values_BxMxHxK, v_BxLxHxK, (0, index, 0, 0))
    # Each query sees the cached positions up to its own; unwritten slots are masked out.
    visible_LxM = jnp.arange(keys_BxMxHxK.shape[1])[None, :] <= positions_L[:, None]
    out_BxLxHxK = jax.nn.dot_product_attention(
        q_BxLxHxK, keys_BxMxHxK, values_BxMxHxK, mask=visible_LxM[None, None], implementation="xla")
    out_BxLxD = jnp.einsum("BLHK,HKD->BLD", out_BxLxHxK, self.wo[...].astype(dtype))
    return out_BxLxD, (keys_BxMxHxK, values_BxMxHxK)


class Mlp(nnx.Module):
  """GELU MLP (GPT-2) or SwiGLU (Shazeer 2020): gate and up projections, then down."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    D, F = cfg.d_model, cfg.hidden_dim
    out_std = cfg.init_std / math.sqrt(2 * cfg.n_layers)
    self.w_in = layers.param(rngs, (D, F), ("embed", "mlp"), cfg.init_std)
    if cfg.mlp == "swiglu":
      self.w_gate = layers.param(rngs, (D, F), ("embed", "mlp"), cfg.init_std)
    self.w_out = layers.param(rngs, (F, D), ("mlp", "embed"), out_std)

  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    dtype = x_BxLxD.dtype
    h_BxLxF = jnp.einsum("BLD,DF->BLF", x_BxLxD, self.w_in[...].astype(dtype))
    if self.cfg.mlp == "swiglu":
      gate_BxLxF = jnp.einsum("BLD,DF->BLF", x_BxLxD, self.w_gate[...].astype(dtype))
      h_BxLxF = jax.nn.silu(gate_BxLxF) * h_BxLxF
    else:
      h_BxLxF = jax.nn.gelu(h_BxLxF)
    return jnp.einsum("BLF,FD->BLD", h_BxLxF, self.w_out[...].astype(dtype))


class Block(nnx.Module):
  """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.attn_norm = layers.norm(cfg, rngs)
    self.attn = Attention(cfg, rngs=rngs)
    self.mlp_norm = layers.norm(cfg, rngs)
    self.mlp = Mlp(cfg, rngs=rngs)

  def __call__(self, x_BxLxD: jax.Array, positions_L: jax.Array, kv_cache=None):
    """x -> x, or with `kv_cache` (see `Attention`) x -> (x, (keys, values))."""
    attended = self.attn(self.attn_norm(x_BxLxD).astype(x_BxLxD.dtype), positions_L, kv_cache)
    attn_out_BxLxD, new_kv = attended if kv_cache is not None else (attended, None)
    x_BxLxD = x_BxLxD + attn_out_BxLxD
    x_BxLxD = x_BxLxD + self.mlp(self.mlp_norm(x_BxLxD).astype(x_BxLxD.dtype))
    x_BxLxD = constrain(x_BxLxD, ("batch", "length", "act_embed"))
    return x_BxLxD if kv_cache is None else (x_BxLxD, new_kv)


class Transformer(nnx.Module):
  """tokens_BxL (int) -> logits_BxLxV (float32, whatever the compute dtype)."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    D, V = cfg.d_model, cfg.vocab_size
    self.embedding = layers.param(rngs, (V, D), ("vocab", "embed"), cfg.init_std)
    if cfg.position == "learned":
      self.position_embedding = layers.param(
          rngs, (cfg.seq_len, D), ("position", "embed"), cfg.init_std)
    if cfg.scan_layers:
      # One Block whose parameters carry a leading `layers` axis, applied by a scan (below).
      @nnx.split_rngs(splits=cfg.n_layers)
      @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
      def stacked_blocks(rngs):
        return Block(cfg, rngs=rngs)

      self.blocks = stacked_blocks(rngs)
    else:
      self.blocks = nnx.List([Block(cfg, rngs=rngs) for _ in range(cfg.n_layers)])
    self.final_norm = layers.norm(cfg, rngs)
    if not cfg.tie_embeddings:
      self.unembedding = layers.param(rngs, (D, V), ("embed", "vocab"), cfg.init_std)

  def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
    positions_L = jnp.arange(tokens_BxL.shape[1])
    x_BxLxD = self._apply_blocks(self._embed(tokens_BxL, positions_L), positions_L)
    return self._logits(x_BxLxD)

  def init_cache(self, batch_size: int, max_len: int) -> dict:
    """Keys and values of every layer for `max_len` positions, and the next position to write."""
    cfg = self.cfg
    if cfg.position == "learned" and max_len > cfg.seq_len:
      raise InputError(f"decoding {max_len} positions (prompt and new tokens) exceeds the "
                       f"model.seq_len={cfg.seq_len} positions this model learned "
                       "(model.position=learned)")
    shape = (cfg.n_layers, batch_size, max_len, cfg.n_heads, cfg.head_dim)
    zeros = jnp.zeros(shape, jnp.dtype(cfg.dtype))
    return {"keys": zeros, "values": zeros, "index": jnp.zeros((), jnp.int32)}

  def decode(self, tokens_BxT: jax.Array, cache: dict) -> tuple[jax.Array, dict]:
    """Logits of the T tokens that continue the cached sequence, and the cache with them added."""
    index = cache["index"]
    positions_T = index + jnp.arange(tokens_BxT.shape[1])
    x_BxTxD = self._embed(tokens_BxT, positions_T)
    x_BxTxD, keys, values = self._decode_blocks(x_BxTxD, positions_T, cache)
    new_cache = {"keys": keys, "values": values, "index": index + tokens_BxT.shape[1]}
    return self._logits(x_BxTxD), new_cache

  def _embed(self, tokens_BxL, positions_L):
    cfg = self.cfg
    x_BxLxD = layers.embed_tokens(self.embedding[...], tokens_BxL)
    if cfg.position == "learned":
      x_BxLxD = x_BxLxD + jnp.take(self.position_embedding[...], positions_L, axis=0)[None]
    return constrain(x_BxLxD.astype(jnp.dtype(cfg.dtype)), ("batch", "length", "act_embed"))

  def _logits(self, x_BxLxD):
    cfg = self.cfg
    dtype = jnp.dtype(cfg.dtype)
    x_BxLxD = self.final_norm(x_BxLxD).astype(dtype)
    unembedding_DxV = self.embedding[...].T if cfg.tie_embeddings else self.unembedding[...]
    # Logits and loss in float32 even under bf16 compute: the softmax over V needs the range.
    return jnp.einsum("BLD,DV->BLV", x_BxLxD, unembedding_DxV.astype(dtype),
                      preferred_element_type=jnp.float32)

  def _decode_blocks(self, x_BxTxD, positions_T, cache):
    """The residual stack over a chunk, reading and extending each layer's cached keys/values."""
    index = cache["index"]
    if not self.cfg.scan_layers:
      keys, values = [], []
      for layer, block in enumerate(self.blocks):
        x_BxTxD, (k, v) = block(x_BxTxD, positions_T,
                                (cache["keys"][layer], cache["values"][layer], index))
        keys.append(k)
        values.append(v)
      return x_BxTxD, jnp.stack(keys), jnp.stack(values)

    @nnx.scan(in_axes=(nnx.Carry, 0, 0, 0), out_axes=(nnx.Carry, 0),
              transform_metadata={nnx.PARTITION_NAME: "layers"})
    def scan_body(x_BxTxD, block, keys_BxMxHxK, values_BxMxHxK):
      return block(x_BxTxD, positions_T, (keys_BxMxHxK, values_BxMxHxK, index))

    x_BxTxD, (keys, values) = scan_body(x_BxTxD, self.blocks, cache["keys"], cache["values"])
    return x_BxTxD, keys, values

  def _apply_blocks(self, x_BxLxD, positions_L):
    """The residual stack: a Python loop, or a scan over stacked blocks; optionally rematerialized."""
    cfg = self.cfg

    def apply(block, x_BxLxD):
      return block(x_BxLxD, positions_L)

    if cfg.remat != "none":
      apply = nnx.remat(apply, policy=REMAT_POLICIES[cfg.remat])
    if not cfg.scan_layers:
      for block in self.blocks:
        x_BxLxD = apply(block, x_BxLxD)
      return x_BxLxD

    @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry,
              transform_metadata={nnx.PARTITION_NAME: "layers"})
    def scan_body(x_BxLxD, block):
      return apply(block, x_BxLxD)

    return scan_body(x_BxLxD, self.blocks)


registry.register("transformer", registry.Architecture(
    module=Transformer,
    param_counts=accounting.param_counts,
    flops_per_token=accounting.flops_per_token,
))

"""Decoder-only Transformer family, from Kaplan/GPT-2 style to a modern (Llama-like) style.

Shape letters: the legend in `scaling.models`.

Options span what scaling papers trained: LayerNorm + GELU MLP + learned positions + tied embeddings
(GPT-2, Kaplan et al. 2020) or RMSNorm + SwiGLU + rotary positions + untied embeddings (modern).
Every parameter names its logical axes; `scaling.parallel.rules` decides how they are split.
No linear layer has a bias, so `scaling.models.accounting` counts exactly these parameters; the
size ladder (`scaling.models.ladder.shape_for`) picks depth, width and heads for a target N.

Attention in training and evaluation runs the kernel `model.attention` names
(`scaling.models.attention.causal`; `auto` picks by platform, `attention.implementation`): on a
CPU the `xla` kernel, `attention.causal_attention` with its own backward pass, or `blockwise` for
long sequences. `jax.nn.dot_product_attention` runs only cuDNN's kernel (GPU) and decoding from a
KV cache (masked to the cached positions, its xla implementation).

Speed on XLA:CPU (docs/benchmarks.md): every projection is one dot over the B·L tokens flattened
(`scaling.models.projection`); q, k, v come from one [D, 3, H, K] weight and SwiGLU's gate and up
from one [D, 2, F], so each is one larger dot; attention's backward pass transposes no [L, M] matrix
(`attention.causal_attention`); the rotary sin/cos tables are computed once per call, not in every
layer's forward and backward.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from scaling.errors import InputError
from scaling.models import accounting, attention, config, ladder, layers, registry
from scaling.models.projection import project
from scaling.parallel.rules import constrain

MLPS = ("gelu", "swiglu")
POSITIONS = ("learned", "rotary")
REMAT = ("none", "full", "dots", "save_attention", "save_mlp_input", "save_attention_mlp_input",
         "offload")
ATTENTION = attention.IMPLEMENTATIONS


@dataclasses.dataclass(frozen=True)
class TransformerConfig(config.ModelConfig):
  """One decoder-only Transformer."""

  arch: str = "transformer"
  n_heads: int = 4
  d_ff: int = 0  # 0: derived as round(mlp_ratio * d_model)
  mlp_ratio: float = 4.0
  mlp: str = "swiglu"  # "gelu": Kaplan / GPT-2 style
  position: str = "rotary"  # "learned": Kaplan / GPT-2 style
  scan_layers: bool = False  # apply the blocks with a scan: compile time flat in depth
  remat: str = "none"  # backward-pass recomputation, by policy name: see REMAT_POLICIES
  attention: str = "auto"  # auto | xla | blockwise | splash (TPU) | cudnn (GPU): scaling.models.attention
  logits_chunks: int = 0  # the loss over this many vocabulary slices; 0 = one per 32768 entries
  # The matmul weights' gradients as summed over devices; set by the run's `config.grad_dtype`.
  grad_dtype: str = "float32"

  @property
  def head_dim(self) -> int:
    return self.d_model // self.n_heads

  @property
  def hidden_dim(self) -> int:
    """The MLP hidden width F actually used."""
    return self.d_ff if self.d_ff > 0 else int(round(self.mlp_ratio * self.d_model))

  @property
  def vocab_chunks(self) -> int:
    """The vocabulary slices the train loss computes its logits in (`logits_chunks`, else one per
    32768 entries, lowered to a divisor of V): never [B, L, V] float32 logits at once."""
    if self.logits_chunks:
      return self.logits_chunks
    chunks = max(1, self.vocab_size // 32768)
    while self.vocab_size % chunks:
      chunks -= 1
    return chunks

  def resolved(self) -> dict:
    return {**super().resolved(), "d_ff": self.hidden_dim, "logits_chunks": self.vocab_chunks}

  def __post_init__(self):
    super().__post_init__()
    config.check_int(self, "n_heads")
    config.check_int(self, "d_ff", minimum=0)
    config.check_int(self, "logits_chunks", minimum=0)
    if self.logits_chunks and self.vocab_size % self.logits_chunks:
      raise InputError(f"model.logits_chunks={self.logits_chunks} does not divide "
                       f"model.vocab_size={self.vocab_size}")
    if self.d_ff == 0:
      config.check_positive(self, "mlp_ratio")
    if self.d_model % self.n_heads:
      raise InputError(
          f"model.n_heads={self.n_heads} does not divide model.d_model={self.d_model}")
    if self.position == "rotary" and self.head_dim % 2:
      raise InputError(f"model.position=rotary needs an even head dim, got {self.head_dim}")
    for key, allowed in (("mlp", MLPS), ("position", POSITIONS), ("remat", REMAT),
                         ("attention", ATTENTION), ("grad_dtype", config.DTYPES)):
      config.check_choice(self, key, allowed)
    config.check_bool(self, "scan_layers")

  def check_backend(self, backend) -> None:
    """cuDNN needs this host's GPU. Splash needs the TPU the step is compiled for, which may be
    another machine's (`scaling compile`): `attention.implementation` checks it when the step is built."""
    if self.attention == "cudnn" and backend() != "gpu":
      raise InputError(f"model.attention=cudnn needs a GPU (this backend is {backend()}); "
                       "use auto or xla")
    if self.attention == "splash" and backend() == "gpu":
      raise InputError("model.attention=splash needs a TPU (this backend is gpu); use auto or cudnn")


# What the backward pass keeps of each block's forward, by `model.remat`; the rest is recomputed.
# Names are set with `checkpoint_name` in the blocks: "attention" the attention kernel's output
# [B, L, H, K], "mlp_input" the normed MLP input [B, L, D], "dense" every projection's output.
REMAT_POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,
    # `dense` hides its dot inside a custom VJP, so its outputs are saved by name.
    "dots": jax.checkpoint_policies.save_from_both_policies(
        jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
        jax.checkpoint_policies.save_only_these_names("dense")),
    "save_attention": jax.checkpoint_policies.save_only_these_names("attention"),
    "save_mlp_input": jax.checkpoint_policies.save_only_these_names("mlp_input"),
    "save_attention_mlp_input": jax.checkpoint_policies.save_only_these_names(
        "attention", "mlp_input"),
    # TPU: both kept in the host's pinned memory rather than HBM, copied back for the backward.
    "offload": jax.checkpoint_policies.save_and_offload_only_these_names(
        names_which_can_be_saved=[], names_which_can_be_offloaded=["attention", "mlp_input"],
        offload_src="device", offload_dst="pinned_host"),
}


def attention_implementation(cfg: TransformerConfig) -> str:
  """The kernel `cfg.attention` names; `auto` as resolved for this host's backend (the train step
  resolves it for the platform it is compiled for first: `scaling.train.state.build`)."""
  if cfg.attention != "auto":
    return cfg.attention
  return attention.implementation(cfg, jax.default_backend())


def rotary_tables(positions_L: jax.Array, head_dim: int) -> tuple[jax.Array, jax.Array]:
  """sin and cos [L, K/2] of the rotary angles at `positions_L`: computed once, shared by every layer."""
  half = head_dim // 2
  inv_freq = 1.0 / (10_000.0 ** (jnp.arange(half, dtype=jnp.float32) / half))
  angle_LxK = positions_L.astype(jnp.float32)[:, None] * inv_freq[None, :]
  return jnp.sin(angle_LxK), jnp.cos(angle_LxK)


def rotary(x_BxLxHxK: jax.Array, tables) -> jax.Array:
  """Rotary position embedding (Su et al. 2021), rotating the two halves of each head."""
  sin, cos = (t[None, :, None, :] for t in tables)
  x1, x2 = jnp.split(x_BxLxHxK.astype(jnp.float32), 2, axis=-1)
  rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return rotated.astype(x_BxLxHxK.dtype)


class Attention(nnx.Module):
  """Causal multi-head self-attention, by the kernel `model.attention` picks (`scaling.models.attention`)."""

  def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    D, H, K = cfg.d_model, cfg.n_heads, cfg.head_dim
    out_std = cfg.init_std / math.sqrt(2 * cfg.n_layers)  # GPT-2: residual projections scaled by depth
    # q, k and v stacked on `qkv` (C = 3): one dot, each of them still split over heads.
    self.wqkv = layers.param(
        rngs, (D, 3, H, K), ("embed", "qkv", "heads", "head_dim"), cfg.init_std)
    self.wo = layers.param(rngs, (H, K, D), ("heads", "head_dim", "embed"), out_std)

  def __call__(self, x_BxLxD: jax.Array, positions_L: jax.Array, rope, kv_cache=None):
    """Self-attention over the sequence, `rope` the rotary tables of `positions_L` (or None); with
    `kv_cache` = (keys_BxMxHxK, values_BxMxHxK, index), x holds the tokens at positions index.. of
    a sequence whose earlier keys and values are cached, and the call returns (output, (keys,
    values)) with this chunk's written in."""
    qkv_BxLxCxHxK = project(x_BxLxD, self.wqkv[...], grad_dtype=self.cfg.grad_dtype)
    # A split, whose gradient is one concatenation (indexing's would be three padded copies, summed).
    q_BxLxHxK, k_BxLxHxK, v_BxLxHxK = (
        x[:, :, 0] for x in jnp.split(qkv_BxLxCxHxK, 3, axis=2))
    if rope is not None:
      q_BxLxHxK = rotary(q_BxLxHxK, rope)
      k_BxLxHxK = rotary(k_BxLxHxK, rope)
    if kv_cache is None:
      out_BxLxHxK = attention.causal(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK,
                                     attention_implementation(self.cfg))
      out_BxLxHxK = checkpoint_name(out_BxLxHxK, "attention")
      return self._out(out_BxLxHxK)
    keys_BxMxHxK, values_BxMxHxK, index = kv_cache
    keys_BxMxHxK = jax.lax.dynamic_update_slice(keys_BxMxHxK, k_BxLxHxK, (0, index, 0, 0))
    values_BxMxHxK = jax.lax.dynamic_update_slice(values_BxMxHxK, v_BxLxHxK, (0, index, 0, 0))
    # Each query sees the cached positions up to its own; unwritten slots are masked out.
    visible_LxM = jnp.arange(keys_BxMxHxK.shape[1])[None, :] <= positions_L[:, None]
    out_BxLxHxK = jax.nn.dot_product_attention(
        q_BxLxHxK, keys_BxMxHxK, values_BxMxHxK, mask=visible_LxM[None, None], implementation="xla")
    return self._out(out_BxLxHxK), (keys_BxMxHxK, values_BxMxHxK)

  def _out(self, out_BxLxHxK):
    B, L, H, K = out_BxLxHxK.shape
    return project(out_BxLxHxK.reshape(B, L, H * K), self.wo[...].reshape(H * K, -1),
                   grad_dtype=self.cfg.grad_dtype)


class Mlp(nnx.Module):
  """GELU MLP (GPT-2) or SwiGLU (Shazeer 2020): gate and up projections, then down."""

  def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    D, F = cfg.d_model, cfg.hidden_dim
    out_std = cfg.init_std / math.sqrt(2 * cfg.n_layers)
    if cfg.mlp == "swiglu":  # gate and up stacked on `gate` (C = 2): one dot
      self.w_gate_up = layers.param(rngs, (D, 2, F), ("embed", "gate", "mlp"), cfg.init_std)
    else:
      self.w_in = layers.param(rngs, (D, F), ("embed", "mlp"), cfg.init_std)
    self.w_out = layers.param(rngs, (F, D), ("mlp", "embed"), out_std)

  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    if self.cfg.mlp == "swiglu":
      gate_up_BxLxCxF = project(x_BxLxD, self.w_gate_up[...], grad_dtype=self.cfg.grad_dtype)
      gate_BxLx1xF, up_BxLx1xF = jnp.split(gate_up_BxLxCxF, 2, axis=2)
      h_BxLxF = (jax.nn.silu(gate_BxLx1xF) * up_BxLx1xF)[:, :, 0]
    else:
      h_BxLxF = jax.nn.gelu(project(x_BxLxD, self.w_in[...], grad_dtype=self.cfg.grad_dtype))
    return project(h_BxLxF, self.w_out[...], grad_dtype=self.cfg.grad_dtype)


class Block(nnx.Module):
  """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

  def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
    self.attn_norm = layers.norm(cfg, rngs)
    self.attn = Attention(cfg, rngs=rngs)
    self.mlp_norm = layers.norm(cfg, rngs)
    self.mlp = Mlp(cfg, rngs=rngs)

  def __call__(self, x_BxLxD: jax.Array, positions_L: jax.Array, rope, kv_cache=None):
    """x -> x, or with `kv_cache` (see `Attention`) x -> (x, (keys, values))."""
    attended = self.attn(self.attn_norm(x_BxLxD).astype(x_BxLxD.dtype), positions_L, rope, kv_cache)
    attn_out_BxLxD, new_kv = attended if kv_cache is not None else (attended, None)
    x_BxLxD = x_BxLxD + attn_out_BxLxD
    mlp_in_BxLxD = checkpoint_name(self.mlp_norm(x_BxLxD).astype(x_BxLxD.dtype), "mlp_input")
    x_BxLxD = x_BxLxD + self.mlp(mlp_in_BxLxD)
    x_BxLxD = constrain(x_BxLxD, ("batch", "length", "act_embed"))
    return x_BxLxD if kv_cache is None else (x_BxLxD, new_kv)


class Transformer(nnx.Module):
  """tokens_BxL (int) -> logits_BxLxV (float32, whatever the compute dtype)."""

  def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
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
    x_BxLxD = self._apply_blocks(self._embed(tokens_BxL, positions_L), positions_L,
                                 self._rope(positions_L))
    return self._logits(x_BxLxD)

  def init_cache(self, batch_size: int, max_len: int) -> dict:
    """Keys and values [Z, B, M, H, K] of every layer for M = `max_len` positions, and the next
    position to write."""
    cfg = self.cfg
    if cfg.position == "learned" and max_len > cfg.seq_len:
      raise InputError(f"decoding {max_len} positions (prompt and new tokens) exceeds the "
                       f"model.seq_len={cfg.seq_len} positions this model learned "
                       "(model.position=learned)")
    shape = (cfg.n_layers, batch_size, max_len, cfg.n_heads, cfg.head_dim)
    zeros = jnp.zeros(shape, jnp.dtype(cfg.dtype))
    return {"keys": zeros, "values": zeros, "index": jnp.zeros((), jnp.int32)}

  def decode(self, tokens_BxL: jax.Array, cache: dict) -> tuple[jax.Array, dict]:
    """Logits of the L tokens that continue the cached sequence, and the cache with them added."""
    index = cache["index"]
    positions_L = index + jnp.arange(tokens_BxL.shape[1])
    x_BxLxD = self._embed(tokens_BxL, positions_L)
    x_BxLxD, keys, values = self._decode_blocks(x_BxLxD, positions_L, self._rope(positions_L), cache)
    new_cache = {"keys": keys, "values": values, "index": index + tokens_BxL.shape[1]}
    return self._logits(x_BxLxD), new_cache

  def _rope(self, positions_L):
    """The rotary tables every layer uses (None without rotary positions)."""
    return rotary_tables(positions_L, self.cfg.head_dim) if self.cfg.position == "rotary" else None

  def _embed(self, tokens_BxL, positions_L):
    cfg = self.cfg
    x_BxLxD = layers.embed_tokens(self.embedding[...], tokens_BxL)
    if cfg.position == "learned":
      x_BxLxD = x_BxLxD + jnp.take(self.position_embedding[...], positions_L, axis=0)[None]
    return constrain(x_BxLxD.astype(jnp.dtype(cfg.dtype)), ("batch", "length", "act_embed"))

  def features(self, tokens_BxL: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(the final normed hidden states [B, L, D] in the compute dtype, the float32 unembedding
    [D, V]), whose product (`projection.dense`, as `_logits`) is the logits: for a loss that computes them a
    slice at a time."""
    positions_L = jnp.arange(tokens_BxL.shape[1])
    x_BxLxD = self._apply_blocks(self._embed(tokens_BxL, positions_L), positions_L,
                                 self._rope(positions_L))
    return self.final_norm(x_BxLxD).astype(jnp.dtype(self.cfg.dtype)), self._unembedding()

  def _unembedding(self):
    return self.embedding[...].T if self.cfg.tie_embeddings else self.unembedding[...]

  def _logits(self, x_BxLxD):
    x_BxLxD = self.final_norm(x_BxLxD).astype(jnp.dtype(self.cfg.dtype))
    # Logits and loss in float32 even under bf16 compute: the softmax over V needs the range.
    return project(x_BxLxD, self._unembedding(), jnp.float32, self.cfg.grad_dtype)

  def _decode_blocks(self, x_BxLxD, positions_L, rope, cache):
    """The residual stack over a chunk, reading and extending each layer's cached keys/values."""
    index = cache["index"]
    if not self.cfg.scan_layers:
      keys, values = [], []
      for layer, block in enumerate(self.blocks):
        x_BxLxD, (k, v) = block(x_BxLxD, positions_L, rope,
                                (cache["keys"][layer], cache["values"][layer], index))
        keys.append(k)
        values.append(v)
      return x_BxLxD, jnp.stack(keys), jnp.stack(values)

    # A plain lax.scan over the stacked blocks' arrays: decoding runs inside the sampler's own
    # lax.scan over tokens, from whose trace nnx.scan cannot take the blocks (they belong to the
    # enclosing jit's trace).
    graphdef, blocks_state = nnx.split(self.blocks)

    def scan_body(x_BxLxD, layer):
      block_state, keys_BxMxHxK, values_BxMxHxK = layer
      block = nnx.merge(graphdef, block_state)
      return block(x_BxLxD, positions_L, rope, (keys_BxMxHxK, values_BxMxHxK, index))

    x_BxLxD, (keys, values) = jax.lax.scan(
        scan_body, x_BxLxD, (blocks_state, cache["keys"], cache["values"]))
    return x_BxLxD, keys, values

  def _apply_blocks(self, x_BxLxD, positions_L, rope):
    """The residual stack: a Python loop, or a scan over stacked blocks; optionally rematerialized."""
    cfg = self.cfg

    def apply(block, x_BxLxD):
      return block(x_BxLxD, positions_L, rope)

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


def resize(target: float, rule: str, base_cfg: TransformerConfig) -> TransformerConfig:
  """`base_cfg` with the ladder's (d_model, n_layers, n_heads) for a non-embedding N of `target`."""
  shape = ladder.shape_for(target, rule, base_cfg)
  return dataclasses.replace(base_cfg, **dataclasses.asdict(shape))


registry.register("transformer", registry.Architecture(
    config=TransformerConfig,
    module=Transformer,
    param_counts=accounting.param_counts,
    flops_per_token=accounting.flops_per_token,
    resize=resize,
    axis_keys={"embed": "model.d_model", "heads": "model.n_heads",
               "mlp": "model.d_ff (MLP width)", "vocab": "model.vocab_size"},
))

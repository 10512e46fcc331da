"""Stacked LSTM language model (Hochreiter & Schmidhuber 1997), the recurrent baseline that
Kaplan et al. 2020 (Fig. 7) compare with Transformers.

Shape letters: B batch, L sequence length, T decoded chunk, D d_model (= hidden size), G the four
gates (i, f, g, o), V vocab, N n_layers.

embedding [V, D] -> input norm -> N LSTM layers (input width D) -> final norm -> output [D, V] (or
the tied embedding). The norms (`cfg.norm`: RMSNorm [D], or LayerNorm [D] + [D]) give the gates
unit-scale inputs and the logits a unit-scale h whatever `init_std` is (0.02 suits a Transformer's
normed residual stream, not an LSTM input): without them configs/tiny.py stalls near the unigram
loss (eval 3.28 vs 2.36 nats/byte after 300 steps). The input projection of all L steps is one
matmul before a `jax.lax.scan` over time; the scan body does only the recurrent matmul and the gate
arithmetic. The carried state (h, c) and the gate arithmetic are float32, matmuls run in
`cfg.dtype`, logits are float32. `__call__` is `decode` from a zero state, so decoding a prefix in
chunks gives the logits of the whole prefix.

Parameters of one layer: w_x [D, G=4, D], w_h [D, 4, D], b [4·D] -> 8·D² + 4·D. The bias is flat
so that weight decay (masked to ndim ≥ 2) leaves it alone; its forget-gate part starts at 1.

Forward FLOPs per token (a multiply-add = 2): each layer 2·4·(d_in + d)·d = 16·D² (bias adds, gate
nonlinearities and norms not counted); the chinchilla convention adds the embedding lookup as a
one-hot matmul 2·V·D and the logits 2·D·V. Training = 3 × forward (backward = 2 × forward).

The recurrent stack here (`Recurrent`, `param_counts_for`, `flops_per_token_for`) also builds the
Elman RNN (`scaling.models.rnn`), which differs only in its cell.
"""

import math
from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.models import accounting, layers, registry
from scaling.models.config import ModelConfig
from scaling.parallel.rules import constrain


class LstmLayer(nnx.Module):
  """One LSTM layer over a sequence: x_BxLxD, (h, c) -> h_BxLxD, (h, c)."""

  state_names = ("h", "c")

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
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
    xg_BxLxGxD = xg_BxLxGxD + self.b[...].reshape(4, D)

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


class Recurrent(nnx.Module):
  """tokens_BxL (int) -> logits_BxLxV (float32): embedding, norm, `layer_cls` stack, norm, output.

  A subclass names its `layer_cls`, whose `state_names` are the float32 [B, D] arrays each layer
  carries; the decode cache holds them stacked over layers ([N, B, D]) with the next position.
  """

  layer_cls: Callable  # (cfg, rngs=) -> a layer with `state_names`, (x_BxLxD, state) -> (y, state)

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    D, V = cfg.d_model, cfg.vocab_size
    self.embedding = layers.param(rngs, (V, D), ("vocab", "embed"), cfg.init_std)
    self.input_norm = layers.norm(cfg, rngs)
    self.layers = nnx.List([self.layer_cls(cfg, rngs=rngs) for _ in range(cfg.n_layers)])
    self.final_norm = layers.norm(cfg, rngs)
    if not cfg.tie_embeddings:
      self.unembedding = layers.param(rngs, (D, V), ("embed", "vocab"), cfg.init_std)

  def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
    logits_BxLxV, _ = self.decode(tokens_BxL, self.init_cache(tokens_BxL.shape[0], 0))
    return logits_BxLxV

  def init_cache(self, batch_size: int, max_len: int) -> dict:
    """Zero state for every layer and position 0. The state is O(1) in length: max_len is unused."""
    del max_len
    zeros_NxBxD = jnp.zeros((self.cfg.n_layers, batch_size, self.cfg.d_model), jnp.float32)
    cache = {name: zeros_NxBxD for name in self.layer_cls.state_names}
    return {**cache, "index": jnp.zeros((), jnp.int32)}

  def decode(self, tokens_BxT: jax.Array, cache: dict) -> tuple[jax.Array, dict]:
    """Logits of the T tokens that continue the cached sequence, and the state after them."""
    cfg = self.cfg
    dtype = jnp.dtype(cfg.dtype)
    x_BxTxD = self.input_norm(layers.embed_tokens(self.embedding[...], tokens_BxT))
    x_BxTxD = constrain(x_BxTxD.astype(dtype), ("batch", "length", "act_embed"))
    names = self.layer_cls.state_names
    new_states = []
    for n, layer in enumerate(self.layers):
      x_BxTxD, state = layer(x_BxTxD, tuple(cache[name][n] for name in names))
      x_BxTxD = constrain(x_BxTxD, ("batch", "length", "act_embed"))
      new_states.append(state)
    new_cache = {name: jnp.stack([s[k] for s in new_states]) for k, name in enumerate(names)}
    new_cache["index"] = cache["index"] + tokens_BxT.shape[1]
    x_BxTxD = self.final_norm(x_BxTxD).astype(dtype)
    unembedding_DxV = self.embedding[...].T if cfg.tie_embeddings else self.unembedding[...]
    # Logits and loss in float32 even under bf16 compute: the softmax over V needs the range.
    logits_BxTxV = jnp.einsum("BTD,DV->BTV", x_BxTxD, unembedding_DxV.astype(dtype),
                              preferred_element_type=jnp.float32)
    return logits_BxTxV, new_cache


class Lstm(Recurrent):
  """Embedding, stacked LSTM layers, output; see the module docstring."""

  layer_cls = LstmLayer


def param_counts_for(cfg: ModelConfig, per_layer: int) -> dict[str, int]:
  """{total, embedding, non_embedding} of a `Recurrent` stack whose layers hold `per_layer` each.

  embedding = token embedding [V, D] + the untied output matrix [D, V] (Kaplan et al. 2020's N
  excludes both); non_embedding = the recurrent layers + the input and final norms.
  """
  D, V = cfg.d_model, cfg.vocab_size
  embedding = V * D + (0 if cfg.tie_embeddings else D * V)
  non_embedding = cfg.n_layers * per_layer + 2 * accounting.norm_params(cfg)
  return {"total": embedding + non_embedding, "embedding": embedding,
          "non_embedding": non_embedding}


def flops_per_token_for(cfg: ModelConfig, counts: dict, layer_forward: int) -> dict[str, float]:
  """Training FLOPs per token, one entry per `accounting.CONVENTIONS` name; layer_forward per layer.

  - "kaplan": 6·N (N = non_embedding, norms and biases included, as Kaplan counts them); a recurrent
    model has no context-dependent attention term.
  - "chinchilla": 3 × (embedding one-hot matmul 2·V·D + n_layers·layer_forward + logits 2·D·V),
    whether or not embeddings are tied, like `accounting._chinchilla_forward_per_sequence`.
  - "6n": 6·N; "6n_total": 6 × all parameters.
  """
  D, V = cfg.d_model, cfg.vocab_size
  n = counts["non_embedding"]
  forward = 2 * V * D + cfg.n_layers * layer_forward + 2 * D * V
  return {"kaplan": float(6 * n), "chinchilla": float(3 * forward), "6n": float(6 * n),
          "6n_total": float(6 * counts["total"])}


def param_counts(cfg: ModelConfig) -> dict[str, int]:
  """Per layer w_x [D, 4, D] + w_h [D, 4, D] + b [4·D] = 8·D² + 4·D."""
  D = cfg.d_model
  return param_counts_for(cfg, 8 * D * D + 4 * D)


def flops_per_token(cfg: ModelConfig) -> dict[str, float]:
  """Per layer forward 2·4·(d_in + d)·d = 16·D² (d_in = d = D)."""
  D = cfg.d_model
  return flops_per_token_for(cfg, param_counts(cfg), 2 * 4 * (D + D) * D)


registry.register("lstm", registry.Architecture(
    module=Lstm, param_counts=param_counts, flops_per_token=flops_per_token))

"""The recurrent stack the LSTM (`scaling.models.lstm`) and Elman RNN (`scaling.models.rnn`) share;
they differ only in their cell (`layer_cls`), its parameter count and its FLOPs.

Shape letters: the legend in `scaling.models`.

embedding [V, D] -> input norm -> Z layers (input width D) -> final norm -> output [D, V] (or the
tied embedding). The norms (`cfg.norm`) give the cells unit-scale inputs and the logits a unit-scale
h whatever `init_std` is (0.02 suits a Transformer's normed residual stream, not a recurrent input).
The carried state is float32, matmuls run in `cfg.dtype`, logits are float32. `__call__` is
`decode` from a zero state, so decoding a prefix in chunks gives the logits of the whole prefix.

A recurrent family reads only the keys every family reads (`ModelConfig`); its size ladder keeps
`model.n_layers` and picks the width (Kaplan et al. 2020 Fig. 7 compares LSTMs of a few depths).
"""

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.models import config, ladder, layers, registry
from scaling.parallel.rules import constrain


@dataclasses.dataclass(frozen=True)
class RecurrentConfig(config.ModelConfig):
  """A stacked recurrent model: `arch` names the cell (lstm | rnn)."""

  arch: str = "lstm"


class Recurrent(nnx.Module):
  """tokens_BxL (int) -> logits_BxLxV (float32): embedding, norm, `layer_cls` stack, norm, output.

  A subclass names its `layer_cls`, whose `state_names` are the float32 [B, D] arrays each layer
  carries; the decode cache holds them stacked over layers ([Z, B, D]) with the next position.
  """

  layer_cls: Callable  # (cfg, rngs=) -> a layer with `state_names`, (x_BxLxD, state) -> (y, state)

  def __init__(self, cfg: RecurrentConfig, *, rngs: nnx.Rngs):
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
    zeros_ZxBxD = jnp.zeros((self.cfg.n_layers, batch_size, self.cfg.d_model), jnp.float32)
    cache = {name: zeros_ZxBxD for name in self.layer_cls.state_names}
    return {**cache, "index": jnp.zeros((), jnp.int32)}

  def decode(self, tokens_BxL: jax.Array, cache: dict) -> tuple[jax.Array, dict]:
    """Logits of the L tokens that continue the cached sequence, and the state after them."""
    cfg = self.cfg
    dtype = jnp.dtype(cfg.dtype)
    x_BxLxD = self.input_norm(layers.embed_tokens(self.embedding[...], tokens_BxL))
    x_BxLxD = constrain(x_BxLxD.astype(dtype), ("batch", "length", "act_embed"))
    names = self.layer_cls.state_names
    new_states = []
    for n, layer in enumerate(self.layers):
      x_BxLxD, state = layer(x_BxLxD, tuple(cache[name][n] for name in names))
      x_BxLxD = constrain(x_BxLxD, ("batch", "length", "act_embed"))
      new_states.append(state)
    new_cache = {name: jnp.stack([s[k] for s in new_states]) for k, name in enumerate(names)}
    new_cache["index"] = cache["index"] + tokens_BxL.shape[1]
    x_BxLxD = self.final_norm(x_BxLxD).astype(dtype)
    unembedding_DxV = self.embedding[...].T if cfg.tie_embeddings else self.unembedding[...]
    # Logits and loss in float32 even under bf16 compute: the softmax over V needs the range.
    logits_BxLxV = jnp.einsum("BLD,DV->BLV", x_BxLxD, unembedding_DxV.astype(dtype),
                              preferred_element_type=jnp.float32)
    return logits_BxLxV, new_cache


def param_counts_for(cfg: RecurrentConfig, per_layer: int) -> dict[str, int]:
  """{total, embedding, non_embedding} of a `Recurrent` stack whose layers hold `per_layer` each.

  embedding = token embedding [V, D] + the untied output matrix [D, V] (Kaplan et al. 2020's N
  excludes both); non_embedding = the recurrent layers + the input and final norms.
  """
  D, V = cfg.d_model, cfg.vocab_size
  embedding = V * D + (0 if cfg.tie_embeddings else D * V)
  non_embedding = cfg.n_layers * per_layer + 2 * layers.norm_params(cfg)
  return {"total": embedding + non_embedding, "embedding": embedding,
          "non_embedding": non_embedding}


def flops_per_token_for(cfg: RecurrentConfig, counts: dict, layer_forward: int) -> dict[str, float]:
  """Training FLOPs per token, one entry per `registry.CONVENTIONS` name; layer_forward per layer.

  - "kaplan": 6·N (N = non_embedding, norms and biases included, as Kaplan counts them); a recurrent
    model has no context-dependent attention term.
  - "chinchilla": 3 × (embedding one-hot matmul 2·V·D + n_layers·layer_forward + logits 2·D·V),
    whether or not embeddings are tied, as the Transformer's (`accounting`) counts them.
  - "6n": 6·N; "6n_total": 6 × all parameters.
  """
  D, V = cfg.d_model, cfg.vocab_size
  n = counts["non_embedding"]
  forward = 2 * V * D + cfg.n_layers * layer_forward + 2 * D * V
  return {"kaplan": float(6 * n), "chinchilla": float(3 * forward), "6n": float(6 * n),
          "6n_total": float(6 * counts["total"])}


def resize(target: float, rule: str, base_cfg: RecurrentConfig) -> RecurrentConfig:
  """`base_cfg` at its own depth, with the ladder's grid width whose N is nearest `target`.

  The ladder's depth rules (`rule`) are the Transformer's aspect ratios, so they are checked but do
  not shape a recurrent model.
  """
  ladder.depth_rule(rule)
  ladder.check_target(target)
  counts = registry.get(base_cfg.arch).param_counts

  def n_non_embedding(d_model: int) -> int:
    return counts(dataclasses.replace(base_cfg, d_model=d_model))["non_embedding"]

  return dataclasses.replace(base_cfg, d_model=ladder.closest_width(target, n_non_embedding))


def architecture(module: Callable, param_counts: Callable, flops_per_token: Callable):
  """The registry entry of a `Recurrent` family: its hidden units split over `recurrent`."""
  return registry.Architecture(
      config=RecurrentConfig, module=module, param_counts=param_counts,
      flops_per_token=flops_per_token, resize=resize,
      axis_keys={"embed": "model.d_model", "recurrent": "model.d_model",
                 "vocab": "model.vocab_size"})

"""The Transformer family: real parameters match the accounting, attention is causal."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling import models
from scaling.errors import InputError
from scaling.models import ModelConfig, layers, registry
from scaling.models.transformer import Transformer
from scaling.parallel import mesh as mesh_lib
from scaling.parallel import rules
from scaling.train import config as config_lib
from scaling.train import state as state_lib
from scaling.train.config import defaults
from small_runs import build_model, decode_in_chunks

STYLES = {
    "kaplan": dict(norm="layernorm", mlp="gelu", position="learned", tie_embeddings=True),
    "modern": dict(norm="rmsnorm", mlp="swiglu", position="rotary", tie_embeddings=False),
    "mixed": dict(norm="layernorm", mlp="swiglu", position="learned", tie_embeddings=False, d_ff=40),
}




@pytest.mark.parametrize("style", STYLES.values(), ids=STYLES.keys())
def test_attention_is_causal(style):
  """Changing tokens after position t leaves the logits at positions ≤ t unchanged."""
  cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, seq_len=16, **style)
  model = build_model(cfg)
  tokens = jax.random.randint(jax.random.key(1), (2, 16), 0, 256)
  changed = tokens.at[:, 9:].set((tokens[:, 9:] + 7) % 256)
  forward = nnx.jit(lambda model, tokens: model(tokens))
  logits, logits_changed = forward(model, tokens), forward(model, changed)
  assert logits.shape == (2, 16, 256) and logits.dtype == jnp.float32
  np.testing.assert_allclose(logits[:, :9], logits_changed[:, :9], atol=1e-6)
  assert not np.allclose(logits[:, 9:], logits_changed[:, 9:])


def test_bfloat16_compute_keeps_float32_params_and_logits():
  model = build_model(ModelConfig(d_model=32, n_layers=1, n_heads=4, seq_len=8, dtype="bfloat16"))
  logits = nnx.jit(lambda model, tokens: model(tokens))(model, jnp.zeros((1, 8), jnp.int32))
  assert logits.dtype == jnp.float32
  assert {x.dtype for x in jax.tree.leaves(nnx.state(model, nnx.Param))} == {jnp.dtype("float32")}


@pytest.mark.parametrize("values,named", [
    (dict(d_model=30, n_heads=4), "model.n_heads"),
    (dict(d_model=0), "model.d_model"),
    (dict(mlp="relu"), "model.mlp"),
    (dict(widht=3), "model.widht"),
])
def test_bad_model_config_names_the_key(values, named):
  with pytest.raises(InputError, match=named):
    ModelConfig.from_dict(values)


def test_unknown_architecture_lists_known_ones():
  with pytest.raises(InputError, match="transformer"):
    models.get("lstm-that-does-not-exist")


@pytest.mark.parametrize("remat", [
    "none", pytest.param("full", marks=pytest.mark.slow), pytest.param("dots", marks=pytest.mark.slow)])
def test_scanned_blocks_compute_what_the_loop_computes(remat):
  """Same weights, laid out stacked for nnx.scan or as a list: the same logits and gradients."""
  loop_cfg = ModelConfig(d_model=32, n_layers=3, n_heads=4, seq_len=16)
  scan_cfg = dataclasses.replace(loop_cfg, scan_layers=True, remat=remat)
  mesh = mesh_lib.make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
  with jax.set_mesh(mesh), rules.axis_rules():
    scanned = nnx.jit(lambda: models.get("transformer").module(scan_cfg, rngs=nnx.Rngs(0)))()
    looped = nnx.jit(lambda: models.get("transformer").module(loop_cfg, rngs=nnx.Rngs(1)))()
    stacked = nnx.to_pure_dict(nnx.state(scanned))
    weights = nnx.to_pure_dict(nnx.state(looped))
    for key, value in stacked.items():
      if key != "blocks":
        weights[key] = value
    for layer in range(loop_cfg.n_layers):
      weights["blocks"][layer] = jax.tree.map(lambda x: x[layer], stacked["blocks"])
    state = nnx.state(looped)
    nnx.replace_by_pure_dict(state, weights)
    nnx.update(looped, state)
    tokens = jax.random.randint(jax.random.key(2), (2, 16), 0, 256)
    loss = nnx.jit(lambda model: model(tokens).mean())
    grad = nnx.jit(nnx.grad(lambda model: model(tokens).std()))
    np.testing.assert_allclose(loss(scanned), loss(looped), rtol=1e-5)
    g_scan, g_loop = nnx.to_pure_dict(grad(scanned)), nnx.to_pure_dict(grad(looped))
    np.testing.assert_allclose(g_scan["blocks"]["mlp"]["w_out"][2],
                               g_loop["blocks"][2]["mlp"]["w_out"], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("style", [*STYLES.values(), dict(scan_layers=True, remat="full")],
                         ids=[*STYLES.keys(), "scanned"])
def test_kv_cached_decoding_gives_the_full_forward_logits(style):
  """A prefix decoded as 5 tokens, then one at a time, matches one full forward pass on it."""
  cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, seq_len=16, **style)
  tokens_BxL = jax.random.randint(jax.random.key(1), (2, 12), 0, 256)
  full_BxLxV, chunked_BxLxV, cache = decode_in_chunks(build_model(cfg), tokens_BxL, max_len=16)
  np.testing.assert_allclose(chunked_BxLxV, full_BxLxV, atol=2e-6)
  assert int(cache["index"]) == 12


def test_learned_positions_refuse_to_decode_past_seq_len():
  model = build_model(ModelConfig(d_model=32, n_layers=1, n_heads=4, seq_len=16, position="learned"))
  with pytest.raises(InputError, match="model.seq_len=16"):
    model.init_cache(1, 17)
  assert build_model(ModelConfig(d_model=32, n_layers=1, n_heads=4, seq_len=16)).init_cache(
      1, 17)["keys"].shape == (1, 1, 17, 4, 8)  # rotary: any length


def test_attention_runs_on_xla_off_gpu_and_as_asked():
  from scaling.models.transformer import attention_implementation

  bf16 = ModelConfig(dtype="bfloat16")
  assert attention_implementation(bf16) == ("cudnn" if jax.default_backend() == "gpu" else "xla")
  assert attention_implementation(ModelConfig()) == "xla"  # float32: cuDNN's kernel is bf16/fp16
  assert attention_implementation(ModelConfig(attention="cudnn")) == "cudnn"
  assert attention_implementation(ModelConfig(attention="blockwise")) == "blockwise"
  with pytest.raises(InputError, match="model.attention"):
    ModelConfig(attention="flash")


# The layout before q/k/v and gate/up were fused: three [D, H, K] and two [D, F] weights, each its
# own einsum over [B, L, D], and the rotary angles computed inside every layer. It is the reference
# the fused model must train like.


def _rotary_per_layer(x_BxLxHxK, positions_L):
  half = x_BxLxHxK.shape[-1] // 2
  inv_freq = 1.0 / (10_000.0 ** (jnp.arange(half, dtype=jnp.float32) / half))
  angle_LxK = positions_L.astype(jnp.float32)[:, None] * inv_freq[None, :]
  sin, cos = jnp.sin(angle_LxK)[None, :, None, :], jnp.cos(angle_LxK)[None, :, None, :]
  x1, x2 = jnp.split(x_BxLxHxK.astype(jnp.float32), 2, axis=-1)
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x_BxLxHxK.dtype)


class _UnfusedAttention(nnx.Module):
  def __init__(self, cfg, *, rngs):
    self.cfg = cfg
    D, H, K = cfg.d_model, cfg.n_heads, cfg.head_dim
    for name in ("wq", "wk", "wv"):
      setattr(self, name, layers.param(rngs, (D, H, K), ("embed", "heads", "head_dim"), 1.0))
    self.wo = layers.param(rngs, (H, K, D), ("heads", "head_dim", "embed"), 1.0)

  def __call__(self, x_BxLxD, positions_L, rope, kv_cache=None):
    del rope, kv_cache
    q, k, v = (jnp.einsum("BLD,DHK->BLHK", x_BxLxD, w[...]) for w in (self.wq, self.wk, self.wv))
    if self.cfg.position == "rotary":
      q, k = _rotary_per_layer(q, positions_L), _rotary_per_layer(k, positions_L)
    out_BxLxHxK = jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation="xla")
    return jnp.einsum("BLHK,HKD->BLD", out_BxLxHxK, self.wo[...])


class _UnfusedMlp(nnx.Module):
  def __init__(self, cfg, *, rngs):
    self.cfg = cfg
    D, F = cfg.d_model, cfg.hidden_dim
    self.w_in = layers.param(rngs, (D, F), ("embed", "mlp"), 1.0)
    if cfg.mlp == "swiglu":
      self.w_gate = layers.param(rngs, (D, F), ("embed", "mlp"), 1.0)
    self.w_out = layers.param(rngs, (F, D), ("mlp", "embed"), 1.0)

  def __call__(self, x_BxLxD):
    h_BxLxF = jnp.einsum("BLD,DF->BLF", x_BxLxD, self.w_in[...])
    if self.cfg.mlp == "swiglu":
      h_BxLxF = jax.nn.silu(jnp.einsum("BLD,DF->BLF", x_BxLxD, self.w_gate[...])) * h_BxLxF
    else:
      h_BxLxF = jax.nn.gelu(h_BxLxF)
    return jnp.einsum("BLF,FD->BLD", h_BxLxF, self.w_out[...])


class _UnfusedTransformer(Transformer):
  def __init__(self, cfg, *, rngs):
    super().__init__(cfg, rngs=rngs)
    for block in self.blocks:
      block.attn, block.mlp = _UnfusedAttention(cfg, rngs=rngs), _UnfusedMlp(cfg, rngs=rngs)

  def _logits(self, x_BxLxD):
    unembedding_DxV = self.embedding[...].T if self.cfg.tie_embeddings else self.unembedding[...]
    return jnp.einsum("BLD,DV->BLV", self.final_norm(x_BxLxD), unembedding_DxV)


def _unfused_weights(fused: dict, unfused: dict, cfg) -> dict:
  """The fused model's weights in the unfused layout (q, k, v and gate, up split out)."""
  weights = {key: value for key, value in fused.items() if key != "blocks"}
  weights["blocks"] = {}
  for layer, block in fused["blocks"].items():
    attn = {"wo": block["attn"]["wo"]}
    attn["wq"], attn["wk"], attn["wv"] = (block["attn"]["wqkv"][:, c] for c in range(3))
    mlp = {"w_out": block["mlp"]["w_out"]}
    if cfg.mlp == "swiglu":
      mlp["w_gate"], mlp["w_in"] = block["mlp"]["w_gate_up"][:, 0], block["mlp"]["w_gate_up"][:, 1]
    else:
      mlp["w_in"] = block["mlp"]["w_in"]
    weights["blocks"][layer] = {**block, "attn": attn, "mlp": mlp}
  assert jax.tree.structure(weights) == jax.tree.structure(unfused)
  return weights


@pytest.mark.parametrize("style", [STYLES["modern"], STYLES["kaplan"]], ids=["modern", "kaplan"])
def test_fused_projections_train_as_the_unfused_layout(style, monkeypatch):
  """20 train steps (the trainer's own `state.build`) from the same weights, fused and unfused:
  the same losses to 1e-5 relative."""
  monkeypatch.setitem(registry._ARCHITECTURES, "unfused", dataclasses.replace(
      models.get("transformer"), module=_UnfusedTransformer))
  config = defaults()
  config.model.update(d_model=32, n_layers=2, n_heads=4, seq_len=32, **style)
  config.update(batch_size=8, train_steps=20, warmup_steps=2, learning_rate=3e-3)
  cfg = config_lib.validate(config, vocab_size=256)
  unfused_cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, arch="unfused"))
  mesh = mesh_lib.make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
  fused_steps, unfused_steps = state_lib.build(cfg, mesh), state_lib.build(unfused_cfg, mesh)
  fused, unfused = fused_steps.init(), unfused_steps.init()
  weights = _unfused_weights(jax.device_get(nnx.to_pure_dict(fused[0])),  # copies: `train` donates
                             nnx.to_pure_dict(unfused[0]), cfg.model)
  nnx.replace_by_pure_dict(unfused[0], jax.tree.map(jnp.asarray, weights))
  batches = np.random.default_rng(0).integers(0, 16, (20, 8, 33), dtype=np.int32)  # learnable
  losses = {"fused": [], "unfused": []}
  for name, steps, state in (("fused", fused_steps, fused), ("unfused", unfused_steps, unfused)):
    first_bad = steps.no_bad_step()
    for batch_BxW in batches:
      state, metrics, first_bad = steps.train(state, jnp.asarray(batch_BxW), first_bad)
      losses[name].append(float(metrics["loss"]))
  assert losses["fused"][-1] < losses["fused"][0] - 0.05  # it trained
  np.testing.assert_allclose(losses["fused"], losses["unfused"], rtol=1e-5)


@pytest.mark.slow  # 22 s: five policies, each compiled
def test_every_cpu_remat_policy_gives_the_gradients_of_none():
  """Policies change what is kept for the backward pass, never what it computes."""
  from scaling.models.transformer import REMAT_POLICIES

  cfg = ModelConfig(d_model=32, n_layers=1, n_heads=4, seq_len=16)
  tokens = jax.random.randint(jax.random.key(2), (2, 16), 0, 256)
  grads = {}
  for remat in ("none", *sorted(set(REMAT_POLICIES) - {"offload"})):
    model = build_model(dataclasses.replace(cfg, remat=remat))
    grads[remat] = nnx.to_pure_dict(nnx.jit(nnx.grad(lambda model: model(tokens).std()))(model))
  for remat, grad in grads.items():
    for got, want in zip(jax.tree.leaves(grad), jax.tree.leaves(grads["none"])):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=remat)


def test_offloading_remat_is_refused_off_tpu_naming_the_key():
  with pytest.raises(InputError, match="model.remat=offload needs a TPU"):
    state_lib.for_platform(ModelConfig(remat="offload"), "cpu")


@pytest.mark.parametrize("grad_dtype", ["float32", "bfloat16"])
def test_grad_dtype_keeps_the_loss_and_gradients_of_a_bf16_model(grad_dtype):
  """A bf16 model's gradients with the matmul weights' summed in grad_dtype agree with the float32
  model's within bf16 tolerance; float32 summation no farther from them than bfloat16's."""
  cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, seq_len=16, vocab_size=64)
  tokens = jax.random.randint(jax.random.key(4), (4, 17), 0, 64)

  def grads_of(cfg):
    model = build_model(cfg)
    loss_fn = lambda model: state_lib.model_loss(model, tokens[:, :-1], tokens[:, 1:])
    return nnx.jit(nnx.value_and_grad(loss_fn))(model)

  loss32, grads32 = grads_of(cfg)
  loss, grads = grads_of(dataclasses.replace(cfg, dtype="bfloat16", grad_dtype=grad_dtype))
  np.testing.assert_allclose(loss, loss32, rtol=2e-2)
  for got, want in zip(jax.tree.leaves(nnx.to_pure_dict(grads)), jax.tree.leaves(nnx.to_pure_dict(grads32))):
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, rtol=0.1, atol=0.05 * np.abs(want).max())


def test_grad_dtype_is_the_runs_key_not_the_models():
  config = defaults()
  config.grad_dtype = "bfloat16"
  assert config_lib.validate(config, vocab_size=256).model.grad_dtype == "bfloat16"
  config.grad_dtype = "float16"
  with pytest.raises(InputError, match="grad_dtype"):
    config_lib.validate(config, vocab_size=256)
  config = defaults()
  config.model.grad_dtype = "bfloat16"
  with pytest.raises(InputError, match="use --config.grad_dtype"):
    config_lib.validate(config, vocab_size=256)

"""The Transformer family: real parameters match the accounting, attention is causal."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling import models
from scaling.errors import InputError
from scaling.models import ModelConfig
from scaling.parallel import mesh as mesh_lib
from scaling.parallel import rules
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
  with pytest.raises(InputError, match="model.attention"):
    ModelConfig(attention="flash")

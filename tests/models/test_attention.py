"""scaling.models.attention: every kernel computes the reference attention, values and gradients."""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling.errors import InputError
from scaling.models import ModelConfig, attention

TOLERANCE = {jnp.float32: dict(rtol=1e-5, atol=1e-5), jnp.bfloat16: dict(rtol=2e-2, atol=2e-2)}


def _inputs(B, L, H, K, dtype):
  keys = jax.random.split(jax.random.key(0), 4)
  q, k, v, g = (jax.random.normal(key, (B, L, H, K), jnp.float32).astype(dtype) for key in keys)
  return q, k, v, g


def _value_and_grads(fn, q, k, v, g):
  """The output, and the gradients of <output, g> with respect to q, k, v."""
  def loss(q, k, v):
    return jnp.sum(fn(q, k, v).astype(jnp.float32) * g.astype(jnp.float32))
  return jax.jit(fn)(q, k, v), jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v)


def _reference(q, k, v):
  return jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation="xla")


def _assert_matches(fn, q, k, v, g):
  dtype = q.dtype
  out, grads = _value_and_grads(fn, q, k, v, g)
  # The reference in float32, so a bf16 kernel is held to the error of bf16 inputs alone.
  up = [x.astype(jnp.float32) for x in (q, k, v, g)]
  ref_out, ref_grads = _value_and_grads(_reference, *up)
  assert out.dtype == dtype
  np.testing.assert_allclose(out.astype(jnp.float32), ref_out, **TOLERANCE[jnp.dtype(dtype).type])
  for got, want in zip(grads, ref_grads):
    assert got.dtype == dtype
    np.testing.assert_allclose(got.astype(jnp.float32), want, **TOLERANCE[jnp.dtype(dtype).type])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("block", [16, 64])
def test_blockwise_attention_equals_the_reference_values_and_gradients(dtype, block):
  q, k, v, g = _inputs(2, 64, 3, 16, dtype)
  _assert_matches(lambda q, k, v: attention.blockwise_attention(q, k, v, block), q, k, v, g)


def test_the_xla_kernel_equals_the_reference():
  _assert_matches(attention.causal_attention, *_inputs(2, 32, 2, 8, jnp.float32))


def test_blockwise_attention_never_holds_a_sequence_by_sequence_array():
  """Neither the forward nor the backward program has an L × L array (L = 256, blocks of 32),
  while the XLA kernel's does."""
  q, k, v, g = _inputs(1, 256, 2, 8, jnp.float32)

  def program(fn):
    loss = lambda q, k, v: jnp.sum(fn(q, k, v) * g)
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2))).lower(q, k, v).as_text()

  square = re.compile(r"tensor<(?:\d+x)*256x256x")
  assert not square.search(program(lambda q, k, v: attention.blockwise_attention(q, k, v, 32)))
  assert square.search(program(attention.causal_attention))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
def test_splash_kernel_in_interpret_mode_equals_the_reference(dtype):
  """The TPU kernel itself, run by Pallas's interpreter on this CPU (two 128-position blocks)."""
  q, k, v, g = _inputs(1, 256, 1, 128, dtype)
  _assert_matches(lambda q, k, v: attention.splash_attention(q, k, v, interpret=True), q, k, v, g)


def test_auto_picks_by_the_platform_the_step_is_compiled_for():
  long = ModelConfig(seq_len=2048, dtype="bfloat16", d_model=128, n_heads=2)
  short = dataclasses.replace(long, seq_len=64)
  assert attention.implementation(long, "tpu") == "splash"
  assert attention.implementation(long, "gpu") == "cudnn"
  assert attention.implementation(dataclasses.replace(long, dtype="float32"), "gpu") == "xla"
  assert attention.implementation(long, "cpu") == "blockwise"
  assert attention.implementation(short, "cpu") == "xla"
  assert attention.implementation(dataclasses.replace(long, seq_len=200), "tpu") == "xla"


@pytest.mark.parametrize("kernel,platform", [("splash", "cpu"), ("cudnn", "tpu")])
def test_a_kernel_the_platform_cannot_run_is_refused_naming_the_key(kernel, platform):
  with pytest.raises(InputError, match=f"model.attention={kernel} needs"):
    attention.implementation(ModelConfig(attention=kernel, seq_len=128), platform)


def test_splash_flops_are_counted_never_zero():
  """Causal blocks on or below the diagonal: at L = 1024 in blocks of 512, 3 of 4; forward 2,
  backward 7 block matmuls of 2·b²·K each (remat none)."""
  cfg = ModelConfig(seq_len=1024, d_model=256, n_heads=2, n_layers=3, attention="splash")
  per_block = 2 * 512 * 512 * 128
  expected = per_block * 3 * (2 + 7) * 8 * 2 * 3  # blocks × matmuls × batch × heads × layers
  assert attention.kernel_flops_per_step(cfg, "tpu", 8) == expected
  rematerialized = dataclasses.replace(cfg, remat="full")
  assert attention.kernel_flops_per_step(rematerialized, "tpu", 8) == expected * 11 / 9
  assert attention.kernel_flops_per_step(dataclasses.replace(cfg, attention="xla"), "tpu", 8) == 0


def test_the_train_step_compiles_for_a_tpu_with_the_splash_kernel(tmp_path):
  """`auto` on a TPU topology (this host a CPU) builds the step with splash under shard_map; libtpu
  compiles it, and its FLOPs count the kernel's."""
  from scaling.compile import aot, cli, topology

  cfg, resolved = cli.load_train_config("configs/tiny.py", [
      "--config.model.dtype=bfloat16", "--config.model.d_model=128", "--config.model.n_heads=1",
      "--config.model.seq_len=256", "--config.batch_size=8", "--config.model.n_layers=1",
      "--config.mesh.data=2", "--config.mesh.fsdp=2"])
  hlo = tmp_path / "step.hlo"
  report = aot.compile_step(cfg, resolved, topology.parse("v5litepod-4"), hlo_path=str(hlo))
  assert report["memory_per_device"]["fits"]
  assert "tpu_custom_call" in hlo.read_text()
  flops = report["flops"]
  assert flops["kernel_per_step"] == attention.kernel_flops_per_step(
      dataclasses.replace(cfg.model, attention="splash"), "tpu", 8) > 0
  assert flops["xla_per_step"] > flops["xla_reported_per_step"] + flops["kernel_per_step"] * 0.99


def test_a_transformer_with_blockwise_attention_computes_the_xla_one():
  from flax import nnx

  from small_runs import build_model

  cfg = ModelConfig(d_model=32, n_layers=1, n_heads=2, seq_len=128, attention="xla")
  tokens = jax.random.randint(jax.random.key(1), (2, 128), 0, 256)
  logits = {}
  for kind in ("xla", "blockwise"):
    model = build_model(dataclasses.replace(cfg, attention=kind))
    logits[kind] = nnx.jit(lambda model, tokens: model(tokens))(model, tokens)
  np.testing.assert_allclose(logits["blockwise"], logits["xla"], rtol=1e-5, atol=1e-5)

"""The recurrent stack (`scaling.models.recurrent`), for both cells that use it (lstm, rnn): real
parameters match the accounting, chunked decoding matches the full forward, it trains through the
real trainer, the same on a (data, fsdp, tensor) mesh as on one device, and its ladder widens it at
its own depth. Then each cell's cost, by hand."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling import models
from scaling.models import ModelConfig, ladder
from scaling.train import trainer
from small_runs import build_model, decode_in_chunks, losses, small_config

FAMILIES = ("lstm", "rnn")
STATE_NAMES = {"lstm": {"h", "c"}, "rnn": {"h"}}  # what each layer carries, [n_layers, B, D] each


@pytest.mark.parametrize("arch", FAMILIES)
@pytest.mark.parametrize("values", [
    dict(tie_embeddings=True), dict(tie_embeddings=False),
    dict(tie_embeddings=False, norm="layernorm", n_layers=3, d_model=24, vocab_size=100)])
def test_param_counts_are_the_real_parameters(arch, values):
  cfg = ModelConfig(**{"arch": arch, "d_model": 32, "n_layers": 2, "seq_len": 16, **values})
  model = build_model(cfg)
  counts = models.get(arch).param_counts(cfg)
  real = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert counts["total"] == real
  assert counts["embedding"] == cfg.vocab_size * cfg.d_model * (1 if cfg.tie_embeddings else 2)
  assert counts["non_embedding"] == counts["total"] - counts["embedding"]


@pytest.mark.parametrize("arch", FAMILIES)
def test_decoding_in_chunks_gives_the_full_forward_logits(arch):
  cfg = ModelConfig(arch=arch, d_model=32, n_layers=2, seq_len=16)
  tokens_BxL = jax.random.randint(jax.random.key(1), (2, 12), 0, cfg.vocab_size)
  full_BxLxV, chunked_BxLxV, cache = decode_in_chunks(build_model(cfg), tokens_BxL, max_len=16)
  assert int(cache["index"]) == 12 and set(cache) == {*STATE_NAMES[arch], "index"}
  assert all(cache[name].shape == (2, 2, 32) for name in STATE_NAMES[arch])
  np.testing.assert_allclose(chunked_BxLxV, full_BxLxV, atol=1e-5)


@pytest.mark.parametrize("arch", FAMILIES)
def test_bfloat16_compute_keeps_float32_params_and_logits(arch):
  model = build_model(ModelConfig(arch=arch, d_model=32, n_layers=1, seq_len=8, dtype="bfloat16"))
  logits = nnx.jit(lambda model, tokens: model(tokens))(model, jnp.zeros((1, 8), jnp.int32))
  assert logits.dtype == jnp.float32 and np.isfinite(logits).all()
  assert {x.dtype for x in jax.tree.leaves(nnx.state(model, nnx.Param))} == {jnp.dtype("float32")}


@pytest.mark.parametrize("arch", FAMILIES)
def test_trains_and_a_mesh_gives_the_single_device_losses(arch, text_corpus, tmp_path):
  # One layer: stacking is covered above, and compile time is most of this test.
  overrides = {"model.arch": arch, "model.n_layers": 1, "train_steps": 8, "learning_rate": 1e-2,
               "eval_every": 8, "eval_batches": 1, "checkpoint_every": 8}
  trainer.train(small_config(text_corpus, **overrides), str(tmp_path / "one"),
                devices=jax.devices()[:1])
  one = losses(tmp_path / "one")
  assert len(one) == 8 and one[-1] < one[0] - 0.3
  mesh = {"mesh.data": 2, "mesh.fsdp": 2, "mesh.tensor": 2}
  trainer.train(small_config(text_corpus, **overrides, **mesh), str(tmp_path / "mesh"))
  np.testing.assert_allclose(losses(tmp_path / "mesh"), one, rtol=1e-4)


@pytest.mark.parametrize("arch", FAMILIES)
def test_the_ladder_widens_a_recurrent_model_at_its_own_depth(arch):
  base = ModelConfig(arch=arch, n_layers=3, norm="layernorm")
  targets = np.geomspace(2e4, 1e8, 9)
  cfgs = ladder.ladder(targets, "chinchilla", base)
  counts = [models.get(arch).param_counts(cfg)["non_embedding"] for cfg in cfgs]
  assert all(cfg == dataclasses.replace(base, d_model=cfg.d_model) for cfg in cfgs)
  assert counts == sorted(counts)
  assert all(abs(math.log(n / target)) < math.log(1.125) for n, target in zip(counts, targets))


# D=64 N=2 V=256 S=64, rmsnorm, untied: embedding 2·256·64 = 32_768, two rmsnorms 128, forward
# embedding one-hot 2·256·64 = 32_768 and logits 32_768; training = 3 × forward.
BY_HAND = {
    # Layer: w_x, w_h 2·4·64·64 = 32_768 + b 256 = 33_024; ×2 + 128 -> non_embedding 66_176.
    # Forward: 32_768 + 2 layers × 2·4·(64+64)·64 = 131_072 + 32_768 = 196_608; ×3 = 589_824.
    # kaplan = 6n = 6·66_176 = 397_056; 6n_total = 6·98_944.
    "lstm": ({"total": 98_944, "embedding": 32_768, "non_embedding": 66_176},
             {"kaplan": 397_056.0, "chinchilla": 589_824.0, "6n": 397_056.0,
              "6n_total": 593_664.0}),
    # Layer: w_x, w_h 2·64·64 = 8_192 + b 64 = 8_256; ×2 + 128 -> non_embedding 16_640.
    # Forward: 32_768 + 2 layers × 2·(64+64)·64 = 32_768 + 32_768 = 98_304; ×3 = 294_912.
    # kaplan = 6n = 6·16_640 = 99_840; 6n_total = 6·49_408 = 296_448.
    "rnn": ({"total": 49_408, "embedding": 32_768, "non_embedding": 16_640},
            {"kaplan": 99_840.0, "chinchilla": 294_912.0, "6n": 99_840.0, "6n_total": 296_448.0}),
}


@pytest.mark.parametrize("arch", FAMILIES)
def test_cost_by_hand(arch):
  cfg = ModelConfig(arch=arch, d_model=64, n_layers=2, vocab_size=256, seq_len=64)
  architecture = models.get(arch)
  assert (architecture.param_counts(cfg), architecture.flops_per_token(cfg)) == BY_HAND[arch]

"""scaling.train.state: the loss is optax's cross-entropy; microbatches and vocabulary slices change no result."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from scaling.train import state as state_lib


def test_token_losses_and_their_gradient_are_optax_cross_entropy():
  logits_BxLxV = 3.0 * jax.random.normal(jax.random.key(0), (2, 5, 11))
  targets_BxL = jax.random.randint(jax.random.key(1), (2, 5), 0, 11)
  weights_BxL = jax.random.uniform(jax.random.key(2), (2, 5))

  def ours(logits):
    return (state_lib.token_losses(logits, targets_BxL) * weights_BxL).sum()

  def reference(logits):
    return (optax.softmax_cross_entropy_with_integer_labels(logits, targets_BxL) * weights_BxL).sum()

  np.testing.assert_allclose(state_lib.token_losses(logits_BxLxV, targets_BxL),
                             optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, targets_BxL),
                             rtol=1e-6)
  np.testing.assert_allclose(jax.grad(ours)(logits_BxLxV), jax.grad(reference)(logits_BxLxV),
                             rtol=1e-5, atol=1e-7)
  bf16 = state_lib.token_losses(logits_BxLxV.astype(jnp.bfloat16), targets_BxL)
  assert bf16.dtype == jnp.float32


def _steps(mesh_sizes, n_devices, **keys):
  from scaling.parallel import mesh as mesh_lib
  from scaling.train import config as config_lib

  config = config_lib.defaults()
  config.model.d_model, config.model.n_layers, config.model.seq_len = 32, 1, 16
  config.batch_size, config.train_steps, config.warmup_steps = 16, 10, 0
  config.mesh.data, config.mesh.fsdp = mesh_sizes
  for key, value in keys.items():
    group, _, name = key.rpartition(".")
    (config[group] if group else config)[name] = value
  cfg = config_lib.validate(config, vocab_size=256)
  mesh = mesh_lib.make_mesh(cfg.mesh, jax.devices()[:n_devices])
  config_lib.check_fits_mesh(cfg, mesh.devices.shape, 1)
  return state_lib.build(cfg, mesh)


def test_microbatches_give_the_one_batch_loss_and_update_on_a_sharded_mesh():
  """Four microbatches accumulated against one batch of 16, on data 2 × fsdp 2: the same loss,
  gradient norm and updated parameters (float32 tolerance)."""
  batch = jax.random.randint(jax.random.key(3), (16, 17), 0, 256)
  results = []
  for microbatches in (1, 4):
    steps = _steps((2, 2), 4, microbatches=microbatches)
    state, metrics, first_bad = steps.train(steps.init(), jax.device_put(batch, steps.batch_sharding),
                                            steps.no_bad_step())
    results.append((jax.device_get(state), jax.device_get(metrics)))
  (one, one_metrics), (four, four_metrics) = results
  assert set(one_metrics) == set(four_metrics)
  for key in ("loss", "grad_norm", "lr"):
    np.testing.assert_allclose(four_metrics[key], one_metrics[key], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(four), jax.tree.leaves(one)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_batch_that_microbatches_cannot_split_over_the_devices_is_refused():
  import pytest

  from scaling.errors import InputError

  with pytest.raises(InputError, match="microbatches × the batch-sharding size"):
    _steps((4, 2), 8, microbatches=4)  # 16 rows: 4 microbatches of 4 cannot spread over 8 devices
  with pytest.raises(InputError, match="not divisible by microbatches=3"):
    _steps((1, 1), 1, microbatches=3)


def test_the_loss_over_vocabulary_slices_is_the_whole_logits_loss_value_and_gradients():
  x_TxD = jax.random.normal(jax.random.key(0), (10, 6))
  w_DxV = jax.random.normal(jax.random.key(1), (6, 12))
  targets_T = jax.random.randint(jax.random.key(2), (10,), 0, 12)

  def whole(x, w):
    return state_lib.token_losses(x @ w, targets_T).sum()

  for chunks in (3, 4):
    def sliced(x, w):
      return state_lib.chunked_token_losses(x, w, targets_T, chunks).sum()

    np.testing.assert_allclose(state_lib.chunked_token_losses(x_TxD, w_DxV, targets_T, chunks),
                               state_lib.token_losses(x_TxD @ w_DxV, targets_T), rtol=1e-5)
    for got, want in zip(jax.grad(sliced, argnums=(0, 1))(x_TxD, w_DxV),
                         jax.grad(whole, argnums=(0, 1))(x_TxD, w_DxV)):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_step_with_vocabulary_slices_and_microbatches_updates_as_the_plain_step():
  """logits_chunks and microbatches together, on data 2 × fsdp 2: the plain step's loss, gradient
  norm and parameters (float32 tolerance)."""
  batch = jax.random.randint(jax.random.key(3), (16, 17), 0, 256)
  results = []
  for keys in ({}, {"microbatches": 2, "model.logits_chunks": 4}):
    steps = _steps((2, 2), 4, **{k: v for k, v in keys.items()})
    state, metrics, _ = steps.train(steps.init(), jax.device_put(batch, steps.batch_sharding),
                                    steps.no_bad_step())
    results.append((jax.device_get(state), jax.device_get(metrics)))
  (plain, plain_metrics), (sliced, sliced_metrics) = results
  for key in ("loss", "grad_norm"):
    np.testing.assert_allclose(sliced_metrics[key], plain_metrics[key], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(sliced), jax.tree.leaves(plain)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

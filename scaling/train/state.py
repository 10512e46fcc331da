"""Sharded train state and the jitted steps.

State is created already sharded: `jax.jit(init, out_shardings=...)` under the mesh, so no device
ever holds a full copy and the initial values are the same for every mesh shape. The train step
donates the state, so parameters and optimizer moments are updated in place.
"""

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from scaling import models
from scaling.errors import InputError
from scaling.models import attention, projection
from scaling.parallel import rules
from scaling.train import schedule as schedule_lib
from scaling.train.config import TrainConfig


def learning_rate_schedule(cfg: TrainConfig) -> optax.Schedule:
  """The run's schedule (`config.schedule`: cosine or wsd; scaling/train/schedule.py)."""
  return schedule_lib.learning_rate(
      schedule=cfg.schedule, peak=cfg.learning_rate, train_steps=cfg.train_steps,
      warmup_steps=cfg.warmup_steps, min_lr_ratio=cfg.min_lr_ratio,
      decay_fraction=cfg.decay_fraction, decay_shape=cfg.decay_shape)


def optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
  """AdamW with global-norm clipping; weight decay on matrices only (norm scales are not decayed)."""
  adamw = optax.adamw(
      learning_rate_schedule(cfg), b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps,
      weight_decay=cfg.weight_decay, mask=lambda params: jax.tree.map(lambda p: p.ndim >= 2, params))
  if cfg.grad_clip > 0:
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), adamw)
  return adamw


def token_losses(logits_BxLxV: jax.Array, targets_BxL: jax.Array) -> jax.Array:
  """Cross-entropy in nats of each predicted token, computed in float32: logsumexp minus the target's
  logit, picked by comparing against the vocabulary index rather than gathered, so the gradient
  (softmax minus one-hot) is one elementwise pass with no scatter, and no log-softmax is stored."""
  logits_BxLxV = logits_BxLxV.astype(jnp.float32)
  vocab_1x1xV = jnp.arange(logits_BxLxV.shape[-1]).reshape((1,) * targets_BxL.ndim + (-1,))
  target_logit_BxL = jnp.sum(
      jnp.where(vocab_1x1xV == targets_BxL[..., None], logits_BxLxV, 0.0), axis=-1)
  return jax.nn.logsumexp(logits_BxLxV, axis=-1) - target_logit_BxL


def next_token_loss(logits_BxLxV: jax.Array, targets_BxL: jax.Array) -> jax.Array:
  """Mean cross-entropy in nats per token."""
  return token_losses(logits_BxLxV, targets_BxL).mean()


def chunked_token_losses(x_TxD: jax.Array, unembedding_DxV: jax.Array, targets_T: jax.Array,
                         chunks: int, grad_dtype=None) -> jax.Array:
  """`token_losses` of the logits x·W computed `chunks` vocabulary slices at a time: an online
  log-sum-exp over the slices in a rematerialized scan, so neither pass holds more than [T, V/c]
  float32 logits (vocabulary tiling, as MaxText's). Slice j holds the entries j, j + c, j + 2c, ...,
  so each slice is spread over the devices the vocabulary is split across, as the whole is. Each
  slice's product is `projection.dense`, as the logits' (x's dtype, the weight gradient reduced in
  `grad_dtype`)."""
  D, V = unembedding_DxV.shape
  w_cxDxv = unembedding_DxV.reshape(D, V // chunks, chunks).transpose(2, 0, 1)
  slice_T, index_T = targets_T % chunks, targets_T // chunks

  @jax.checkpoint
  def add_slice(carry, args):
    max_T, sum_T, target_T = carry
    j, w_Dxv = args
    logits_Txv = projection.dense(x_TxD, w_Dxv, jnp.float32, grad_dtype)
    new_max_T = jnp.maximum(max_T, logits_Txv.max(-1))
    sum_T = sum_T * jnp.exp(max_T - new_max_T) + jnp.exp(logits_Txv - new_max_T[:, None]).sum(-1)
    picked_Txv = (jnp.arange(logits_Txv.shape[1])[None, :] == index_T[:, None]) & (slice_T == j)[:, None]
    target_T = target_T + jnp.sum(jnp.where(picked_Txv, logits_Txv, 0.0), axis=-1)
    return (new_max_T, sum_T, target_T), None

  T = x_TxD.shape[0]
  init = (jnp.full((T,), -jnp.inf), jnp.zeros((T,)), jnp.zeros((T,)))
  (max_T, sum_T, target_T), _ = jax.lax.scan(add_slice, init, (jnp.arange(chunks), w_cxDxv))
  return max_T + jnp.log(sum_T) - target_T


def model_loss(model, inputs_BxL: jax.Array, targets_BxL: jax.Array) -> jax.Array:
  """Mean next-token loss of `model`: over vocabulary slices where its config asks for several."""
  chunks = getattr(getattr(model, "cfg", None), "vocab_chunks", 1)
  if chunks == 1:
    return next_token_loss(model(inputs_BxL), targets_BxL)
  x_BxLxD, unembedding_DxV = model.features(inputs_BxL)
  B, L, D = x_BxLxD.shape
  return chunked_token_losses(x_BxLxD.reshape(B * L, D), unembedding_DxV, targets_BxL.reshape(-1),
                              chunks, model.cfg.grad_dtype).mean()


def for_platform(model_cfg, platform: str):
  """`model_cfg` with `attention: auto` resolved for the platform the step runs on, which in
  `scaling compile` is the TPU topology's, not this host's (`scaling.models.attention`); refuses
  what that platform cannot run."""
  if getattr(model_cfg, "remat", None) == "offload" and platform != "tpu":
    raise InputError(f"model.remat=offload needs a TPU (the step is compiled for {platform}): it "
                     "offloads to a TPU host's memory; use save_attention_mlp_input or full")
  if not hasattr(model_cfg, "attention"):
    return model_cfg
  return dataclasses.replace(model_cfg, attention=attention.implementation(model_cfg, platform))


def microbatch_split(batch_BxW: jax.Array, microbatches: int) -> jax.Array:
  """[B, W] -> [m, b, W] (b = B/m), microbatch i the rows i, i+m, i+2m, ...: each device holds an
  equal share of every microbatch of its own rows, so the split moves no data (the batch is split
  over devices in contiguous blocks of rows, a multiple of m long)."""
  B, W = batch_BxW.shape
  batch_mxbxW = batch_BxW.reshape(B // microbatches, microbatches, W).swapaxes(0, 1)
  return rules.constrain(batch_mxbxW, (None, "batch", "length"))


def accumulated_gradients(model, batch_BxW: jax.Array, microbatches: int):
  """(mean loss, mean gradient) over `microbatches` equal slices of the batch, run in a scan that
  sums float32 gradients, so activations are those of one microbatch (gradient accumulation, as
  MaxText's gradient_accumulation_steps). Equal slices: the means are the whole batch's."""
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)

  def loss_fn(params, batch_bxW):
    model = nnx.merge(graphdef, params, rest)
    return model_loss(model, batch_bxW[:, :-1], batch_bxW[:, 1:])

  def add_microbatch(carry, batch_bxW):
    loss_sum, grad_sum = carry
    loss, grads = jax.value_and_grad(loss_fn)(params, batch_bxW)
    return (loss_sum + loss, jax.tree.map(lambda s, g: s + g.astype(jnp.float32), grad_sum, grads)), None

  zeros = jax.tree.map(lambda p: jnp.zeros_like(p, jnp.float32), params)
  (loss_sum, grad_sum), _ = jax.lax.scan(
      add_microbatch, (jnp.zeros((), jnp.float32), zeros), microbatch_split(batch_BxW, microbatches))
  return loss_sum / microbatches, jax.tree.map(
      lambda g, p: (g / microbatches).astype(p.dtype), grad_sum, params)


@dataclasses.dataclass(frozen=True)
class Steps:
  """What the training loop needs: the sharded initial state and jitted step functions."""

  graphdef: nnx.GraphDef
  state_sharding: object  # pytree of NamedSharding, same structure as the state
  abstract_state: object  # ShapeDtypeStructs with shardings: the restore target for a checkpoint
  batch_sharding: NamedSharding
  init: Callable  # () -> state
  train: Callable  # (state, batch_BxW, first_bad) -> (state, {"loss", "lr", "grad_norm"}, first_bad)
  no_bad_step: Callable  # () -> the first `first_bad` (0), laid out as `train` returns it
  eval: Callable  # (state, batch_BxW) -> loss_L: mean over the batch at each context position


def build(cfg: TrainConfig, mesh: Mesh) -> Steps:
  """Builds the model + optimizer description and compiles-on-first-use the steps for `mesh`."""
  architecture = models.get(cfg.model.arch)
  model_cfg = for_platform(cfg.model, mesh.devices.flat[0].platform)
  tx = optimizer(cfg)

  def create():
    model = architecture.module(model_cfg, rngs=nnx.Rngs(cfg.seed))
    return model, nnx.Optimizer(model, tx, wrt=nnx.Param)

  def init():
    return nnx.split(create())[1]

  rules_table = rules.table(cfg.sharding_rules)
  graphdef, abstract_state, state_sharding = _sharded_layout(create, mesh, rules_table)
  batch_sharding = NamedSharding(mesh, rules.logical_to_spec(("batch", "length"), rules_table))
  replicated = NamedSharding(mesh, PartitionSpec())
  return Steps(
      graphdef=graphdef,
      state_sharding=state_sharding,
      abstract_state=abstract_state,
      batch_sharding=batch_sharding,
      init=_under_mesh(mesh, rules_table, jax.jit(init, out_shardings=state_sharding)),
      train=_under_mesh(mesh, rules_table, jax.jit(
          _train_step(cfg, graphdef), in_shardings=(state_sharding, batch_sharding, replicated),
          out_shardings=(state_sharding, None, replicated), donate_argnums=0)),
      # Placed replicated on the mesh, as `train` returns it: a first one without the mesh would
      # differ in type from the later ones, and the step would be traced and compiled twice.
      no_bad_step=lambda: jax.device_put(jnp.zeros((), jnp.int32), replicated),
      eval=_under_mesh(mesh, rules_table, jax.jit(_eval_step(graphdef),
                                                  in_shardings=(state_sharding, batch_sharding))),
  )


def _sharded_layout(create: Callable, mesh: Mesh, rules_table):
  """(graphdef, abstract state, state sharding) of what `create` builds, laid out on `mesh` by the
  logical-axis rules, computing nothing; the abstract state carries its shardings (the restore
  target for a checkpoint)."""
  with jax.set_mesh(mesh), rules.axis_rules(rules_table):
    graphdef, abstract_state = nnx.split(nnx.eval_shape(create))
    state_sharding = nnx.get_named_sharding(abstract_state, mesh)
  abstract_state = jax.tree.map(
      lambda a, sharding: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding),
      abstract_state, state_sharding)
  return graphdef, abstract_state, state_sharding


def _train_step(cfg: TrainConfig, graphdef: nnx.GraphDef) -> Callable:
  """(state, batch_BxW, first_bad) -> (state, metrics, first_bad): one AdamW update, over
  `cfg.microbatches` slices of the batch."""
  schedule = learning_rate_schedule(cfg)

  def train(state, batch_BxW, first_bad):
    """One update. `first_bad` (int32, 0 = none yet) records the first step whose loss or gradient
    was non-finite, on the device, so the loop checks it only when it pulls metrics anyway."""
    model, opt = nnx.merge(graphdef, state)
    inputs_BxL, targets_BxL = batch_BxW[:, :-1], batch_BxW[:, 1:]

    def loss_fn(model):
      return model_loss(model, inputs_BxL, targets_BxL)

    lr = schedule(opt.step[...])
    if cfg.microbatches == 1:
      loss, grads = nnx.value_and_grad(loss_fn)(model)
    else:
      loss, grads = accumulated_gradients(model, batch_BxW, cfg.microbatches)
    opt.update(model, grads)
    metrics = {"loss": loss, "lr": lr, "grad_norm": optax.tree.norm(grads)}
    finite = jnp.isfinite(metrics["loss"]) & jnp.isfinite(metrics["grad_norm"])
    first_bad = jnp.where((first_bad == 0) & ~finite, opt.step[...].astype(jnp.int32), first_bad)
    return nnx.split((model, opt))[1], metrics, first_bad

  return train


def _eval_step(graphdef: nnx.GraphDef) -> Callable:
  """(state, batch_BxW) -> loss_L, the loss by position (Kaplan et al. 2020 Fig. 7, right); its
  mean is the eval loss."""

  def evaluate(state, batch_BxW):
    model, _ = nnx.merge(graphdef, state)
    return token_losses(model(batch_BxW[:, :-1]), batch_BxW[:, 1:]).mean(axis=0)

  return evaluate


def _under_mesh(mesh: Mesh, rules_table, fn: Callable) -> Callable:
  """`fn` run with the mesh and logical-axis rules in scope (tracing needs both); so is its
  `.lower`, which compiles ahead of time from abstract inputs (`scaling compile`)."""
  def in_scope(call):
    def wrapped(*args):
      with jax.set_mesh(mesh), rules.axis_rules(rules_table):
        return call(*args)
    return wrapped
  wrapped = in_scope(fn)
  wrapped.lower = in_scope(fn.lower)
  return wrapped

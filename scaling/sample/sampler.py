"""Reads what a trained model writes: the latest checkpoint of a workdir, decoded in one jitted loop.

Every registered architecture offers `init_cache` / `decode` (scaling/models/registry.py), so the
loop is the same for all: the prompt is decoded in one call (a Transformer fills its key/value
cache, a recurrent model advances its state), then each sampled token is fed back, all inside one
`lax.scan`, so generating N tokens is one compiled program and no per-token host round trip.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from scaling import rundir, storage
from scaling.data.tokenizer import Tokenizer, load_tokenizer
from scaling.errors import InputError
from scaling.models.config import MAX_INT
from scaling.parallel import memory
from scaling.parallel import mesh as mesh_lib
from scaling.train import config as config_lib
from scaling.train import hooks
from scaling.train import state as state_lib


@dataclasses.dataclass(frozen=True)
class Trained:
  """A restored model, ready to decode, with the tokenizer it was trained with."""

  model: nnx.Module
  tokenizer: Tokenizer
  cfg: config_lib.TrainConfig
  step: int


def load(workdir: str, step: int | None = None) -> Trained:
  """The model of checkpoint `step` (default the latest) in `workdir`, on one device; bad workdirs
  and missing steps are InputErrors."""
  if storage.is_remote(workdir):
    storage.check_readable(workdir, "--workdir")
  run = rundir.RunDir(storage.absolute(workdir))
  if not run.has_run():
    raise InputError(f"--workdir {workdir}: no {rundir.RUN_FILE} there; it is not a training run")
  record = run.record()
  record.needs("config")
  config = ml_collections.ConfigDict(record.config)
  tokenizer = load_tokenizer(config.data.tokenizer)
  cfg = config_lib.validate(config, vocab_size=tokenizer.vocab_size)
  mesh = mesh_lib.make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
  steps = state_lib.build(cfg, mesh)
  checkpoints = ocp.CheckpointManager(run.checkpoints,
                                      item_handlers={"state": ocp.StandardCheckpointHandler()},
                                      options=ocp.CheckpointManagerOptions(create=False))
  try:
    kept = checkpoints.all_steps() if storage.is_dir(run.checkpoints) else []
    if not kept:
      raise InputError(f"--workdir {workdir}: no checkpoint yet in {rundir.CHECKPOINTS_DIR}/; "
                       "train first")
    if step is not None and step not in kept:
      raise InputError(f"--step {step}: no such checkpoint in {run.checkpoints} (kept: "
                       f"{', '.join(map(str, sorted(kept)))})")
    step = max(kept) if step is None else step
    _check_matches(checkpoints, step, steps.abstract_state, workdir)
    state = hooks.restore_state(checkpoints, step, steps.abstract_state, run.checkpoints)
  finally:
    checkpoints.close()
  model, _ = nnx.merge(steps.graphdef, state)
  return Trained(model=model, tokenizer=tokenizer, cfg=cfg, step=step)


def _shapes(tree) -> dict:
  """{"0.blocks.0.attn.wk.value": shape} for a state or a checkpoint's metadata of one."""
  def name(path):
    return ".".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)
  return {name(path): tuple(leaf.shape) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _check_matches(checkpoints, step: int, abstract_state, workdir: str) -> None:
  """The checkpoint holds the arrays run.json's model has, shape for shape; else one line naming
  the first that differ (a run.json edited or copied from another run)."""
  try:
    saved = _shapes(checkpoints.item_metadata(step)["state"])
  except Exception:  # noqa: BLE001  unreadable metadata: the restore below reports it
    return
  expected = _shapes(abstract_state)
  differ = [f"{name} is {saved.get(name)} in the checkpoint, {shape} for run.json's model"
            for name, shape in expected.items() if saved.get(name) != shape]
  differ += [f"{name} is in the checkpoint only" for name in saved if name not in expected]
  if differ:
    more = f" (and {len(differ) - 2} more)" if len(differ) > 2 else ""
    where = storage.join(workdir, rundir.CHECKPOINTS_DIR)
    raise InputError(f"checkpoint {step} in {where} does not match run.json's "
                     f"model: {'; '.join(differ[:2])}{more}")


def encode_prompt(prompt: str, tokenizer: Tokenizer) -> np.ndarray:
  """The document-start token, then the prompt's ids: training windows see documents begin so."""
  try:
    ids = tokenizer.encode(prompt)
  except UnicodeError as e:
    raise InputError(f"--prompt cannot be encoded ({e.reason})") from None
  if tokenizer.unk_id >= 0 and np.any(ids == tokenizer.unk_id):
    raise InputError("--prompt holds text outside the tokenizer's vocabulary (it encodes to unk)")
  if np.any(ids == tokenizer.eos_id):
    raise InputError(f"--prompt holds the document separator (token {tokenizer.eos_id})")
  return np.concatenate([[tokenizer.eos_id], ids]).astype(np.int32)


def filter_logits(logits_BxV: jax.Array, temperature: float, top_k: int) -> jax.Array:
  """Logits scaled by 1/temperature with all but the top k set to -inf (k = 0: keep all)."""
  logits_BxV = logits_BxV.astype(jnp.float32) / temperature
  if 0 < top_k < logits_BxV.shape[-1]:
    kth_Bx1 = jax.lax.top_k(logits_BxV, top_k)[0][:, -1:]
    logits_BxV = jnp.where(logits_BxV < kth_Bx1, -jnp.inf, logits_BxV)
  return logits_BxV


def check_length(model: nnx.Module, prompt_len: int, max_tokens: int) -> None:
  """Positions must fit in int32 and the cache (prompt + new tokens) in memory, checked before
  anything is compiled or allocated."""
  if prompt_len + max_tokens > MAX_INT:
    raise InputError(f"--max-tokens {max_tokens}: the prompt and new tokens exceed the "
                     f"{MAX_INT:,} positions a decode can index")
  cache = jax.eval_shape(lambda: model.init_cache(1, prompt_len + max_tokens))
  device = jax.devices()[0]
  placed = jax.tree.map(lambda a: jax.ShapeDtypeStruct(
      a.shape, a.dtype, sharding=jax.sharding.SingleDeviceSharding(device)), cache)
  memory.check_fits(memory.bytes_per_device(placed), f"--max-tokens {max_tokens}: the decode cache",
                    "ask for fewer tokens")


@functools.partial(nnx.jit, static_argnames=("max_tokens", "temperature", "top_k"))
def sample(model: nnx.Module, prompt_BxP: jax.Array, key: jax.Array, *, max_tokens: int,
           temperature: float, top_k: int) -> jax.Array:
  """`max_tokens` sampled continuations [B, max_tokens]; temperature 0 is greedy (argmax)."""
  batch, prompt_len = prompt_BxP.shape
  cache = model.init_cache(batch, prompt_len + max_tokens)
  logits_BxPxV, cache = model.decode(prompt_BxP, cache)

  def pick(logits_BxV, key):
    if temperature == 0:
      return jnp.argmax(logits_BxV, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, filter_logits(logits_BxV, temperature, top_k)).astype(jnp.int32)

  def step(carry, key):
    logits_BxV, cache = carry
    token_B = pick(logits_BxV, key)
    logits_Bx1xV, cache = model.decode(token_B[:, None], cache)
    return (logits_Bx1xV[:, -1], cache), token_B

  keys = jax.random.split(key, max_tokens)
  _, tokens_NxB = jax.lax.scan(step, (logits_BxPxV[:, -1], cache), keys)
  return tokens_NxB.T


def generate(trained: Trained, prompt: str, *, max_tokens: int, temperature: float, top_k: int,
             seed: int) -> str:
  """The prompt's continuation as text, up to the first document separator."""
  prompt_P = encode_prompt(prompt, trained.tokenizer)
  check_length(trained.model, prompt_P.size, max_tokens)
  tokens_N = np.asarray(sample(trained.model, jnp.asarray(prompt_P)[None], jax.random.key(seed),
                               max_tokens=max_tokens, temperature=temperature, top_k=top_k))[0]
  ends = np.flatnonzero(tokens_N == trained.tokenizer.eos_id)
  return trained.tokenizer.decode(tokens_N[:ends[0]] if ends.size else tokens_N)

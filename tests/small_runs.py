"""What many tests build: a tiny model on one device, chunked decoding, a tiny training config.

Importable from any test module (pytest puts tests/, the home of conftest.py, on sys.path).
"""

import jax
import numpy as np
from flax import nnx

from scaling import models
from scaling.models import ModelConfig
from scaling.parallel import mesh as mesh_lib
from scaling.parallel import rules
from scaling.train.config import defaults
from scaling.rundir import read_metrics


def build_model(cfg: ModelConfig) -> nnx.Module:
  """The model as the trainer builds it: under a one-device mesh and the logical-axis rules."""
  mesh = mesh_lib.make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
  with jax.set_mesh(mesh), rules.axis_rules():
    return nnx.jit(lambda: models.get(cfg.arch).module(cfg, rngs=nnx.Rngs(0)))()


def decode_in_chunks(model, tokens_BxL, max_len: int, first_chunk: int = 5):
  """(logits of the full forward pass, logits decoded as `first_chunk` tokens then one at a time,
  the cache after them)."""
  full_BxLxV = nnx.jit(lambda model, tokens: model(tokens))(model, tokens_BxL)
  decode = nnx.jit(lambda model, tokens, cache: model.decode(tokens, cache))
  cache = model.init_cache(tokens_BxL.shape[0], max_len)
  chunks = []
  for start, stop in [(0, first_chunk), *((t, t + 1) for t in range(first_chunk, tokens_BxL.shape[1]))]:
    logits_BxTxV, cache = decode(model, tokens_BxL[:, start:stop], cache)
    chunks.append(logits_BxTxV)
  return full_BxLxV, np.concatenate(chunks, axis=1), cache


def small_config(text_glob: str, **overrides):
  """A 10-step run of a 2-layer d_model 32 Transformer on `text_glob`; `overrides` by dotted key
  (`**{"model.arch": "lstm"}`)."""
  config = defaults()
  config.model.d_model = 32
  config.model.n_layers = 2
  config.model.n_heads = 4
  config.model.seq_len = 32
  config.batch_size = 16
  config.train_steps = 10
  config.warmup_steps = 2
  config.log_every = 1
  config.eval_every = 5
  config.eval_batches = 2
  config.checkpoint_every = 5
  config.keep_checkpoints = 3
  config.progress = False
  config.data.source = "text"
  config.data.glob = text_glob
  config.data.validation_percent = 20
  for key, value in overrides.items():
    group = config
    *parents, leaf = key.split(".")
    for parent in parents:
      group = group[parent]
    group[leaf] = value
  return config


def losses(workdir) -> list[float]:
  """The train loss of every row of a run's metrics.jsonl."""
  return [row["loss"] for row in read_metrics(workdir)]

"""A family registered from outside the package, with a hyperparameter no other family has, is
trained, planned, sampled and checked against the mesh by the same code as the built-in ones."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling import rundir, storage
from scaling.errors import InputError
from scaling.models import ModelConfig, config, layers, registry
from scaling.sample import sampler
from scaling.sweep import config as sweep_config
from scaling.sweep import plan as plan_lib
from scaling.train import config as config_lib
from scaling.train import trainer
from small_runs import small_config


@dataclasses.dataclass(frozen=True)
class ConvConfig(config.ModelConfig):
  """A causal depthwise convolution over the last `kernel_width` token embeddings."""

  arch: str = "toyconv"
  kernel_width: int = 3

  def __post_init__(self):
    super().__post_init__()
    config.check_int(self, "kernel_width")


class ConvLM(nnx.Module):
  """h_t = Σ_k kernel[k] ⊙ x_{t-k}, logits = h_t · unembedding; decoding carries the last
  kernel_width - 1 x."""

  def __init__(self, cfg: ConvConfig, *, rngs: nnx.Rngs):
    D, V, taps = cfg.d_model, cfg.vocab_size, cfg.kernel_width
    self.cfg = cfg
    self.embedding = layers.param(rngs, (V, D), ("vocab", "embed"), cfg.init_std)
    self.kernel = layers.param(rngs, (taps, D), (None, "embed"), 1.0 / taps)
    self.unembedding = layers.param(rngs, (D, V), ("embed", "vocab"), cfg.init_std)

  def __call__(self, tokens_BxL):
    return self.decode(tokens_BxL, self.init_cache(tokens_BxL.shape[0], 0))[0]

  def init_cache(self, batch_size, max_len):
    del max_len
    window = jnp.zeros((batch_size, self.cfg.kernel_width - 1, self.cfg.d_model))  # [B, taps - 1, D]
    return {"window": window, "index": jnp.zeros((), jnp.int32)}

  def decode(self, tokens_BxL, cache):
    taps, L = self.cfg.kernel_width, tokens_BxL.shape[1]
    x_BxLxD = layers.embed_tokens(self.embedding[...], tokens_BxL)
    full_BxMxD = jnp.concatenate([cache["window"], x_BxLxD], axis=1)  # M = taps - 1 + L read
    h_BxLxD = sum(self.kernel[k][None, None, :] * full_BxMxD[:, taps - 1 - k:taps - 1 - k + L] for k in range(taps))
    logits_BxLxV = jnp.einsum("BLD,DV->BLV", h_BxLxD, self.unembedding[...])
    return logits_BxLxV, {"window": full_BxMxD[:, L:], "index": cache["index"] + L}


def param_counts(cfg):
  embedding = 2 * cfg.vocab_size * cfg.d_model
  non_embedding = cfg.kernel_width * cfg.d_model
  return {"total": embedding + non_embedding, "embedding": embedding,
          "non_embedding": non_embedding}


def flops_per_token(cfg):
  counts = param_counts(cfg)
  forward = 4 * cfg.vocab_size * cfg.d_model + 2 * counts["non_embedding"]
  return {"kaplan": 6.0 * counts["non_embedding"], "chinchilla": 3.0 * forward,
          "6n": 6.0 * counts["non_embedding"], "6n_total": 6.0 * counts["total"]}


def resize(target, rule, base_cfg):
  del rule
  return dataclasses.replace(base_cfg, d_model=max(1, round(target / base_cfg.kernel_width)))


@pytest.fixture(scope="module", autouse=True)
def toyconv():
  registry.register("toyconv", registry.Architecture(
      config=ConvConfig, module=ConvLM, param_counts=param_counts,
      flops_per_token=flops_per_token, resize=resize))
  yield
  registry.unregister("toyconv")


@pytest.fixture(scope="module")
def trained(text_corpus, tmp_path_factory):
  """A 4-step run of the toy family with kernel_width 5 (a key the defaults do not have)."""
  config = small_config(text_corpus, **{"model.arch": "toyconv", "train_steps": 4,
                                        "eval_every": 4, "checkpoint_every": 4})
  config.model.kernel_width = 5
  workdir = str(tmp_path_factory.mktemp("toyconv"))
  trainer.train(config, workdir, devices=jax.devices()[:1])
  return workdir


def test_the_toy_family_trains_and_records_its_own_counts(trained):
  run = storage.read_json(rundir.RunDir(trained).run_file)
  cfg = ConvConfig(d_model=32, n_layers=2, seq_len=32, kernel_width=5)
  assert run["config"]["model"]["kernel_width"] == 5
  assert run["params"] == param_counts(cfg)["total"] == 2 * 256 * 32 + 5 * 32
  assert run["params_non_embedding"] == 5 * 32
  assert run["flops_per_token"] == flops_per_token(cfg)
  assert len(rundir.read_metrics(trained)) == 4


def test_greedy_sampling_from_the_toy_family_follows_its_forward_pass(trained):
  model = sampler.load(trained).model
  prompt_1xP = jnp.asarray([[0, 100, 101, 102]], jnp.int32)
  sampled_N = np.asarray(sampler.sample(model, prompt_1xP, jax.random.key(0), max_tokens=6,
                                        temperature=0.0, top_k=0))[0]
  tokens = list(np.asarray(prompt_1xP[0]))
  for _ in range(6):
    tokens.append(int(jnp.argmax(model(jnp.asarray([tokens]))[0, -1])))
  assert list(sampled_N) == tokens[4:]


def test_a_sweep_of_the_toy_family_is_sized_by_its_own_counts(tmp_path):
  config = sweep_config.defaults()
  config.base.model.arch = "toyconv"
  config.base.model.kernel_width = 4
  config.base.model.seq_len = 16
  config.sweep.kind = "ladder"
  config.sweep.sizes = (400, 1600)
  config.sweep.tokens = (16 * 16 * 2,)
  plan = plan_lib.build(config, str(tmp_path))
  assert [run.model.d_model for run in plan.runs] == [100, 400]
  assert [run.params_non_embedding for run in plan.runs] == [400, 1600]
  assert [run.params for run in plan.runs] == [2 * 256 * 100 + 400, 2 * 256 * 400 + 1600]
  assert all(run.config.model.kernel_width == 4 for run in plan.runs)


def test_a_key_only_another_family_reads_is_named():
  with pytest.raises(InputError, match="model.n_heads is set, but arch=lstm does not read it"):
    ModelConfig(arch="lstm", n_heads=8)
  assert ModelConfig(arch="lstm", n_heads=4).arch == "lstm"  # the Transformer's default: ignored
  config = config_lib.defaults()
  config.model.kernel_width = 5
  with pytest.raises(InputError, match="model.kernel_width is set, but arch=transformer"):
    config_lib.validate(config, vocab_size=256)
  config.model.kernel_width = 3  # the toy family's default
  assert config_lib.validate(config, vocab_size=256).model.arch == "transformer"


def test_the_mesh_checks_follow_the_toy_familys_logical_axes():
  config = config_lib.defaults()
  config.model.arch, config.model.d_model, config.batch_size = "toyconv", 30, 8
  cfg = config_lib.validate(config, vocab_size=256)
  config_lib.check_fits_mesh(cfg, (1, 2, 8), 1)  # d_model over fsdp, vocab over tensor
  with pytest.raises(InputError, match=r"^model.d_model=30 is not divisible by mesh.fsdp=4$"):
    config_lib.check_fits_mesh(cfg, (2, 4, 1), 1)
  cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, vocab_size=260))
  with pytest.raises(InputError, match=r"^model.vocab_size=260 is not divisible by mesh.tensor=8$"):
    config_lib.check_fits_mesh(cfg, (1, 1, 8), 1)

"""Config defaults, validation and run-length resolution."""

import pathlib
import runpy

import jax
import ml_collections
import pytest

from scaling.errors import InputError
from scaling.train import config as config_lib

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.py")))
def test_every_shipped_config_validates(name):
  config = runpy.run_path(str(CONFIGS / name))["get_config"]()
  cfg = config_lib.validate(config, vocab_size=256)
  assert cfg.train_steps > cfg.warmup_steps


def test_train_tokens_round_up_to_whole_steps():
  config = config_lib.defaults()
  config.train_tokens, config.warmup_steps = 10_000, 1  # train_tokens wins over train_steps
  config.batch_size, config.model.seq_len = 4, 64  # 256 tokens per step
  cfg = config_lib.validate(config, vocab_size=256)
  assert cfg.train_steps == 40 and cfg.tokens_per_step == 256


def test_vocab_size_comes_from_the_tokenizer_unless_set():
  config = config_lib.defaults()
  config.train_steps = 200
  assert config_lib.validate(config, vocab_size=256).model.vocab_size == 256
  config.model.vocab_size = 512
  assert config_lib.validate(config, vocab_size=256).model.vocab_size == 512
  config.model.vocab_size = 100
  with pytest.raises(InputError, match="model.vocab_size"):
    config_lib.validate(config, vocab_size=256)


@pytest.mark.parametrize("key,value,named", [
    ("learning_rate", 0.0, "learning_rate"),
    ("eval_every", 0, "eval_every"),
    ("log_every", 2.5, "log_every"),
    ("progress", "yes", "progress"),
    ("eval_loss_by_position", 1, "eval_loss_by_position"),
    ("weight_decay", float("nan"), "weight_decay"),
])
def test_bad_values_name_the_key(key, value, named):
  values = config_lib.defaults().to_dict()
  values[key] = value  # as a config file may write it: a ConfigDict built from plain values
  config = ml_collections.ConfigDict(values)
  with pytest.raises(InputError, match=named):
    config_lib.validate(config, vocab_size=256)


def test_unknown_key_in_a_config_file_is_named():
  config = config_lib.defaults()
  config.train_steps = 200
  with config.unlocked():
    config.model.widht = 3
  with pytest.raises(InputError, match="model.widht"):
    config_lib.validate(config, vocab_size=256)


def test_batch_must_divide_over_the_mesh():
  config = config_lib.defaults()
  config.train_steps, config.batch_size = 200, 12
  cfg = config_lib.validate(config, vocab_size=256)
  with pytest.raises(InputError, match="batch_size"):
    config_lib.check_fits_mesh(cfg, (8, 1, 1), 1)
  config_lib.check_fits_mesh(cfg, (4, 1, 2), 1)


def test_the_mesh_checks_follow_the_rules_table(monkeypatch):
  from scaling.parallel import rules

  config = config_lib.defaults()
  config.train_steps, config.batch_size = 200, 8
  cfg = config_lib.validate(config, vocab_size=256)
  with pytest.raises(InputError, match=r"^model.n_heads=4 is not divisible by mesh.tensor=8$"):
    config_lib.check_fits_mesh(cfg, (1, 1, 8), 1)
  remapped = tuple((name, None if name == "heads" else axes) for name, axes in rules.RULES)
  monkeypatch.setattr(rules, "RULES", remapped)  # heads replicated: nothing else asks for 8 heads
  config_lib.check_fits_mesh(cfg, (1, 1, 8), 1)


def test_the_mesh_checks_follow_the_runs_rules_override():
  config = config_lib.defaults()
  config.train_steps, config.batch_size = 200, 8
  config.mesh.rules = "heads=none"  # heads replicated: nothing else asks for 8 heads
  cfg = config_lib.validate(config, vocab_size=256)
  assert cfg.sharding_rules == (("heads", None),)
  config_lib.check_fits_mesh(cfg, (1, 1, 8), 1)


def test_a_config_recorded_before_mesh_rules_existed_keeps_the_default_rules():
  config = config_lib.defaults()
  with config.unlocked():
    del config.mesh["rules"]  # as in an older run.json, read back by `scaling generate`
  assert config_lib.validate(config, vocab_size=256).sharding_rules == ()


def test_a_recurrent_models_hidden_units_must_split_over_tensor():
  config = config_lib.defaults()
  config.model.arch, config.model.d_model = "lstm", 36
  config.train_steps, config.batch_size = 200, 8
  cfg = config_lib.validate(config, vocab_size=256)
  config_lib.check_fits_mesh(cfg, (2, 2, 2), 1)
  with pytest.raises(InputError, match=r"^model.d_model=36 is not divisible by mesh.tensor=8$"):
    config_lib.check_fits_mesh(cfg, (1, 1, 8), 1)


@pytest.mark.skipif(jax.default_backend() == "gpu", reason="cuDNN attention is available on GPU")
def test_cudnn_attention_off_gpu_is_refused():
  config = config_lib.defaults()
  config.model.attention = "cudnn"
  with pytest.raises(InputError, match="model.attention=cudnn needs a GPU"):
    config_lib.validate(config, vocab_size=256)

"""`scaling export` (scaling/export/): transformers loads what it writes and computes what we do."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from scaling import cli
from scaling.sample import sampler
from scaling.train import trainer
from small_runs import small_config

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

STYLES = {
    "gpt2": {"model.position": "learned", "model.norm": "layernorm", "model.mlp": "gelu",
             "model.tie_embeddings": True},
    "llama": {},  # the defaults: rotary, RMSNorm, SwiGLU, untied
}


@pytest.fixture(scope="module", params=sorted(STYLES))
def exported(request, text_corpus, tmp_path_factory):
  """(style, workdir, exported dir) of a 4-step run."""
  style = request.param
  config = small_config(text_corpus, **STYLES[style], **{
      "train_steps": 4, "warmup_steps": 1, "eval_every": 4, "checkpoint_every": 4})
  workdir = str(tmp_path_factory.mktemp(style))
  trainer.train(config, workdir, devices=jax.devices()[:1])
  out = os.path.join(workdir, "hf")
  assert cli.main(["export", "--workdir", workdir, "--out", out]) == 0
  return style, workdir, out


def test_transformers_computes_our_logits(exported):
  style, workdir, out = exported
  model = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
  assert type(model).__name__ == {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}[style]
  ours = sampler.load(workdir)
  tokens_BxL = np.random.default_rng(0).integers(0, 256, (3, 32)).astype(np.int32)
  logits_BxLxV = np.asarray(ours.model(tokens_BxL))
  with torch.no_grad():
    theirs_BxLxV = model(torch.from_numpy(tokens_BxL).long()).logits.numpy()
  np.testing.assert_allclose(theirs_BxLxV, logits_BxLxV, atol=1e-4, rtol=0)


def test_greedy_generate_gives_scaling_generates_tokens(exported):
  _, workdir, out = exported
  model = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
  ours = sampler.load(workdir)
  prompt_P = sampler.encode_prompt("def ", ours.tokenizer)
  tokens_N = np.asarray(sampler.sample(ours.model, jax.numpy.asarray(prompt_P)[None],
                                       jax.random.key(0), max_tokens=16, temperature=0.0,
                                       top_k=0))[0]
  generated = model.generate(torch.from_numpy(prompt_P[None]).long(), max_new_tokens=16,
                             do_sample=False)[0, prompt_P.size:].numpy()
  ends = np.flatnonzero(tokens_N == ours.tokenizer.eos_id)
  expected = tokens_N[:ends[0] + 1] if ends.size else tokens_N  # transformers stops at eos
  np.testing.assert_array_equal(generated, expected)


def test_the_three_lines_run_on_the_exported_byte_model(exported, capsys):
  style, workdir, out = exported
  if style != "gpt2":
    pytest.skip("the seed's lines load a GPT2LMHeadModel")
  tokenizer = transformers.AutoTokenizer.from_pretrained(out)
  model = transformers.GPT2LMHeadModel.from_pretrained(out)
  ids = model.generate(**tokenizer("def ", return_tensors="pt"), max_new_tokens=12, do_sample=False)
  text = tokenizer.decode(ids[0], skip_special_tokens=True)
  assert cli.main(["generate", "--workdir", workdir, "--prompt", "def ", "--max-tokens", "12",
                   "--temperature", "0"]) == 0
  assert text + "\n" == capsys.readouterr().out


def test_a_chosen_step_is_exported_and_a_missing_one_refused(exported, tmp_path, capsys):
  _, workdir, _ = exported
  assert cli.main(["export", "--workdir", workdir, "--out", str(tmp_path / "s4"), "--step", "4"]) == 0
  with open(tmp_path / "s4" / "config.json") as f:
    assert json.load(f)["vocab_size"] == 256
  assert cli.main(["export", "--workdir", workdir, "--out", str(tmp_path / "s3"), "--step", "3"]) == 2
  assert "--step 3: no such checkpoint" in capsys.readouterr().err
  assert not (tmp_path / "s3").exists()


@pytest.mark.parametrize("change, named", [
    ({"norm": "rmsnorm"}, "model.norm=rmsnorm"),
    ({"mlp": "swiglu"}, "model.mlp=swiglu"),
    ({"position": "rotary"}, "model.norm=layernorm"),
])
def test_an_option_without_a_faithful_counterpart_is_one_line_and_writes_nothing(
    exported, tmp_path, capsys, change, named):
  style, workdir, _ = exported
  if style != "gpt2":
    pytest.skip("one style's run.json, edited, is enough")
  copy = tmp_path / "run"
  os.makedirs(copy)
  with open(os.path.join(workdir, "run.json")) as f:
    run = json.load(f)
  run["config"]["model"].update(change)
  (copy / "run.json").write_text(json.dumps(run))
  shutil.copytree(os.path.join(workdir, "checkpoints"), copy / "checkpoints")
  assert cli.main(["export", "--workdir", str(copy), "--out", str(tmp_path / "hf")]) == 2
  err = capsys.readouterr().err
  assert named in err and len(err.strip().splitlines()) == 1
  assert not (tmp_path / "hf").exists()


def test_an_out_directory_holding_files_is_refused(exported, capsys):
  _, workdir, out = exported
  before = sorted(os.listdir(out))
  assert cli.main(["export", "--workdir", workdir, "--out", out]) == 2
  assert "already holds files" in capsys.readouterr().err
  assert sorted(os.listdir(out)) == before

"""`scaling generate` on a trained workdir: prints text, is seeded; bad input is one line, exit 2."""

import json
import os
import shutil

import jax
import pytest

from scaling import cli
from scaling.train import trainer
from small_runs import small_config


@pytest.fixture(scope="module")
def workdir(text_corpus, tmp_path_factory):
  """A 4-step run of a tiny Transformer with learned positions (so length limits apply)."""
  config = small_config(text_corpus, **{
      "model.n_layers": 1, "model.position": "learned", "batch_size": 8, "train_steps": 4,
      "warmup_steps": 1, "log_every": 10, "eval_every": 4, "eval_batches": 1,
      "checkpoint_every": 4, "keep_checkpoints": 2})
  path = str(tmp_path_factory.mktemp("generate"))
  trainer.train(config, path, devices=jax.devices()[:1])
  return path


def generate(capsys, *args):
  code = cli.main(["generate", *args])
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def test_prints_the_prompt_and_a_seeded_continuation(workdir, capsys):
  args = ["--workdir", workdir, "--prompt", "import ", "--max-tokens", "12", "--top-k", "20"]
  code, first, _ = generate(capsys, *args, "--seed", "7")
  assert code == 0 and first.startswith("import ")
  assert generate(capsys, *args, "--seed", "7")[1] == first


def test_a_workdir_in_a_bucket_generates_the_same_text(workdir, gcs_dir, capsys):
  import emulated_gcs

  emulated_gcs.upload(workdir, gcs_dir)
  args = ["--prompt", "import ", "--max-tokens", "12", "--seed", "3"]
  local, remote = generate(capsys, "--workdir", workdir, *args), generate(capsys, "--workdir",
                                                                          gcs_dir, *args)
  assert remote[0] == 0 and remote[1] == local[1]


@pytest.mark.parametrize("case", ["missing", "empty", "no_checkpoint", "separator", "too_long",
                                  "bad_max_tokens", "max_tokens_overflow", "bad_top_k",
                                  "checkpoint_of_another_model"])
def test_bad_input_is_one_line_exit_2(case, workdir, tmp_path, capsys):
  target, prompt, extra = workdir, "x", []
  if case == "missing":
    target = str(tmp_path / "nowhere")
  elif case == "empty":
    target = str(tmp_path)
  elif case == "no_checkpoint":
    target = str(tmp_path / "copy")
    os.makedirs(target)
    shutil.copy(os.path.join(workdir, "run.json"), target)
  elif case == "separator":
    prompt = "a\x00"
  elif case == "too_long":
    extra = ["--max-tokens", "40"]  # + 2 prompt tokens > the 32 learned positions
  elif case == "bad_max_tokens":
    extra = ["--max-tokens", "0"]
  elif case == "max_tokens_overflow":
    extra = ["--max-tokens", "100000000000"]
  elif case == "checkpoint_of_another_model":  # run.json says d_model 64, the checkpoint has 32
    target = str(tmp_path / "copy")
    shutil.copytree(workdir, target)
    with open(os.path.join(target, "run.json")) as f:
      run = json.load(f)
    run["config"]["model"]["d_model"] = 64
    with open(os.path.join(target, "run.json"), "w") as f:
      json.dump(run, f)
  elif case == "bad_top_k":
    extra = ["--top-k", "-1"]
  code, out, err = generate(capsys, "--workdir", target, "--prompt", prompt, *extra)
  assert code == 2 and out == ""
  assert err.startswith("error: ") and err.count("\n") == 1, err
  if case == "checkpoint_of_another_model":
    assert "does not match run.json's model" in err and "(4, 8, 32) in the checkpoint" in err

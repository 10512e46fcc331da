"""End-to-end training: loss against compute on disk, sharding equivalence, resume."""

import json
import math
import os
import shutil

import jax
import numpy as np
import pytest

from scaling import rundir, storage
from scaling.train import trainer
from scaling.rundir import read_metrics
from small_runs import losses, small_config


@pytest.fixture(scope="module")
def baseline(text_corpus, tmp_path_factory):
  """One uninterrupted 10-step run on a single device."""
  workdir = str(tmp_path_factory.mktemp("baseline"))
  trainer.train(small_config(text_corpus), workdir, devices=jax.devices()[:1])
  return workdir


def test_metrics_rows_log_loss_against_compute(baseline):
  rows = read_metrics(baseline)
  with open(os.path.join(baseline, "run.json")) as f:
    run = json.load(f)
  assert [row["step"] for row in rows] == list(range(1, 11))
  for row in rows:
    assert {"step", "tokens", "flops", "flops_kaplan", "loss", "lr", "tokens_per_sec"} <= row.keys()
    assert row["tokens"] == row["step"] * 16 * 32
    assert row["flops"] == run["flops_per_token"]["chinchilla"] * row["tokens"]
    assert row["flops_kaplan"] == run["flops_per_token"]["kaplan"] * row["tokens"]
  assert [row["step"] for row in rows if "eval_loss" in row] == [5, 10]
  for row in (row for row in rows if "eval_loss" in row):  # bytes: bits per byte = nats / ln 2
    assert row["eval_bpb"] == pytest.approx(row["eval_loss"] / math.log(2), rel=1e-6)
  assert rows[-1]["loss"] < rows[0]["loss"]
  assert {"config", "params", "params_non_embedding", "flops_per_token", "corpus", "versions",
          "device_kind", "device_count", "git_commit"} <= run.keys()
  assert run["corpus"]["sha256"] and run["corpus"]["bytes"] > 0
  assert run["config"]["model"]["vocab_size"] == 256


def test_eval_loss_by_position_is_logged_when_asked(baseline, text_corpus, tmp_path):
  """Kaplan et al. 2020 Fig. 7 (right): one mean per context position, averaging to the eval loss."""
  assert not any("eval_loss_by_position" in row
                 for row in read_metrics(baseline))
  config = small_config(text_corpus, train_steps=5, eval_loss_by_position=True)
  trainer.train(config, str(tmp_path), devices=jax.devices()[:1])
  evals = [row for row in read_metrics(tmp_path) if "eval_loss" in row]
  assert [row["step"] for row in evals] == [5]
  by_position = evals[0]["eval_loss_by_position"]
  assert len(by_position) == config.model.seq_len
  np.testing.assert_allclose(np.mean(by_position), evals[0]["eval_loss"], rtol=1e-5)


@pytest.mark.parametrize("mesh", [
    {"data": 8, "fsdp": 1, "tensor": 1},
    {"data": 1, "fsdp": 8, "tensor": 1},
    {"data": 2, "fsdp": 2, "tensor": 2},
    {"data": 4, "fsdp": 1, "tensor": 2},
], ids=lambda m: "x".join(f"{k}{v}" for k, v in m.items()))
def test_sharded_losses_equal_single_device(baseline, text_corpus, tmp_path, mesh):
  config = small_config(text_corpus, **{f"mesh.{k}": v for k, v in mesh.items()})
  trainer.train(config, str(tmp_path))
  np.testing.assert_allclose(losses(tmp_path), losses(baseline), rtol=1e-4)


def test_resume_continues_the_same_loss_sequence(baseline, text_corpus, tmp_path):
  """Lose the last checkpoint (as if killed after step 5's save): the rerun recomputes 6..10."""
  workdir = str(tmp_path / "run")
  shutil.copytree(baseline, workdir)
  shutil.rmtree(os.path.join(workdir, "checkpoints", "10"))
  before = read_metrics(workdir)
  trainer.train(small_config(text_corpus), workdir, devices=jax.devices()[:1])
  after = read_metrics(workdir)
  assert [r["step"] for r in after] == [r["step"] for r in before]
  np.testing.assert_allclose([r["loss"] for r in after], [r["loss"] for r in before], rtol=1e-6)
  assert after[-1]["eval_loss"] == pytest.approx(before[-1]["eval_loss"], rel=1e-6)
  with open(os.path.join(workdir, "run.json")) as f:
    assert json.load(f)["resumed_from_step"] == 5


def test_finished_run_is_left_alone(baseline, text_corpus):
  path = os.path.join(baseline, "metrics.jsonl")
  before = open(path).read()
  assert trainer.train(small_config(text_corpus), baseline, devices=jax.devices()[:1]) == {}
  assert open(path).read() == before


def test_scanned_rematerialized_model_trains_the_same_on_a_mesh(text_corpus, tmp_path):
  overrides = {"model.scan_layers": True, "model.remat": "full", "train_steps": 4, "eval_every": 4,
               "checkpoint_every": 4}
  trainer.train(small_config(text_corpus, **overrides), str(tmp_path / "one"),
                devices=jax.devices()[:1])
  trainer.train(small_config(text_corpus, **overrides, **{"mesh.data": 2, "mesh.fsdp": 2,
                                                           "mesh.tensor": 2}), str(tmp_path / "mesh"))
  np.testing.assert_allclose(losses(tmp_path / "mesh"), losses(tmp_path / "one"), rtol=1e-4)


def snapshot(workdir) -> dict:
  """Every file under workdir with its bytes."""
  files = {}
  for root, _, names in os.walk(workdir):
    for name in names:
      with open(os.path.join(root, name), "rb") as f:
        files[os.path.relpath(os.path.join(root, name), workdir)] = f.read()
  return files


@pytest.mark.parametrize("overrides,named", [
    ({"learning_rate": 0.03}, "learning_rate 0.003 → 0.03"),
    ({"train_steps": 12}, "train_steps 10 → 12"),  # a finished run made longer: a new schedule
    ({"model.d_model": 64}, "different model (model.d_model 32 → 64)"),
], ids=["learning_rate", "longer_finished_run", "model"])
def test_resume_refuses_a_changed_result_key_and_names_it(baseline, text_corpus, tmp_path,
                                                          overrides, named):
  workdir = str(tmp_path / "run")
  shutil.copytree(baseline, workdir)
  before = snapshot(workdir)
  with pytest.raises(trainer.InputError) as refused:
    trainer.train(small_config(text_corpus, **overrides), workdir, devices=jax.devices()[:1])
  assert named in str(refused.value) and "\n" not in str(refused.value)
  assert "{" not in str(refused.value)  # keys, not whole dicts
  assert snapshot(workdir) == before


def test_allowed_resume_changes_are_kept_in_the_run_history(baseline, text_corpus, tmp_path):
  """resume_changes=allow continues with the new keys; run.json says what changed at which step,
  and reporting keys (log_every) change freely."""
  workdir = str(tmp_path / "run")
  shutil.copytree(baseline, workdir)
  shutil.rmtree(os.path.join(workdir, "checkpoints", "10"))  # resume from step 5
  config = small_config(text_corpus, learning_rate=0.01, log_every=2, resume_changes="allow")
  trainer.train(config, workdir, devices=jax.devices()[:1])
  with open(os.path.join(workdir, "run.json")) as f:
    run = json.load(f)
  assert run["history"] == [{"step": 5, "changed": {"learning_rate": [0.003, 0.01]}}]
  assert run["config"]["learning_rate"] == 0.01
  lrs = {row["step"]: row["lr"] for row in read_metrics(workdir)}
  baseline_lrs = {row["step"]: row["lr"] for row in read_metrics(baseline)}
  assert lrs[4] == baseline_lrs[4] and lrs[8] > baseline_lrs[8]


def test_a_short_run_warms_up_for_a_share_of_it(text_corpus, tmp_path):
  """warmup_steps=-1 (the default): warmup_fraction of the run, so a 5-step smoke test needs no
  second override."""
  config = small_config(text_corpus, train_steps=5, warmup_steps=-1, warmup_fraction=0.5,
                        eval_every=5)
  trainer.train(config, str(tmp_path), devices=jax.devices()[:1])
  lrs = [row["lr"] for row in read_metrics(str(tmp_path))]
  peak = config.learning_rate  # row k logs the rate step k used: 0, peak / 2, then the cosine
  assert lrs[:3] == pytest.approx([0.0, peak / 2, peak], rel=1e-6) and lrs[3] < peak
  with open(os.path.join(tmp_path, "run.json")) as f:
    assert json.load(f)["config"]["warmup_steps"] == 2


def test_a_gs_workdir_trains_and_resumes_as_a_local_one(baseline, text_corpus, gcs_dir):
  """On GCS (the emulator): the same rows as on a local disk, checkpoints and TensorBoard in the
  bucket; killed after step 8's rows were written but resumed from step 5: no row doubled."""
  config = small_config(text_corpus)
  trainer.train(config, gcs_dir, devices=jax.devices()[:1])
  local, remote = read_metrics(baseline), read_metrics(gcs_dir)
  drop_time = lambda rows: [{k: v for k, v in r.items() if k != "tokens_per_sec"} for r in rows]
  assert drop_time(remote) == drop_time(local)
  assert storage.list_names(storage.join(gcs_dir, "checkpoints")) == ["10", "5"]
  assert storage.list_names(storage.join(gcs_dir, "tensorboard"))
  assert storage.list_names(storage.join(gcs_dir, "metrics")) == []  # folded into metrics.jsonl

  # A run that died after writing rows 6..8 but before checkpoint 10 existed.
  rundir.RunDir(gcs_dir).metrics_writer(resume_step=5)  # rows 6.. dropped, as a resume does
  for step in (6, 7, 8):
    storage.write_text(storage.join(gcs_dir, "metrics", f"{step:010d}-{step:010d}.jsonl"),
                      json.dumps({"step": step, "loss": -1.0}) + "\n")
  _gcs_rmtree(storage.join(gcs_dir, "checkpoints", "10"))
  trainer.train(config, gcs_dir, devices=jax.devices()[:1])
  assert drop_time(read_metrics(gcs_dir)) == drop_time(local)
  assert storage.read_json(storage.join(gcs_dir, "run.json"))["resumed_from_step"] == 5


def _gcs_rmtree(path):
  from etils import epath

  epath.Path(path).rmtree()

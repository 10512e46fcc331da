"""One resume policy (scaling/train/resume.py): `scaling train`'s resume check and `scaling sweep`'s
check of a recorded run against its plan reach the same decision for the same change of config."""

import os
import shutil

import jax
import ml_collections
import numpy as np
import pytest
from small_runs import read_metrics, small_config

from scaling import rundir
from scaling.errors import InputError
from scaling.records import RunRecord
from scaling.sweep import core
from scaling.sweep.plan import Run
from scaling.train import resume, trainer

SHA256 = "0" * 64
# (what changes, whether a run recorded before the change may go on with it)
TABLE = [
    ({"mesh.fsdp": 2}, True),  # orbax reshards the state onto the new mesh on restore
    ({"microbatches": 2}, True),  # the same update, accumulated
    ({"log_every": 7}, True),
    ({"model.d_model": 64}, False),
    ({"learning_rate": 0.01}, False),
    ({"learning_rate": 0.01, "resume_changes": "allow"}, True),
    ({"model.d_model": 64, "resume_changes": "allow"}, False),
]


def _config(**overrides) -> ml_collections.ConfigDict:
  return small_config("unused/*.txt", **{"model.vocab_size": 256, **overrides})


def _train_check(workdir: str, config: ml_collections.ConfigDict) -> bool:
  try:
    trainer._prepare_workdir(workdir, config.to_dict(), SHA256)
  except InputError:
    return False
  return True


def _sweep_check(workdir: str, config: ml_collections.ConfigDict) -> bool:
  run = Run(name="run", workdir=workdir, config=config, budget=1.0, target_params=1.0, params=1,
            params_non_embedding=1, steps=config.train_steps, tokens=1, flops=1.0)
  return core._config_mismatch(run) is None


@pytest.mark.parametrize("change,allowed", TABLE, ids=[",".join(c) for c, _ in TABLE])
def test_train_and_sweep_decide_a_resume_alike(tmp_path, change, allowed):
  workdir = str(tmp_path / "run")
  rundir.RunDir(workdir).write_run(RunRecord(config=_config().to_dict(),
                                             corpus={"sha256": SHA256}))
  changed = _config(**change)
  assert _train_check(workdir, changed) == allowed
  assert _sweep_check(workdir, changed) == allowed
  assert resume.decide(_config().to_dict(), changed.to_dict()).allowed == allowed


def test_the_sweep_names_the_key_that_refuses_it(tmp_path):
  workdir = str(tmp_path / "run")
  rundir.RunDir(workdir).write_run(RunRecord(config=_config().to_dict(),
                                             corpus={"sha256": SHA256}))
  run = Run(name="run", workdir=workdir, config=_config(**{"log_every": 3, "model.n_layers": 3}),
            budget=1.0, target_params=1.0, params=1, params_non_embedding=1, steps=10, tokens=1,
            flops=1.0)
  assert "with model.n_layers=2, the plan has 3" in core._config_mismatch(run)


def test_a_results_row_reports_the_learning_rate_the_run_trained_with(tmp_path):
  """A plan with resume_changes=allow and another learning rate accepts a finished run (the table
  says so) but cannot retrain it: results.csv keeps the rate the run recorded, not the plan's."""
  workdir = str(tmp_path / "run")
  rundir.RunDir(workdir).write_run(RunRecord(config=_config().to_dict(), corpus={"sha256": SHA256},
                                             params=10, params_non_embedding=5))
  planned = _config(**{"learning_rate": 0.01, "resume_changes": "allow"})
  assert _sweep_check(workdir, planned)
  run = Run(name="run", workdir=workdir, config=planned, budget=1.0, target_params=1.0, params=10,
            params_non_embedding=5, steps=10, tokens=1, flops=1.0)
  last = {"tokens": 1, "flops": 1.0, "flops_kaplan": 1.0, "eval_loss": 2.0}
  assert core.row(run, last)["learning_rate"] == _config().learning_rate != 0.01


@pytest.mark.slow  # two short trainings: about 40 s on a loaded 2-vCPU machine
def test_a_run_resumed_on_another_mesh_ends_where_it_would_have(text_corpus, tmp_path):
  """Half a run on one device, the rest on a 2-way FSDP mesh: the state is resharded on restore
  and the run ends with the losses of the run trained on one device throughout."""
  overrides = {"train_steps": 4, "eval_every": 2, "checkpoint_every": 2}
  whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
  trainer.train(small_config(text_corpus, **overrides), whole, devices=jax.devices()[:1])
  shutil.copytree(whole, split)
  shutil.rmtree(os.path.join(split, "checkpoints", "4"))  # cut off after step 2's checkpoint
  trainer.train(small_config(text_corpus, **overrides, **{"mesh.fsdp": 2}), split,
                devices=jax.devices()[:2])
  assert rundir.RunDir(split).record().resumed_from_step == 2
  np.testing.assert_allclose([r["loss"] for r in read_metrics(split)],
                             [r["loss"] for r in read_metrics(whole)], rtol=1e-4)

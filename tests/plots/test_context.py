"""Kaplan Fig. 7 panels from run directories that logged the eval loss by position."""

import json
import os

import numpy as np
import pytest

from scaling.errors import InputError
from scaling.plots import context


def fake_run(root, name, arch, params, by_position):
  run_dir = os.path.join(root, name)
  os.makedirs(run_dir)
  with open(os.path.join(run_dir, "run.json"), "w") as f:
    json.dump({"config": {"model": {"arch": arch}}, "params_non_embedding": params}, f)
  rows = [{"step": 1, "loss": 5.0},
          {"step": 2, "loss": 4.0, "eval_loss": float(np.mean(by_position)),
           "eval_loss_by_position": list(by_position)}]
  with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
    f.writelines(json.dumps(row) + "\n" for row in rows)
  return run_dir


def test_draws_both_panels_from_the_last_eval_row(tmp_path):
  position_L = np.arange(1, 33)
  dirs = [fake_run(tmp_path, f"{arch}_{n}", arch, n, 2.0 + 1 / position_L**slope + 1e5 / n / 1e5)
          for arch, slope in (("transformer", 0.5), ("lstm", 1.0)) for n in (1e4, 4e4)]
  final = context.final_by_position(dirs[0])
  assert final["arch"] == "transformer" and final["eval_loss_by_position"].shape == (32,)
  labels = ["transformer", "transformer", "lstm", "lstm (norm=layernorm)"]
  paths = context.architectures(dirs, str(tmp_path / "figs"), bins=8, labels=labels)
  assert [os.path.basename(p) for p in paths] == ["lstm_vs_transformer.png", "lstm_vs_transformer.pdf"]
  assert all(os.path.getsize(p) > 1000 for p in paths)


def test_a_run_without_losses_by_position_is_named(tmp_path):
  run_dir = fake_run(tmp_path, "r", "lstm", 1e4, [3.0])
  with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
    f.write(json.dumps({"step": 1, "loss": 3.0, "eval_loss": 3.0}) + "\n")
  with pytest.raises(InputError, match="eval_loss_by_position=true"):
    context.architectures([run_dir], str(tmp_path / "figs"))


def test_log_bins_resolve_early_positions_and_average_late_ones():
  loss_L = np.arange(1.0, 65.0)
  position_P, loss_P = context.log_bins(loss_L, 6)
  assert position_P[0] == 1 and loss_P[0] == 1.0  # the first position is its own bin
  assert np.all(np.diff(position_P) > 0) and position_P[-1] < 64
  np.testing.assert_array_equal(context.log_bins(loss_L, 0)[1], loss_L)

"""Trackers: a W&B run (offline, read back with wandb's own reader) holds metrics.jsonl's scalars;
a bad tracker list is one line, exit 2, nothing written."""

import glob
import json
import os
import subprocess
import sys

import pytest

from scaling import cli
from scaling.rundir import read_metrics

REPO = os.path.join(os.path.dirname(__file__), "..", "..")
TINY = os.path.join(REPO, "configs", "tiny.py")
SHORT = ["--config.log_every=2", "--config.eval_every=3", "--config.checkpoint_every=3",
         "--config.eval_batches=1", "--config.progress=false"]


def wandb_env(tmp_path) -> dict:
  """Offline, silent, and every W&B file outside the workdir under tmp_path (none in ~)."""
  home = tmp_path / "home"
  home.mkdir()
  return {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HOME": str(home),
          "WANDB_DIR": str(home / "wandb"), "WANDB_CONFIG_DIR": str(home / "config"),
          "WANDB_CACHE_DIR": str(home / "cache"), "WANDB_DATA_DIR": str(home / "data"),
          "PYTHONPATH": os.pathsep.join([os.path.abspath(REPO), os.environ.get("PYTHONPATH", "")])}


def train(workdir, env, *overrides):
  out = subprocess.run(
      [sys.executable, "-m", "scaling.cli", "train", "--config", TINY, "--workdir", str(workdir),
       *SHORT, "--config.trackers=jsonl,tensorboard,wandb", "--config.wandb_group=ablation",
       *overrides], env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]


def offline_records(run_dir, env) -> list[dict]:
  """Every record of an offline run's transaction log, as `wandb leet inspect --json` reads it."""
  (log,) = glob.glob(os.path.join(run_dir, "run-*.wandb"))
  out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", log], env=env,
                       capture_output=True, text=True, timeout=120, check=True)
  return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_an_offline_wandb_run_in_the_workdir_holds_the_metrics_scalars(tmp_path,
                                                                       child_compile_cache):
  pytest.importorskip("wandb")
  workdir, env = tmp_path / "tiny-run", {**wandb_env(tmp_path), **child_compile_cache}
  train(workdir, env, "--config.train_steps=4")
  run_id = (workdir / "wandb" / "run_id").read_text()
  train(workdir, env, "--config.train_steps=6", "--config.resume_changes=allow")  # resumes it

  runs = sorted(glob.glob(str(workdir / "wandb" / "offline-run-*")))
  assert len(runs) == 2 and all(run.endswith(f"-{run_id}") for run in runs)  # the same W&B run
  logged, headers = {}, []
  for run in runs:
    for record in offline_records(run, env):
      if record["type"] == "history":
        item = record["history"]["item"]
        logged[record["history"]["step"]["num"]] = {
            key: value for key, value in item.items() if not key.startswith("_")}
      elif record["type"] == "run":
        headers.append(record["run"])
  rows = read_metrics(workdir)
  assert sorted(logged) == [row["step"] for row in rows] == [2, 3, 4, 6]
  for row in rows:
    assert logged[row["step"]] == {k: v for k, v in row.items() if k != "step"}, row["step"]

  run_json = json.loads((workdir / "run.json").read_text())
  for header in headers:
    assert (header["run_id"], header["project"], header["display_name"], header["run_group"]) == (
        run_id, "scaling", "tiny-run", "ablation")
  config = headers[-1]["config"]["update"]
  assert {key: config[key] for key in run_json["config"]} == run_json["config"]
  assert config["params"] == run_json["params"]
  assert os.listdir(workdir / "tensorboard")  # the other trackers still write
  wandb_dir = tmp_path / "home" / "wandb"  # WANDB_DIR: the workdir takes its place
  assert not wandb_dir.exists() or not os.listdir(wandb_dir)


@pytest.mark.parametrize("trackers,named", [
    ("jsonl,tensorbord", "unknown tracker 'tensorbord'"),
    ("tensorboard", "must include jsonl"),
    ("jsonl,jsonl", "names a tracker twice"),
])
def test_a_bad_tracker_list_is_one_line_exit_2_and_writes_nothing(trackers, named, tmp_path,
                                                                  capsys):
  workdir = tmp_path / "run"
  code = cli.main(["train", "--config", TINY, "--workdir", str(workdir),
                   f"--config.trackers={trackers}"])
  err = capsys.readouterr().err
  assert code == 2 and err.count("\n") == 1 and named in err, err
  assert not workdir.exists()


def test_wandb_without_its_package_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
  monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed: importing it fails
  workdir = tmp_path / "run"
  code = cli.main(["train", "--config", TINY, "--workdir", str(workdir),
                   "--config.trackers=jsonl,wandb"])
  err = capsys.readouterr().err
  assert code == 2 and err.count("\n") == 1 and "pip install 'scaling[wandb]'" in err, err
  assert not workdir.exists()


@pytest.mark.parametrize("variable, value", [("WANDB_MODE", "bogus"),
                                             ("WANDB_HTTP_TIMEOUT", "soon")])
def test_a_wandb_setting_it_would_refuse_is_one_line_before_anything_is_written(
    variable, value, tmp_path, capsys, monkeypatch):
  pytest.importorskip("wandb")
  monkeypatch.setenv(variable, value)
  workdir = tmp_path / "run"
  code = cli.main(["train", "--config", TINY, "--workdir", str(workdir), *SHORT,
                   "--config.train_steps=2", "--config.trackers=jsonl,wandb"])
  err = capsys.readouterr().err
  assert code == 2 and err.count("\n") == 1, err
  assert f"trackers has wandb, but W&B refuses {variable}={value!r}: " in err
  assert not workdir.exists()


def test_wandb_refusing_the_run_is_one_line_saying_how_to_go_on(tmp_path, capsys, monkeypatch):
  pytest.importorskip("wandb")
  for key, value in wandb_env(tmp_path).items():
    monkeypatch.setenv(key, value)
  for key in ("WANDB_MODE", "WANDB_API_KEY"):  # online, and not logged in
    monkeypatch.delenv(key, raising=False)
  code = cli.main(["train", "--config", TINY, "--workdir", str(tmp_path / "run"), *SHORT,
                   "--config.train_steps=2", "--config.trackers=jsonl,wandb"])
  err = capsys.readouterr().err
  assert code == 2 and err.count("\n") == 1 and "wandb login" in err and "offline" in err, err

"""The CLI turns bad input into one line and exit code 2, and writes nothing."""

import os

import pytest

import pathlib
from scaling import cli

TINY = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "tiny.py")

BAD_TRAIN_ARGS = {
    "heads_not_dividing_d_model": (["--config.model.n_heads=3"], "model.n_heads"),
    "mesh_not_dividing_devices": (["--config.mesh.data=3"], "mesh"),
    "batch_not_divisible_by_batch_sharding": (
        ["--config.batch_size=12", "--config.mesh.data=8"], "batch_size"),
    "heads_not_divisible_by_tensor": (
        ["--config.mesh.data=1", "--config.mesh.tensor=8"], "model.n_heads"),
    "zero_d_model": (["--config.model.d_model=0"], "model.d_model"),
    "negative_batch": (["--config.batch_size=-4"], "batch_size"),
    "unknown_arch": (["--config.model.arch=nope"], "model.arch"),
    "unknown_key": (["--config.model.widht=3"], "--config.model.widht"),
    "unknown_top_key": (["--config.lerning_rate=0.1"], "--config.lerning_rate"),
    "wrong_type": (["--config.batch_size=abc"], "batch_size"),
    "negative_tokens": (["--config.train_tokens=-1000"], "train_tokens"),
    "zero_steps": (["--config.train_steps=0"], "train_steps"),
    "bad_norm": (["--config.model.norm=batchnorm"], "model.norm"),
    "warmup_too_long": (["--config.warmup_steps=1000"], "warmup_steps"),
    "unknown_data_source": (["--config.data.source=nope"], "data.source"),
    "missing_config_file": (["--config=does/not/exist.py"], "exist.py"),
}


@pytest.mark.parametrize("args,named", BAD_TRAIN_ARGS.values(), ids=BAD_TRAIN_ARGS.keys())
def test_bad_train_input_is_one_line_exit_2_nothing_written(args, named, tmp_path, capsys):
  workdir = tmp_path / "run"
  config = [] if any(a.startswith("--config=") for a in args) else ["--config", TINY]
  code = cli.main(["train", *config, "--workdir", str(workdir), *args])
  err = capsys.readouterr().err
  assert code == 2
  assert err.startswith("error: ") and err.count("\n") == 1, err
  assert named in err
  assert not workdir.exists()


def test_missing_workdir_and_unknown_command(capsys):
  assert cli.main(["train", "--config", TINY]) == 2
  assert "--workdir" in capsys.readouterr().err
  assert cli.main(["trian"]) == 2
  assert capsys.readouterr().err.count("\n") == 1


def test_existing_run_of_another_model_is_refused_untouched(tmp_path, capsys):
  workdir = tmp_path / "run"
  workdir.mkdir()
  run_json = workdir / "run.json"
  run_json.write_text('{"config": {"model": {"d_model": 999}}, "corpus": {"sha256": "x"}}')
  before = run_json.read_text()
  assert cli.main(["train", "--config", TINY, "--workdir", str(workdir)]) == 2
  assert "different" in capsys.readouterr().err
  assert run_json.read_text() == before
  assert sorted(os.listdir(workdir)) == ["run.json"]


@pytest.mark.parametrize("case", ["workdir_is_a_file", "workdir_under_a_file", "config_is_a_dir",
                                  "glob_matches_nothing"])
def test_bad_paths_are_one_line_exit_2(case, tmp_path, capsys):
  a_file = tmp_path / "a_file"
  a_file.write_text("keep me")
  workdir, extra, config = tmp_path / "run", [], TINY
  if case == "workdir_is_a_file":
    workdir = a_file
  elif case == "workdir_under_a_file":
    workdir = a_file / "run"
  elif case == "config_is_a_dir":
    config = str(tmp_path)
  else:
    extra = ["--config.data.source=text", f"--config.data.glob={tmp_path}/nothing/*.txt"]
  code = cli.main(["train", "--config", config, "--workdir", str(workdir), *extra])
  err = capsys.readouterr().err
  assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
  assert a_file.read_text() == "keep me"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.parametrize("argv", [
    ["train", "--config", TINY, "--workdir", "gs://no-such-bucket/run"],
    ["sweep", "--config", "configs/sweeps/isoflop_tiny.py", "--workdir", "gs://no-such-bucket/s"],
    ["fit", "--data", "gs://no-such-bucket/sweep"],
    ["plot", "gs://no-such-bucket/sweep"],
    ["generate", "--workdir", "gs://no-such-bucket/run", "--prompt", "x"],
], ids=["train", "sweep", "fit", "plot", "generate"])
def test_a_bucket_that_does_not_exist_is_one_line_exit_2(argv, gcs, capsys, monkeypatch):
  monkeypatch.chdir(pathlib.Path(TINY).parents[1])
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and err.count("\n") == 1, err
  assert "bucket gs://no-such-bucket does not exist" in err


def test_unreachable_storage_and_missing_credentials_are_one_line_exit_2(gcs, capsys, monkeypatch):
  argv = ["train", "--config", TINY, "--workdir", f"{gcs}/run"]
  with monkeypatch.context() as patch:
    patch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "cannot reach the storage API" in err
  with monkeypatch.context() as patch:
    patch.delenv("GOOGLE_AUTH_TOKEN_FOR_TESTING")
    patch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")
    assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "no Google credentials" in err

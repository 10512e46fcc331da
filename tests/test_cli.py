"""The CLI turns bad input into one line and exit code 2, and writes nothing."""

import os
import subprocess
import sys

import pytest

import pathlib
from scaling import cli

TINY = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "tiny.py")
SWEEP = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "sweeps" / "isoflop_tiny.py")

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
    "steps_beyond_int64": (["--config.train_steps=100000000000000000000"], "train_steps"),
    "tokens_beyond_int32_steps": (["--config.train_tokens=100000000000000000000"], "train_tokens"),
    "min_lr_ratio_above_1": (["--config.min_lr_ratio=2"], "min_lr_ratio"),
    "adam_b2_of_1": (["--config.adam_b2=1.0"], "adam_b2"),
    "warmup_fraction_of_1": (["--config.warmup_fraction=1.0"], "warmup_fraction"),
    "seed_beyond_int32": (["--config.seed=4294967296"], "seed"),
    "d_model_beyond_int32": (["--config.model.d_model=4294967296"], "model.d_model"),
    "infinite_init_std": (["--config.model.init_std=inf"], "model.init_std"),
    "negative_num_processes": (["--config.distributed.num_processes=-2"],
                               "distributed.num_processes"),
    "bad_resume_changes": (["--config.resume_changes=sometimes"], "resume_changes"),
    "no_validation_data": (["--config.data.validation_percent=0"], "data.validation_percent"),
    "batch_beyond_the_data": (["--config.batch_size=100000000"], "batch_size"),
    "state_beyond_memory": (["--config.model.d_model=1000000", "--config.model.n_heads=1"],
                            "memory"),
    "sweep_config": ([f"--config={SWEEP}"], "scaling sweep"),
    "distributed_without_a_cluster": (["--config.distributed.initialize=true"],
                                      "distributed.initialize"),
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


@pytest.mark.parametrize("workdir,named", [("", "--workdir is empty"),
                                           ("/proc/x/run", "cannot create directories in /proc")],
                         ids=["empty", "under_proc"])
def test_unusable_workdir_is_one_line_exit_2(workdir, named, tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)  # an empty --workdir must not train into the current directory
  code = cli.main(["train", "--config", TINY, "--workdir", workdir])
  err = capsys.readouterr().err
  assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
  assert named in err
  assert list(tmp_path.iterdir()) == []


def test_a_config_file_that_raises_shows_its_own_message(tmp_path, capsys):
  config = tmp_path / "mine.py"
  config.write_text("def get_config():\n  raise ValueError('batch 512 is too big for this cluster')\n")
  code = cli.main(["train", "--config", str(config), "--workdir", str(tmp_path / "run")])
  err = capsys.readouterr().err
  assert code == 2 and err.count("\n") == 1, err
  assert "ValueError: batch 512 is too big for this cluster (line 2)" in err and str(config) in err
  assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.py"]


@pytest.mark.parametrize("argv,shows", [
    (["train", "--help"], "--config.KEY=VALUE"),
    (["launch", "local", "--help"], "--processes"),
    (["launch", "tpu", "--help"], "--accelerator-type"),
], ids=["train", "launch_local", "launch_tpu"])
def test_help_shows_the_options(argv, shows, capsys):
  assert cli.main(argv) == 0
  out = capsys.readouterr().out
  assert shows in out and "usage:" in out


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


def test_help_lists_every_command_and_each_command_answers_help(capsys):
  assert cli.main(["--help"]) == 0
  listed = [line.split()[0] for line in capsys.readouterr().out.split("commands:\n")[1].splitlines()]
  assert listed == list(cli.COMMANDS)
  for command in cli.COMMANDS:
    try:
      code = cli.main([command, "--help"])
    except SystemExit as e:  # argparse's own --help
      code = e.code
    assert code == 0, command
    assert f"scaling {command}" in capsys.readouterr().out, command


@pytest.mark.parametrize("command", ["train", "sweep", "runs", "fit", "plot", "generate"])
def test_a_commands_help_imports_no_jax(command):
  """The table imports a command's module only when it runs, and --help needs no backend."""
  script = ("import sys; from scaling import cli\ntry: cli.main([%r, '--help'])\n"
            "except SystemExit: pass\nbad = [m for m in sys.modules if m.split('.')[0] == 'jax']\n"
            "assert not bad, bad[:3]" % command)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module, argv", [("scaling.fit.cli", ["--data", "{tmp}/none.csv"]),
                                          ("scaling.plots.cli", ["{tmp}/none"])])
def test_a_command_module_run_with_python_m_answers_as_the_cli_does(module, argv, tmp_path):
  """`python -m scaling.fit.cli` goes through the same `cli.run` as `scaling fit`: bad input is
  one `error:` line and exit 2."""
  argv = [a.format(tmp=tmp_path) for a in argv]
  result = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True)
  assert result.returncode == 2, result.stderr
  assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def test_run_turns_ctrl_c_into_one_line_naming_the_command_and_130(capsys):
  def interrupted(argv):
    raise KeyboardInterrupt

  assert cli.run(interrupted, [], "sweep") == 130
  interrupted.__module__ = "scaling.fit.cli"  # named by the command whose module it is
  assert cli.run(interrupted, []) == 130
  assert capsys.readouterr().err.splitlines() == ["interrupted: scaling sweep stopped by Ctrl-C",
                                                  "interrupted: scaling fit stopped by Ctrl-C"]

"""`scaling launch local`: P processes joined by jax.distributed equal one process, all devices."""

import importlib.util
import os
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from scaling.errors import InputError
from scaling.launch import cli, local
from scaling.train import trainer
from scaling.train.config import defaults
from scaling.rundir import read_metrics

TINY_TRAIN_KEYS = {
    "model.d_model": 32, "model.n_layers": 2, "model.n_heads": 4, "model.seq_len": 32,
    "batch_size": 16, "train_steps": 10, "warmup_steps": 2, "log_every": 1, "eval_every": 5,
    "eval_batches": 2, "checkpoint_every": 5, "progress": False, "data.source": "text",
    "data.validation_percent": 20,
}


def test_children_get_their_own_devices_and_distributed_flags():
  env = local.child_env({"XLA_FLAGS": "--xla_foo=1 --xla_force_host_platform_device_count=8",
                         "HOME": "/h"}, 4)
  assert env == {"HOME": "/h", "JAX_PLATFORMS": "cpu",
                 "XLA_FLAGS": "--xla_foo=1 --xla_force_host_platform_device_count=4"}
  train = ["scaling", "train", "--config", "c.py", "--workdir", "w"]
  assert local.child_commands(train, 2, 1234) == [
      [sys.executable, "-m", "scaling.cli", "train", "--config", "c.py", "--workdir", "w",
       "--config.distributed.initialize=true",
       "--config.distributed.coordinator_address=localhost:1234",
       "--config.distributed.num_processes=2", f"--config.distributed.process_id={i}"]
      for i in range(2)]
  sweep = local.child_commands(["scaling", "sweep", "--config", "s.py"], 1, 99)[0]
  assert "--config.base.distributed.process_id=0" in sweep


def test_a_failed_process_stops_the_others():
  sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
  failing = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
  start = time.monotonic()
  assert local.wait_all([sleeper, failing]) == (3, 1)
  assert sleeper.poll() is not None and time.monotonic() - start < 30


def test_children_that_fail_on_bad_input_fail_the_launch(tmp_path, capfd):
  code = cli.main(["local", "--processes", "2", "--", "scaling", "train",
                   "--config", str(tmp_path / "missing.py"), "--workdir", str(tmp_path / "w")])
  assert code == 2
  assert "error: scaling train: " in capfd.readouterr().err


@pytest.mark.parametrize("argv,named", [
    (["local", "--processes", "0", "--", "scaling", "train"], "--processes"),
    (["local", "--processes", "2", "--devices-per-process", "0", "--", "scaling", "train"],
     "--devices-per-process"),
    (["local", "--", "scaling", "train"], "--processes"),
], ids=["zero_processes", "zero_devices", "no_processes"])
def test_bad_local_arguments_are_input_errors(argv, named):
  with pytest.raises(InputError, match=named):
    cli.main(argv)


@pytest.mark.slow  # two processes compile: ~15 s idle, more on a busy machine
def test_stdout_is_the_command_s_without_gloo_lines(text_corpus, tmp_path, capfd):
  """Gloo's C++ connection report ("[Gloo] Rank 0 is connected to 1 peer ranks...") is printed on
  process 0's stdout; the launcher drops it, and keeps the command's own lines."""
  keys = {**TINY_TRAIN_KEYS, "data.glob": text_corpus, "train_steps": 2, "warmup_steps": -1,
          "eval_every": 2, "batch_size": 8, "model.n_layers": 1, "eval_batches": 1}
  code = cli.main(["local", "--processes", "2", "--devices-per-process", "1", "--",
                   "scaling", "train", "--config", _base_config(), "--workdir", str(tmp_path / "w"),
                   *(f"--config.{key}={value}" for key, value in keys.items())])
  out, err = capfd.readouterr()
  assert code == 0 and "step 2: loss" in out, err
  assert "Gloo" not in out


@pytest.mark.slow
def test_two_processes_of_four_devices_equal_one_process_of_eight(text_corpus, tmp_path):
  """Per-step losses of a 10-step run, batch over data=-1: 2 × 4 devices vs 1 × 8 (in-process)."""
  overrides = {**TINY_TRAIN_KEYS, "data.glob": text_corpus}
  config = defaults()
  for key, value in overrides.items():
    *groups, leaf = key.split(".")
    (config[groups[0]] if groups else config)[leaf] = value
  reference = tmp_path / "one_process"
  trainer.train(config, str(reference), devices=jax.devices()[:8])

  distributed = tmp_path / "two_processes"
  flags = [f"--config.{key}={value}" for key, value in overrides.items()]
  code = cli.main(["local", "--processes", "2", "--devices-per-process", "4", "--",
                   "scaling", "train", "--config", _base_config(), "--workdir", str(distributed),
                   *flags])
  assert code == 0
  one = read_metrics(reference)
  two = read_metrics(distributed)
  assert [row["step"] for row in two] == [row["step"] for row in one] == list(range(1, 11))
  np.testing.assert_allclose([r["loss"] for r in two], [r["loss"] for r in one], rtol=1e-5)
  np.testing.assert_allclose([r["eval_loss"] for r in two if "eval_loss" in r],
                             [r["eval_loss"] for r in one if "eval_loss" in r], rtol=1e-5)


def _base_config() -> str:
  return os.path.join(os.path.dirname(__file__), "..", "..", "configs", "base.py")


@pytest.mark.slow
def test_a_two_process_sweep_equals_a_one_process_sweep(text_corpus, tmp_path):
  """The runner joins the processes once; process 0 writes plan.json and results.csv."""
  from scaling.sweep import plan as plan_lib
  from scaling.sweep import results, runner

  tiny_sweep = os.path.join(os.path.dirname(__file__), "..", "sweep", "tiny_sweep.py")
  glob = f"--config.base.data.glob={text_corpus}"
  code = cli.main(["local", "--processes", "2", "--devices-per-process", "4", "--", "scaling",
                   "sweep", "--config", tiny_sweep, "--workdir", str(tmp_path / "two"), glob])
  assert code == 1  # the sweep's d_model-18 run fails on purpose, in both processes
  spec = importlib.util.spec_from_file_location("tiny_sweep", tiny_sweep)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.base.data.glob = text_corpus
  runner.run(plan_lib.build(config, str(tmp_path / "one")))
  one, two = results.read(str(tmp_path / "one")), results.read(str(tmp_path / "two"))
  assert [row["name"] for row in two] == [row["name"] for row in one] and len(one) == 1
  np.testing.assert_allclose([r["loss"] for r in two], [r["loss"] for r in one], rtol=1e-5)


@pytest.mark.slow
def test_two_processes_checkpoint_into_a_bucket_and_resume_there(text_corpus, gcs_dir):
  """Both processes write their checkpoint shards and input positions to the same gs:// workdir;
  a relaunch after losing the last checkpoint resumes from step 5 and recomputes the same rows."""
  from etils import epath

  from scaling import storage

  flags = [f"--config.{key}={value}" for key, value in {**TINY_TRAIN_KEYS,
                                                         "data.glob": text_corpus}.items()]
  launch = ["local", "--processes", "2", "--devices-per-process", "4", "--", "scaling", "train",
            "--config", _base_config(), "--workdir", gcs_dir, *flags]
  assert cli.main(launch) == 0
  first = read_metrics(gcs_dir)
  assert [row["step"] for row in first] == list(range(1, 11))
  checkpoint = storage.join(gcs_dir, "checkpoints", "5")
  assert {"process_0-of-2.json", "process_1-of-2.json"} <= set(storage.list_names(
      storage.join(checkpoint, "data")))
  assert {"ocdbt.process_0", "ocdbt.process_1"} <= set(storage.list_names(storage.join(checkpoint,
                                                                                      "state")))
  epath.Path(storage.join(gcs_dir, "checkpoints", "10")).rmtree()
  assert cli.main(launch) == 0
  again = read_metrics(gcs_dir)
  assert storage.read_json(storage.join(gcs_dir, "run.json"))["resumed_from_step"] == 5
  drop_time = lambda rows: [{k: v for k, v in r.items() if k != "tokens_per_sec"} for r in rows]
  assert drop_time(again) == drop_time(first)

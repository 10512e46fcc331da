"""`scaling train` on `data.source=tokens:DIR` (scaling/data/token_shards.py) as a whole: two
processes train what one process trains, and a run killed with SIGKILL resumes bitwise.

The batch-level checks (the text source's batches, each process's rows) are in test_prepare.py;
these run the real trainer, with the patterns of tests/launch/test_local.py and
tests/train/test_reliability.py, on shards small enough that windows cross shard boundaries.
"""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from scaling import cli
from scaling.launch import cli as launch_cli
from scaling.launch import local
from scaling.rundir import read_metrics
from scaling.train import trainer
from small_runs import small_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "configs")
# A run killed and resumed in a child process, on one device; every run of the comparison uses the
# same environment, so the compiled programs are the same.
ONE_DEVICE = {**local.child_env(os.environ, 1), "PYTHONUNBUFFERED": "1",
              "PYTHONPATH": REPO}


@pytest.fixture(scope="module")
def tokens_dir(text_corpus, tmp_path_factory) -> str:
  """The text corpus prepared with the byte tokenizer, in shards of 20,000 tokens."""
  out = str(tmp_path_factory.mktemp("tokens") / "bytes")
  assert cli.main(["data", "prepare", "--no-progress", "--source", f"text:{text_corpus}",
                   "--tokenizer", "bytes", "--out", out, "--shard-tokens", "20000",
                   "--validation-percent", "20"]) == 0
  return out


def overrides(tokens_dir: str, **extra) -> dict:
  return {"data.source": f"tokens:{tokens_dir}", "data.glob": "", **extra}


def flags(config) -> list[str]:
  """`config` as --config.KEY=VALUE flags, every key of every group the run reads."""
  args = [f"--config.{group}.{k}={v}" for group in ("model", "data")
          for k, v in config[group].items()]
  return args + [f"--config.{k}={v}" for k, v in config.items()
                 if k not in ("model", "data", "mesh", "distributed")]


@pytest.mark.slow  # two processes compile: ~15 s idle, more on a busy machine
def test_two_processes_of_four_devices_equal_one_process_of_eight(tokens_dir, tmp_path):
  """Per-step train and eval losses of a 10-step run, batch over data=-1: each of the two processes
  reads only its own rows from the shards, and together they compute the one process's steps."""
  config = small_config("", **overrides(tokens_dir))
  reference = str(tmp_path / "one_process")
  trainer.train(config, reference, devices=jax.devices()[:8])

  distributed = str(tmp_path / "two_processes")
  assert launch_cli.main(["local", "--processes", "2", "--devices-per-process", "4", "--",
                          "scaling", "train", "--config", os.path.join(CONFIGS, "base.py"),
                          "--workdir", distributed, *flags(config)]) == 0
  one, two = read_metrics(reference), read_metrics(distributed)
  assert [row["step"] for row in two] == [row["step"] for row in one] == list(range(1, 11))
  np.testing.assert_allclose([r["loss"] for r in two], [r["loss"] for r in one], rtol=1e-5)
  np.testing.assert_allclose([r["eval_loss"] for r in two if "eval_loss" in r],
                             [r["eval_loss"] for r in one if "eval_loss" in r], rtol=1e-5)


def start(config, workdir) -> subprocess.Popen:
  return subprocess.Popen(
      [sys.executable, "-m", "scaling.cli", "train", "--config", os.path.join(CONFIGS, "tiny.py"),
       "--workdir", str(workdir), *flags(config)],
      env=ONE_DEVICE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_to_end(config, workdir) -> None:
  process = start(config, workdir)
  out, _ = process.communicate(timeout=300)
  assert process.returncode == 0, out[-2000:]


def comparable(workdir) -> list[dict]:
  """Every row with its values, except the wall-clock throughput."""
  return [{k: v for k, v in row.items() if k != "tokens_per_sec"} for row in read_metrics(workdir)]


@pytest.mark.slow  # three trainings in child processes: ~40 s idle
def test_a_run_killed_with_sigkill_resumes_bitwise(tokens_dir, tmp_path):
  """Killed with no handler running once step 7's row is written (checkpoint 4 on disk, 8 not
  yet), re-run: the rows of an uninterrupted run, bitwise, none missing or repeated."""
  config = small_config("", **overrides(tokens_dir, train_steps=12, warmup_steps=2,
                                        checkpoint_every=4, eval_every=4, eval_batches=1))
  reference = tmp_path / "uninterrupted"
  run_to_end(config, reference)
  expected = comparable(reference)
  assert [row["step"] for row in expected] == list(range(1, 13))

  killed = tmp_path / "killed"
  process = start(config, killed)
  deadline = time.time() + 240
  while len(read_metrics(killed)) < 7:
    assert time.time() < deadline and process.poll() is None, process.communicate()[0][-2000:]
    time.sleep(0.02)
  process.kill()
  process.communicate(timeout=60)
  assert process.returncode == -signal.SIGKILL
  assert len(read_metrics(killed)) < 12, "the run finished before the kill"
  run_to_end(config, killed)
  assert comparable(killed) == expected

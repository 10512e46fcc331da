"""`scaling launch tpu --dry-run` prints the exact gcloud commands, one per line."""

import importlib.metadata
import pathlib
import shlex
import sys

import pytest

from scaling.errors import InputError
from scaling.launch import cli

REPO = pathlib.Path(__file__).resolve().parents[2]
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
JAX = f"jax[tpu]=={importlib.metadata.version('jax')}"
SWEEP = ["scaling", "sweep", "--config", "configs/sweeps/isoflop_tiny.py",
         "--workdir", "/mnt/bucket/sweeps/isoflop"]
INSTALL = (
    "rm -rf ~/scaling && mkdir -p ~/scaling && tar -xzf ~/scaling.tar.gz -C ~/scaling"
    " && python3 -m pip install --user --quiet uv"
    f" && ~/.local/bin/uv venv --quiet --allow-existing --python {PYTHON} ~/scaling-venv"
    " && cd ~/scaling && ~/.local/bin/uv pip install --quiet --python ~/scaling-venv/bin/python"
    f" -e '.[tfds,tpu]' '{JAX}' gcsfs google-cloud-storage")


def dry_run(capsys, *options, command=SWEEP) -> list[list[str]]:
  capsys.readouterr()
  assert cli.main(["tpu", *options, "--dry-run", "--", *command]) == 0
  out = capsys.readouterr().out
  return [shlex.split(line) for line in out.splitlines()]


def test_create_install_and_run_on_every_worker(capsys):
  commands = dry_run(capsys, "--name", "iso-1", "--zone", "us-central2-b",
                     "--accelerator-type", "v4-16", "--project", "my-project", "--create", "--spot")
  where = ["--zone=us-central2-b", "--project=my-project"]
  assert commands == [
      ["gcloud", "compute", "tpus", "tpu-vm", "create", "iso-1", "--accelerator-type=v4-16",
       "--version=tpu-ubuntu2204-base", "--spot", *where],
      ["git", "-C", str(REPO), "archive", "--format=tar.gz", "--output=/tmp/scaling-iso-1.tar.gz",
       "HEAD"],
      ["gcloud", "compute", "tpus", "tpu-vm", "scp", "/tmp/scaling-iso-1.tar.gz",
       "iso-1:scaling.tar.gz", "--worker=all", *where],
      ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "iso-1", "--worker=all",
       f"--command={INSTALL}", *where],
      ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "iso-1", "--worker=all",
       "--command=cd ~/scaling && ~/scaling-venv/bin/scaling sweep --config "
       "configs/sweeps/isoflop_tiny.py --workdir /mnt/bucket/sweeps/isoflop "
       "--config.base.distributed.initialize=true", *where],
  ]


def test_existing_vm_train_command_gets_train_level_distributed_flag(capsys):
  train = ["scaling", "train", "--config", "configs/tiny.py", "--workdir", "/mnt/b/run one"]
  commands = dry_run(capsys, "--name", "v6", "--zone", "europe-west4-a",
                     "--accelerator-type", "v6e-8", "--skip-install", command=train)
  assert commands == [[
      "gcloud", "compute", "tpus", "tpu-vm", "ssh", "v6", "--worker=all",
      "--command=cd ~/scaling && ~/scaling-venv/bin/scaling train --config configs/tiny.py "
      "--workdir '/mnt/b/run one' --config.distributed.initialize=true",
      "--zone=europe-west4-a"]]


@pytest.mark.parametrize("accelerator,runtime", [
    ("v4-8", "tpu-ubuntu2204-base"), ("v5litepod-16", "v2-alpha-tpuv5-lite"),
    ("v5p-8", "v2-alpha-tpuv5"), ("v6e-8", "v2-alpha-tpuv6e")])
def test_runtime_version_follows_the_generation_unless_given(capsys, accelerator, runtime):
  options = ["--name", "t", "--zone", "z", "--accelerator-type", accelerator, "--create",
             "--preemptible", "--skip-install"]
  create = dry_run(capsys, *options)[0]
  assert f"--version={runtime}" in create and "--preemptible" in create
  create = dry_run(capsys, *options, "--runtime-version", "my-runtime")[0]
  assert "--version=my-runtime" in create


def test_local_workdir_is_warned_about(capsys):
  command = ["scaling", "train", "--config", "configs/tiny.py", "--workdir=runs/tiny"]
  cli.main(["tpu", "--name", "t", "--zone", "z", "--accelerator-type", "v4-8", "--dry-run",
            "--", *command])
  assert "gcsfuse" in capsys.readouterr().err


def test_remote_workdir_is_refused_before_anything_runs():
  command = ["scaling", "train", "--config", "configs/tiny.py", "--workdir", "gs://b/run"]
  with pytest.raises(InputError, match="gcsfuse"):
    cli.main(["tpu", "--name", "t", "--zone", "z", "--accelerator-type", "v4-8", "--dry-run",
              "--", *command])


@pytest.mark.parametrize("argv,named", [
    (["tpu", "--zone", "z", "--accelerator-type", "v4-8", "--", *SWEEP], "--name"),
    (["tpu", "--name", "t", "--zone", "z", "--accelerator-type", "v4-8"], "--"),
    (["tpu", "--name", "t", "--zone", "z", "--accelerator-type", "v4-8", "--", "python", "x.py"],
     "scaling train|sweep"),
    (["tpu", "--name", "t", "--zone", "z", "--accelerator-type", "v4-8", "--", "scaling", "fit"],
     "scaling train|sweep"),
    (["tpu", "--name", "t", "--zone", "z", "--accelerator-type", "x9-8", "--create", "--", *SWEEP],
     "--runtime-version"),
    (["tpu", "--name", "t", "--zone", "z", "--accelerator-type", "v4-8", "--spot", "--", *SWEEP],
     "--create"),
    (["tpu", "--name", "t", "--zone", "z", "--accelerator-type", "v4-8", "--create", "--spot",
      "--preemptible", "--", *SWEEP], "--preemptible"),
    (["gke", "--", *SWEEP], "gke"),
], ids=["no_name", "no_separator", "not_scaling", "not_train_or_sweep", "unknown_generation",
        "spot_without_create", "spot_and_preemptible", "unknown_target"])
def test_bad_launch_arguments_are_input_errors(argv, named):
  with pytest.raises(InputError, match=named.replace("|", r"\|")):
    cli.main([argv[0], "--dry-run", *argv[1:]])


def test_without_gcloud_a_real_launch_is_one_input_error(monkeypatch, tmp_path):
  monkeypatch.setenv("PATH", str(tmp_path))
  with pytest.raises(InputError, match="gcloud is not installed"):
    cli.main(["tpu", "--name", "t", "--zone", "z", "--accelerator-type", "v4-8", "--skip-install",
              "--", *SWEEP])

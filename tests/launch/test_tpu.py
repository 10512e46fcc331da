"""`scaling launch tpu --dry-run` prints the exact gcloud commands, one per line."""

import importlib.metadata
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import time

import pytest

from scaling.errors import InputError
from scaling.launch import cli
from scaling.launch import tpu as tpu_lib

REPO = pathlib.Path(__file__).resolve().parents[2]
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
JAX = f"jax[tpu]=={importlib.metadata.version('jax')}"
SWEEP = ["scaling", "sweep", "--config", "configs/sweeps/isoflop_tiny.py",
         "--workdir", "/mnt/bucket/sweeps/isoflop"]
RELEASE = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
                         capture_output=True, text=True, check=True).stdout.strip()
HERE = f"~/scaling-releases/{RELEASE}"  # this commit's own directory on each worker
INSTALL = (  # nothing is deleted: an earlier launch's relative workdir stays
    f"mkdir -p {HERE} && tar -xzf ~/scaling-{RELEASE}.tar.gz -C {HERE}"
    " && python3 -m pip install --user --quiet uv"
    f" && ~/.local/bin/uv venv --quiet --allow-existing --python {PYTHON} {HERE}.venv"
    f" && cd {HERE} && ~/.local/bin/uv pip install --quiet --python {HERE}.venv/bin/python"
    f" -e '.[tfds,tpu]' '{JAX}' gcsfs google-cloud-storage")


def detached(args: str) -> str:
  """The run step: started under nohup from the release directory, unless one is running."""
  return ("--command=if [ -f ~/scaling-run.pid ] && kill -0 $(cat ~/scaling-run.pid) 2>/dev/null; "
          "then echo \"a run is already going (pid $(cat ~/scaling-run.pid)); scaling launch tpu "
          "--stop ends it\" >&2; exit 1; fi; "
          f"cd {HERE} && {{ nohup {HERE}.venv/bin/scaling {args} > ~/scaling-run.log 2>&1 "
          "< /dev/null & echo $! > ~/scaling-run.pid; } && "
          "echo \"started on $(hostname): log ~/scaling-run.log\"")


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
      ["git", "-C", str(REPO), "archive", "--format=tar.gz",
       f"--output=/tmp/scaling-iso-1-{RELEASE}.tar.gz", "HEAD"],
      ["gcloud", "compute", "tpus", "tpu-vm", "scp", f"/tmp/scaling-iso-1-{RELEASE}.tar.gz",
       f"iso-1:scaling-{RELEASE}.tar.gz", "--worker=all", *where],
      ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "iso-1", "--worker=all",
       f"--command={INSTALL}", *where],
      ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "iso-1", "--worker=all",
       detached("sweep --config configs/sweeps/isoflop_tiny.py --workdir /mnt/bucket/sweeps/isoflop "
                "--config.base.distributed.initialize=true"), *where],
  ]


def test_existing_vm_train_command_gets_train_level_distributed_flag(capsys):
  train = ["scaling", "train", "--config", "configs/tiny.py", "--workdir", "/mnt/b/run one"]
  commands = dry_run(capsys, "--name", "v6", "--zone", "europe-west4-a",
                     "--accelerator-type", "v6e-8", "--skip-install", command=train)
  assert commands == [[
      "gcloud", "compute", "tpus", "tpu-vm", "ssh", "v6", "--worker=all",
      detached("train --config configs/tiny.py --workdir '/mnt/b/run one' "
               "--config.distributed.initialize=true"),
      "--zone=europe-west4-a"]]


@pytest.mark.parametrize("accelerator,runtime", [
    ("v3-8", "tpu-ubuntu2204-base"), ("v4-8", "tpu-ubuntu2204-base"), ("v5litepod-16", "v2-alpha-tpuv5-lite"),
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
  assert "give a gs://BUCKET/... workdir" in capsys.readouterr().err


def test_a_gs_workdir_goes_to_every_worker_as_it_is(capsys):
  command = ["scaling", "train", "--config", "configs/tiny.py", "--workdir", "gs://b/run"]
  assert cli.main(["tpu", "--name", "t", "--zone", "z", "--accelerator-type", "v4-16", "--dry-run",
                   "--", *command]) == 0
  out, err = capsys.readouterr()
  assert "--workdir gs://b/run" in out.splitlines()[-1] and "--worker=all" in out.splitlines()[-1]
  assert not err


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


@pytest.mark.parametrize("options, command, named", [
    (["--accelerator-type", "v4-7", "--create"], SWEEP,
     "--accelerator-type v4-7: no slice of that size; known: v4-8, v4-16"),
    (["--accelerator-type", "v3-16"], SWEEP, "--accelerator-type v3-16: no slice of that size"),
    (["--accelerator-type", "v5litepod-3"], SWEEP, "--accelerator-type v5litepod-3: no slice"),
    (["--accelerator-type", "v4-8"],
     ["scaling", "train", "--config", "configs/tiny.py", "--config.foo=1", "--workdir", "gs://b/r"],
     "the command after -- would fail: scaling train: --config.foo names no config key"),
    (["--accelerator-type", "v4-8"], [*SWEEP, "--config.base.model.d_modle=8"],
     "scaling sweep: --config.base.model.d_modle names no config key"),
    (["--accelerator-type", "v4-8"],
     ["scaling", "train", "--config", "configs/sweeps/isoflop_tiny.py", "--workdir", "gs://b/r"],
     "--config is a sweep config"),
    (["--accelerator-type", "v4-8"], ["scaling", "train", "--config", "nowhere.py", "--workdir",
                                      "gs://b/r"], "--config nowhere.py: no such file"),
])
def test_a_slice_or_config_that_cannot_work_fails_here_before_anything_runs(
    options, command, named, monkeypatch, tmp_path, capsys):
  """Even without --dry-run nothing runs: gcloud here would record any call made."""
  record = tmp_path / "calls"
  gcloud = tmp_path / "gcloud"
  gcloud.write_text(f"#!/bin/sh\necho \"$@\" >> {record}\n")
  gcloud.chmod(0o755)
  monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
  from scaling import cli as scaling_cli

  assert scaling_cli.main(["launch", "tpu", "--name", "t", "--zone", "z", *options, "--",
                           *command]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: scaling launch tpu: ") and err.count("\n") == 1, err
  assert named in err and not record.exists()


def test_a_sweeps_own_options_are_not_taken_for_config_keys(capsys):
  commands = dry_run(capsys, "--name", "t", "--zone", "z", "--accelerator-type", "v4-8",
                     "--skip-install", command=[*SWEEP, "--executor", "ray",
                                                "--ray-address=auto"])
  assert "--executor ray --ray-address=auto" in commands[-1][-2]


def test_without_gcloud_a_real_launch_is_one_input_error(monkeypatch, tmp_path):
  monkeypatch.setenv("PATH", str(tmp_path))
  with pytest.raises(InputError, match="gcloud is not installed"):
    cli.main(["tpu", "--name", "t", "--zone", "z", "--accelerator-type", "v4-8", "--skip-install",
              "--", *SWEEP])


def test_logs_and_stop_reach_the_detached_run(capsys):
  where = ["--zone=z"]
  for flag, expected in (
      ("--logs", ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "t", "--worker=0",
                  "--command=tail -n 100 ~/scaling-run.log", *where]),
      ("--stop", ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "t", "--worker=all",
                  "--command=kill -TERM $(cat ~/scaling-run.pid) && echo \"stopping on "
                  "$(hostname)\"", *where])):
    capsys.readouterr()
    assert cli.main(["tpu", "--name", "t", "--zone", "z", flag, "--dry-run"]) == 0
    assert [shlex.split(line) for line in capsys.readouterr().out.splitlines()] == [expected]


def test_an_uncommitted_config_is_refused_before_anything_runs():
  untracked = REPO / "configs" / f"untracked_{os.getpid()}.py"
  untracked.write_text("from configs.tiny import get_config\n")
  try:
    with pytest.raises(InputError, match="is not committed"):
      cli.main(["tpu", "--name", "t", "--zone", "z", "--dry-run", "--", "scaling", "train",
                "--config", str(untracked.relative_to(REPO)), "--workdir", "/mnt/b/run"])
  finally:
    untracked.unlink()


def test_the_detached_run_outlives_the_ssh_session_and_stops_cleanly(tmp_path):
  """The worker's side of the run, --stop and a second launch, in a real shell: a stand-in
  `scaling` that saves on SIGTERM and exits 143, as the trainer does."""
  release = tmp_path / "scaling-releases" / RELEASE
  scaling = tmp_path / "scaling-releases" / f"{RELEASE}.venv" / "bin" / "scaling"
  release.mkdir(parents=True)
  scaling.parent.mkdir(parents=True)
  scaling.write_text("#!/bin/bash\ntrap 'echo saved; exit 143' TERM\necho \"running $*\"\n"
                     "while true; do sleep 0.1; done\n")
  scaling.chmod(0o755)
  env = {**os.environ, "HOME": str(tmp_path)}
  command = ["scaling", "train", "--config", "configs/tiny.py", "--workdir", "/w"]
  shell = lambda script: subprocess.run(["bash", "-c", script], env=env, capture_output=True,
                                        text=True, timeout=30)
  started = shell(tpu_lib.run_script(command, RELEASE))
  assert started.returncode == 0 and "started on" in started.stdout, started.stderr
  pid = int((tmp_path / "scaling-run.pid").read_text())
  try:
    os.kill(pid, 0)  # alive after the launching shell exited
    again = shell(tpu_lib.run_script(command, RELEASE))
    assert again.returncode == 1 and "already going" in again.stderr
    stop = next(a for a in tpu_lib.stop_command(tpu_lib.TpuVm("t", "z", "v4-8"))
                if a.startswith("--command="))
    assert shell(stop.removeprefix("--command=")).returncode == 0
    deadline = time.time() + 10
    while time.time() < deadline and "saved" not in (tmp_path / "scaling-run.log").read_text():
      time.sleep(0.05)
    log = (tmp_path / "scaling-run.log").read_text()
    assert "running train --config configs/tiny.py --workdir /w" in log and "saved" in log
  finally:
    try:
      os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
      pass

"""`gcloud compute tpus tpu-vm` commands that run `scaling train|sweep` on every worker of a TPU VM.

Four steps, each one command: create the VM (when asked), pack the repository's committed HEAD
(`git archive`), copy it to every worker and install it there with jax[tpu] into a virtualenv, then
run the command on every worker at once with `--config.distributed.initialize=true`:
`jax.distributed.initialize()` finds the coordinator and the process ids itself on TPU VMs.
"""

import dataclasses
import importlib.metadata
import os
import pathlib
import shlex
import sys
import tempfile

from scaling.errors import InputError
from scaling.launch import command as command_lib

# Google's runtime (`--version`) for JAX per TPU generation (cloud.google.com/tpu/docs/runtimes).
RUNTIME_VERSIONS = {
    "v4": "tpu-ubuntu2204-base",
    "v5litepod": "v2-alpha-tpuv5-lite",
    "v5p": "v2-alpha-tpuv5",
    "v6e": "v2-alpha-tpuv6e",
}
PROVISIONING = ("spot", "preemptible")
REMOTE_ARCHIVE = "scaling.tar.gz"  # in the worker's home directory
REMOTE_REPO = "~/scaling"
REMOTE_VENV = "~/scaling-venv"
# gs:// inputs (a TFDS data_dir in a bucket): etils.epath and tfds read GCS through gcsfs and
# google-cloud-storage.
GCS_PACKAGES = ("gcsfs", "google-cloud-storage")


@dataclasses.dataclass(frozen=True)
class TpuVm:
  name: str
  zone: str
  accelerator_type: str
  project: str = ""
  runtime_version: str = ""  # "" = RUNTIME_VERSIONS for the accelerator's generation
  provisioning: str = ""  # "" (on demand) | spot | preemptible

  def runtime(self) -> str:
    if self.runtime_version:
      return self.runtime_version
    generation = self.accelerator_type.rsplit("-", 1)[0]
    if generation not in RUNTIME_VERSIONS:
      raise InputError(f"scaling launch tpu: no default runtime for --accelerator-type "
                       f"{self.accelerator_type}; pass --runtime-version")
    return RUNTIME_VERSIONS[generation]

  def gcloud(self, verb: str, *args: str) -> list[str]:
    project = [f"--project={self.project}"] if self.project else []
    return ["gcloud", "compute", "tpus", "tpu-vm", verb, *args, f"--zone={self.zone}", *project]


def repository() -> pathlib.Path:
  """The checkout this package runs from: what gets copied to the workers."""
  root = pathlib.Path(__file__).resolve().parents[2]
  if not (root / ".git").exists():
    raise InputError(f"scaling launch tpu: {root} is not a git checkout; the workers get the "
                     "repository's committed HEAD (git archive)")
  return root


def local_archive(vm: TpuVm) -> str:
  return os.path.join(tempfile.gettempdir(), f"scaling-{vm.name}.tar.gz")


def install_script() -> str:
  """What each worker runs to install: unpack, a virtualenv of this Python version, the package
  with the tfds extra (datasets in a bucket) and the tpu extra (jax[tpu], the libtpu that
  `scaling compile` compiles with), and jax[tpu] pinned to this jax version."""
  python = f"{sys.version_info.major}.{sys.version_info.minor}"
  jax = f"jax[tpu]=={importlib.metadata.version('jax')}"
  uv = "~/.local/bin/uv"
  return " && ".join([
      f"rm -rf {REMOTE_REPO}",
      f"mkdir -p {REMOTE_REPO}",
      f"tar -xzf ~/{REMOTE_ARCHIVE} -C {REMOTE_REPO}",
      "python3 -m pip install --user --quiet uv",  # jax 0.10 needs Python ≥ 3.11; uv fetches it
      f"{uv} venv --quiet --allow-existing --python {python} {REMOTE_VENV}",
      f"cd {REMOTE_REPO}",
      f"{uv} pip install --quiet --python {REMOTE_VENV}/bin/python -e "
      + shlex.join([".[tfds,tpu]", jax, *GCS_PACKAGES]),
  ])


def run_script(command: list[str]) -> str:
  """The command for every worker, from the repository (config paths are relative to it)."""
  distributed = command_lib.with_distributed(command)
  return f"cd {REMOTE_REPO} && {REMOTE_VENV}/bin/scaling {shlex.join(distributed[1:])}"


def commands(vm: TpuVm, command: list[str], *, create: bool, install: bool) -> list[list[str]]:
  """Every command to run, in order (the pure part of `scaling launch tpu`)."""
  steps = []
  if create:
    provisioning = [f"--{vm.provisioning}"] if vm.provisioning else []
    steps.append(vm.gcloud("create", vm.name, f"--accelerator-type={vm.accelerator_type}",
                           f"--version={vm.runtime()}", *provisioning))
  if install:
    archive = local_archive(vm)
    steps.append(["git", "-C", str(repository()), "archive", "--format=tar.gz",
                  f"--output={archive}", "HEAD"])
    steps.append(vm.gcloud("scp", archive, f"{vm.name}:{REMOTE_ARCHIVE}", "--worker=all"))
    steps.append(vm.gcloud("ssh", vm.name, "--worker=all", f"--command={install_script()}"))
  steps.append(vm.gcloud("ssh", vm.name, "--worker=all", f"--command={run_script(command)}"))
  return steps

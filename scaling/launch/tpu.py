"""`gcloud compute tpus tpu-vm` commands that run `scaling train|sweep` on every worker of a TPU VM.

Four steps, each one command: create the VM (when asked), pack the repository's committed HEAD
(`git archive`), copy it to every worker and install it there with jax[tpu] into a virtualenv, then
start the command on every worker at once with `--config.distributed.initialize=true`:
`jax.distributed.initialize()` finds the coordinator and the process ids itself on TPU VMs.

Each commit installs into its own directory, `~/scaling-releases/COMMIT`, and nothing is ever
deleted there, so a relative workdir of an earlier launch survives a re-launch. The command runs
detached (`nohup`, output in RUN_LOG, pid in RUN_PID on each worker): closing the laptop does not
stop it; `--logs` shows the log and `--stop` sends SIGTERM (a clean save, exit 143).
"""

import dataclasses
import importlib.metadata
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile

from scaling import hardware
from scaling.errors import InputError
from scaling.launch import command as command_lib

# Google's runtime (`--version`) for JAX per TPU generation.
RUNTIME_VERSIONS = {name: row.runtime_version for name, row in hardware.GENERATIONS.items()}
PROVISIONING = ("spot", "preemptible")
REMOTE_RELEASES = "~/scaling-releases"  # one directory per commit, COMMIT and COMMIT.venv
RUN_LOG = "~/scaling-run.log"  # the detached command's output, on each worker
RUN_PID = "~/scaling-run.pid"
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


def check_accelerator_type(accelerator_type: str) -> None:
  """A slice of a generation this knows must exist (`v4-7` does not: v4 counts TensorCores, two
  per chip, in slices of known shapes); a generation it does not know (a newer one) goes to gcloud
  as given, with --runtime-version."""
  from scaling.compile import topology

  generation, _, count = accelerator_type.rpartition("-")
  if generation not in hardware.GENERATIONS:
    return
  slices = hardware.GENERATIONS[generation].slices
  if slices is None:  # its slices are the shapes scaling compile maps
    try:
      topology.parse(accelerator_type)
    except InputError as e:
      raise InputError(f"scaling launch tpu: {str(e).replace('--topology', '--accelerator-type', 1)}"
                       ) from None
  elif not count.isdigit() or int(count) not in slices:
    sizes = ", ".join(f"{generation}-{n}" for n in slices)
    raise InputError(f"scaling launch tpu: --accelerator-type {accelerator_type}: no slice of "
                     f"that size; known: {sizes}")


def repository() -> pathlib.Path:
  """The checkout this package runs from: what gets copied to the workers."""
  root = pathlib.Path(__file__).resolve().parents[2]
  if not (root / ".git").exists():
    raise InputError(f"scaling launch tpu: {root} is not a git checkout; the workers get the "
                     "repository's committed HEAD (git archive)")
  return root


def _git(root: pathlib.Path, *args: str) -> str:
  try:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()
  except (OSError, subprocess.SubprocessError) as e:
    raise InputError(f"scaling launch tpu: git {' '.join(args)} failed in {root} ({e})") from None


def version(root: pathlib.Path) -> str:
  """The commit the workers get: its short hash names the release directory."""
  return _git(root, "rev-parse", "--short=12", "HEAD")


def shipped_command(command: list[str], root: pathlib.Path) -> list[str]:
  """The command with its --config file as a path inside the repository, which must be committed
  as it is: the workers get `git archive HEAD`, so an untracked or edited file would not arrive
  (or would arrive as its committed version)."""
  at = command_lib.config_index(command)
  if at is None:
    return command
  value = command[at].split("=", 1)[1] if command[at].startswith("--config=") else command[at]
  path, _, args = value.partition(":")
  relative = os.path.relpath(os.path.abspath(path), root)
  if relative.startswith(".."):
    raise InputError(f"scaling launch tpu: --config {path} is outside the repository {root}; "
                     "the workers get its committed HEAD, so add the file there and commit it")
  if not _git(root, "ls-files", "--", relative):
    raise InputError(f"scaling launch tpu: --config {path} is not committed, so the workers would "
                     "not have it (they get git archive HEAD); commit it first")
  if _git(root, "status", "--porcelain", "--", relative):
    raise InputError(f"scaling launch tpu: --config {path} has uncommitted changes, which the "
                     "workers would not get (git archive HEAD); commit them first")
  value = relative + (f":{args}" if args else "")
  shipped = list(command)
  shipped[at] = f"--config={value}" if command[at].startswith("--config=") else value
  return shipped


def local_archive(vm: TpuVm, release: str) -> str:
  return os.path.join(tempfile.gettempdir(), f"scaling-{vm.name}-{release}.tar.gz")


def install_script(release: str) -> str:
  """What each worker runs to install `release`: unpack into its own directory (over an earlier
  unpacking of the same commit, which has the same files; nothing is deleted), a virtualenv of this
  Python version, the package with the tfds extra (datasets in a bucket) and the tpu extra
  (jax[tpu], the libtpu that `scaling compile` compiles with), and jax[tpu] of this jax version."""
  python = f"{sys.version_info.major}.{sys.version_info.minor}"
  jax = f"jax[tpu]=={importlib.metadata.version('jax')}"
  uv = "~/.local/bin/uv"
  repo, venv = f"{REMOTE_RELEASES}/{release}", f"{REMOTE_RELEASES}/{release}.venv"
  return " && ".join([
      f"mkdir -p {repo}",
      f"tar -xzf ~/scaling-{release}.tar.gz -C {repo}",
      "python3 -m pip install --user --quiet uv",  # jax 0.10 needs Python ≥ 3.11; uv fetches it
      f"{uv} venv --quiet --allow-existing --python {python} {venv}",
      f"cd {repo}",
      f"{uv} pip install --quiet --python {venv}/bin/python -e "
      + shlex.join([".[tfds,tpu]", jax, *GCS_PACKAGES]),
  ])


def run_script(command: list[str], release: str) -> str:
  """The command for every worker, started detached from the release's directory (config paths
  are relative to it), unless one is already running there."""
  distributed = command_lib.with_distributed(command)
  repo, venv = f"{REMOTE_RELEASES}/{release}", f"{REMOTE_RELEASES}/{release}.venv"
  return (f"if [ -f {RUN_PID} ] && kill -0 $(cat {RUN_PID}) 2>/dev/null; then "
          f"echo \"a run is already going (pid $(cat {RUN_PID})); scaling launch tpu --stop "
          "ends it\" >&2; exit 1; fi; "
          f"cd {repo} && {{ nohup {venv}/bin/scaling {shlex.join(distributed[1:])} "
          f"> {RUN_LOG} 2>&1 < /dev/null & echo $! > {RUN_PID}; }} && "
          f"echo \"started on $(hostname): log {RUN_LOG}\"")


def logs_command(vm: TpuVm, lines: int = 100) -> list[str]:
  """The end of worker 0's log (process 0 prints the progress and the results)."""
  return vm.gcloud("ssh", vm.name, "--worker=0", f"--command=tail -n {lines} {RUN_LOG}")


def stop_command(vm: TpuVm) -> list[str]:
  """SIGTERM to the command on every worker: it saves a checkpoint and exits 143."""
  return vm.gcloud("ssh", vm.name, "--worker=all",
                   f"--command=kill -TERM $(cat {RUN_PID}) && echo \"stopping on $(hostname)\"")


def commands(vm: TpuVm, command: list[str], *, create: bool, install: bool) -> list[list[str]]:
  """Every command to run, in order (the pure part of `scaling launch tpu`, but for git)."""
  root = repository()
  release = version(root)
  steps = []
  if create:
    provisioning = [f"--{vm.provisioning}"] if vm.provisioning else []
    steps.append(vm.gcloud("create", vm.name, f"--accelerator-type={vm.accelerator_type}",
                           f"--version={vm.runtime()}", *provisioning))
  if install:
    command = shipped_command(command, root)
    archive = local_archive(vm, release)
    steps.append(["git", "-C", str(root), "archive", "--format=tar.gz", f"--output={archive}",
                  "HEAD"])
    steps.append(vm.gcloud("scp", archive, f"{vm.name}:scaling-{release}.tar.gz", "--worker=all"))
    steps.append(vm.gcloud("ssh", vm.name, "--worker=all", f"--command={install_script(release)}"))
  steps.append(vm.gcloud("ssh", vm.name, "--worker=all", f"--command={run_script(command, release)}"))
  return steps

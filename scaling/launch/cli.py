"""`scaling launch tpu|local [OPTIONS] -- scaling train|sweep ...`.

  tpu    create (--create), install on and run across every worker of a Cloud TPU VM via gcloud;
         --dry-run prints the commands, one per line
  local  P processes on this machine joined by jax.distributed, each with its own CPU devices
"""

import shlex
import subprocess
import sys

from scaling import rundir
from scaling.errors import ArgumentParser, InputError
from scaling.launch import command as command_lib


def _split(argv: list[str], prog: str) -> tuple[list[str], list[str]]:
  if "--" not in argv:
    raise InputError(f"{prog}: put the command to run after --, e.g. -- scaling train --config ...")
  at = argv.index("--")
  return argv[:at], command_lib.check(argv[at + 1:], prog)


def tpu(argv: list[str]) -> int:
  from scaling.launch import tpu as tpu_lib

  prog = "scaling launch tpu"
  options, command = _split(argv, prog)
  parser = ArgumentParser(prog=prog, description="Run scaling train|sweep on every TPU VM worker.")
  parser.add_argument("--name", required=True, help="TPU VM name")
  parser.add_argument("--zone", required=True, help="e.g. us-central2-b")
  parser.add_argument("--accelerator-type", required=True, help="e.g. v4-8, v5litepod-16, v6e-8")
  parser.add_argument("--project", default="", help="GCP project (default: gcloud's)")
  parser.add_argument("--create", action="store_true", help="create the TPU VM first")
  parser.add_argument("--runtime-version", default="",
                      help="TPU software version (default: Google's JAX runtime for the TPU)")
  provisioning = parser.add_mutually_exclusive_group()
  for kind in tpu_lib.PROVISIONING:
    provisioning.add_argument(f"--{kind}", dest="provisioning", action="store_const", const=kind,
                              default="", help=f"create a {kind} VM (with --create)")
  parser.add_argument("--skip-install", action="store_true",
                      help="the workers already have this repository installed")
  parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
  args = parser.parse_args(options)
  if args.provisioning and not args.create:
    raise InputError(f"{prog}: --{args.provisioning} applies to a VM being created: add --create")
  vm = tpu_lib.TpuVm(name=args.name, zone=args.zone, accelerator_type=args.accelerator_type,
                     project=args.project, runtime_version=args.runtime_version,
                     provisioning=args.provisioning)
  steps = tpu_lib.commands(vm, command, create=args.create, install=not args.skip_install)
  workdir = command_lib.workdir(command)
  if workdir is not None and not rundir.is_remote(workdir):
    print(f"warning: --workdir {workdir} is on each worker's own disk; a multi-host slice needs one "
          "directory shared by every worker: give a gs://BUCKET/... workdir (docs/sweeps.md)",
          file=sys.stderr)
  if args.dry_run:
    print("\n".join(shlex.join(step) for step in steps))
    return 0
  for step in steps:
    print(f"+ {shlex.join(step)}", flush=True)
    try:
      code = subprocess.run(step, check=False).returncode
    except FileNotFoundError:
      raise InputError(f"{prog}: {step[0]} is not installed (or not on PATH)") from None
    if code:
      print(f"{prog}: {step[0]} exited with code {code}", file=sys.stderr)
      return code
  return 0


def local(argv: list[str]) -> int:
  from scaling.launch import local as local_lib

  prog = "scaling launch local"
  options, command = _split(argv, prog)
  parser = ArgumentParser(prog=prog, description="Run scaling train|sweep as P local processes.")
  parser.add_argument("--processes", type=int, required=True, help="number of processes P ≥ 1")
  parser.add_argument("--devices-per-process", type=int, default=4,
                      help="simulated CPU devices in each process")
  args = parser.parse_args(options)
  for key, value in (("--processes", args.processes),
                     ("--devices-per-process", args.devices_per_process)):
    if value < 1:
      raise InputError(f"{prog}: {key} must be ≥ 1, got {value}")
  return local_lib.launch(command, args.processes, args.devices_per_process)


TARGETS = {"tpu": tpu, "local": local}


def main(argv: list[str]) -> int:
  if not argv or argv[0] in ("-h", "--help"):
    print(__doc__.strip())
    return 0 if argv else 2
  if argv[0] not in TARGETS:
    raise InputError(f"scaling launch: unknown target {argv[0]!r} (targets: {', '.join(TARGETS)})")
  return TARGETS[argv[0]](argv[1:])

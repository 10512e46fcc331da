"""`scaling launch tpu|local [OPTIONS] -- scaling train|sweep ...`.

  tpu    create (--create), install on and start across every worker of a Cloud TPU VM via
         gcloud, detached; --logs shows its log, --stop ends it (a clean save); --dry-run prints
         the commands, one per line
  local  P processes on this machine joined by jax.distributed, each with its own CPU devices
"""

import os
import shlex
import shutil
import subprocess
import sys

from scaling import storage
from scaling.errors import ArgumentParser, InputError
from scaling.launch import command as command_lib


def _split(argv: list[str], prog: str, *, required: bool = True) -> tuple[list[str], list[str]]:
  """(the launcher's options, the command after --); the command is checked when there is one."""
  if "--" not in argv:
    if required:
      raise InputError(f"{prog}: put the command to run after --, e.g. -- scaling train --config ...")
    return argv, []
  at = argv.index("--")
  return argv[:at], command_lib.check(argv[at + 1:], prog)


def _wants_help(parser: ArgumentParser, options: list[str]) -> bool:
  if any(a in ("-h", "--help") for a in options):
    parser.print_help()
    return True
  return False


def _tpu_parser(prog: str, provisioning_kinds) -> ArgumentParser:
  parser = ArgumentParser(
      prog=prog, usage=f"{prog} --name NAME --zone ZONE [OPTIONS] -- scaling train|sweep ...",
      description="Run scaling train|sweep on every TPU VM worker, detached (nohup), from this "
                  "commit's own directory on each; --logs and --stop reach it later.")
  parser.add_argument("--name", required=True, help="TPU VM name")
  parser.add_argument("--zone", required=True, help="e.g. us-central2-b")
  parser.add_argument("--accelerator-type", default="",
                      help="e.g. v3-8, v4-8, v5litepod-16, v6e-8 (needed to --create)")
  parser.add_argument("--project", default="", help="GCP project (default: gcloud's)")
  parser.add_argument("--create", action="store_true", help="create the TPU VM first")
  parser.add_argument("--runtime-version", default="",
                      help="TPU software version (default: Google's JAX runtime for the TPU)")
  provisioning = parser.add_mutually_exclusive_group()
  for kind in provisioning_kinds:
    provisioning.add_argument(f"--{kind}", dest="provisioning", action="store_const", const=kind,
                              default="", help=f"create a {kind} VM (with --create)")
  parser.add_argument("--skip-install", action="store_true",
                      help="the workers already have this commit installed")
  parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
  action = parser.add_mutually_exclusive_group()
  action.add_argument("--logs", action="store_true",
                      help="show the end of the running command's log (worker 0), start nothing")
  action.add_argument("--stop", action="store_true",
                      help="SIGTERM the running command on every worker: it saves and exits 143")
  return parser


def tpu(argv: list[str]) -> int:
  from scaling.launch import tpu as tpu_lib

  prog = "scaling launch tpu"
  parser = _tpu_parser(prog, tpu_lib.PROVISIONING)
  options, command = _split(argv, prog, required=False)
  if _wants_help(parser, options):
    return 0
  args = parser.parse_args(options)
  if command:
    command_lib.check_config(command, prog)
  if args.accelerator_type:
    tpu_lib.check_accelerator_type(args.accelerator_type)
  if args.provisioning and not args.create:
    raise InputError(f"{prog}: --{args.provisioning} applies to a VM being created: add --create")
  if not args.dry_run and shutil.which("gcloud") is None:
    raise InputError(f"{prog}: gcloud is not installed (or not on PATH)")
  vm = tpu_lib.TpuVm(name=args.name, zone=args.zone, accelerator_type=args.accelerator_type,
                     project=args.project, runtime_version=args.runtime_version,
                     provisioning=args.provisioning)
  if args.logs or args.stop:
    if command:
      raise InputError(f"{prog}: --{'logs' if args.logs else 'stop'} takes no command after --")
    steps = [tpu_lib.logs_command(vm) if args.logs else tpu_lib.stop_command(vm)]
  else:
    if not command:
      _split(argv, prog)  # the error: a command after -- is needed
    if args.create and not args.accelerator_type:
      raise InputError(f"{prog}: --create needs --accelerator-type")
    steps = tpu_lib.commands(vm, command, create=args.create, install=not args.skip_install)
    _warn_local_workdir(command)
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


def _warn_local_workdir(command: list[str]) -> None:
  workdir = command_lib.workdir(command)
  if workdir is not None and not storage.is_remote(workdir):
    relative = "" if os.path.isabs(workdir) else (
        ", inside this commit's release directory (a later commit's launch will not resume it)")
    print(f"warning: --workdir {workdir} is on each worker's own disk{relative}; a multi-host slice "
          "needs one directory shared by every worker: give a gs://BUCKET/... workdir "
          "(docs/sweeps.md)", file=sys.stderr)


def local(argv: list[str]) -> int:
  from scaling.launch import local as local_lib

  prog = "scaling launch local"
  parser = ArgumentParser(prog=prog, usage=f"{prog} --processes P [OPTIONS] -- scaling train|sweep ...",
                          description="Run scaling train|sweep as P local processes.")
  parser.add_argument("--processes", type=int, required=True, help="number of processes P ≥ 1")
  parser.add_argument("--devices-per-process", type=int, default=4,
                      help="simulated CPU devices in each process")
  options, command = _split(argv, prog, required=False)
  if _wants_help(parser, options):
    return 0
  options, command = _split(argv, prog)
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

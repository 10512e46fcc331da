"""`scaling sweep --config FILE --workdir DIR [--config.KEY=VALUE ...] [--dry-run [--topology TYPE]]
[--executor E]`.

Plans the sweep (validating every key first), prints the plan, and unless --dry-run trains its runs,
one after another in this process (`--executor local`) or as Ray work across a cluster
(`--executor ray`, fleet.py); exit 1 when any run failed (each is listed with its reason). With
--topology, the dry run also compiles each run's step for that TPU slice (`scaling.compile`); with
--search too, it searches microbatches × remat policies per run shape and prints each run's best.
"""

import importlib.util
import sys

from scaling import config_file
from scaling.cli import signal_exit_code
from scaling.errors import InputError

PROG = "scaling sweep"
USAGE = f"""usage: {PROG} --config FILE --workdir DIR [--config.KEY=VALUE ...] [--dry-run]
                     [--topology TYPE [--num-slices K] [--assume-mfu X] [--measured BENCH.json]
                     [--search]] [--executor local|ray] [--ray-address ADDR]

  --config FILE       a sweep config (configs/sweeps/*.py; every key in scaling/sweep/config.py)
  --workdir DIR       DIR/plan.json, DIR/results.csv, DIR/runs/NAME (one train workdir per run)
  --dry-run           print the plan and write nothing
  --topology TYPE     with --dry-run: compile each run for this TPU slice (e.g. v5p-32) and add
                      whether it fits, memory per device, a lower bound on its wall time, chip-hours
  --num-slices K      with --topology: K such slices joined by the data-center network
  --assume-mfu X      the MFU that chip-hours assume (default 0.4)
  --measured FILE     with --topology: a `scaling bench --json` report; runs of its shape on its
                      chip also get chip-hours at the MFU it measured
  --search            with --topology: per run shape, `scaling compile --search` (microbatches ×
                      remat policies); each run with the best that fits, as --config. overrides
  --executor local    train the runs one after another in this process (the default)
  --executor ray      train them as Ray work, each sized by sweep.resources (docs/sweeps.md)
  --ray-address ADDR  the Ray cluster to join (default: RAY_ADDRESS, or start a local one)

exit codes: 0 every run finished, 1 some run failed (each listed), 2 bad input, 130 / 143 stopped
by SIGINT (Ctrl-C) / SIGTERM after the current run saved a checkpoint (the same command resumes).
"""
EXECUTORS = ("local", "ray")


def _take_option(argv: list[str], name: str) -> tuple[str | None, list[str]]:
  """The value of `--name VALUE` or `--name=VALUE` (the last one given), and argv without it."""
  value, rest, i = None, [], 0
  while i < len(argv):
    if argv[i] == name:
      if i + 1 == len(argv):
        raise InputError(f"{PROG}: {name} needs a value")
      value, i = argv[i + 1], i + 2
      continue
    if argv[i].startswith(name + "="):
      value = argv[i].split("=", 1)[1]
    else:
      rest.append(argv[i])
    i += 1
  return value, rest


def main(argv: list[str]) -> int:
  if any(a in ("-h", "--help") for a in argv):
    print(USAGE, end="")
    return 0
  dry_run = "--dry-run" in argv
  search = "--search" in argv
  argv = [a for a in argv if a != "--search"]
  executor, argv = _take_option(argv, "--executor")
  address, argv = _take_option(argv, "--ray-address")
  topology, argv = _take_option(argv, "--topology")
  assume_mfu, argv = _take_option(argv, "--assume-mfu")
  num_slices, argv = _take_option(argv, "--num-slices")
  measured, argv = _take_option(argv, "--measured")
  executor = executor or "local"
  if executor not in EXECUTORS:
    raise InputError(f"{PROG}: --executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
  if address is not None and executor != "ray":
    raise InputError(f"{PROG}: --ray-address needs --executor ray")
  if executor == "ray" and importlib.util.find_spec("ray") is None:
    raise InputError(f'{PROG}: --executor ray needs Ray: pip install -e ".[ray]"')
  if topology and not dry_run:
    raise InputError(f"{PROG}: --topology plans against hardware; it needs --dry-run")
  if (num_slices or measured or search) and not topology:
    raise InputError(f"{PROG}: --num-slices, --measured and --search need --topology")
  if search and measured:
    raise InputError(f"{PROG}: --search ranks candidates by their step bound; drop --measured")
  topology, assume_mfu = _hardware(topology, assume_mfu, num_slices)
  if measured:
    from scaling.compile import sweep_plan

    measured = sweep_plan.measured_mfu(measured)
  config, workdir = config_file.load([a for a in argv if a != "--dry-run"], prog=PROG,
                                     reference="scaling/sweep/config.py")
  from scaling.sweep import plan as plan_lib

  plan = plan_lib.build(config, workdir)
  if topology:
    from scaling.compile import sweep_plan

    sweep_plan.check_shapes(plan, topology)  # before anything is printed or compiled
  print(plan.table())
  if dry_run:
    if topology:
      from scaling.compile import sweep_plan

      print(sweep_plan.search_table(plan, topology) if search else
            sweep_plan.table(plan, topology, assume_mfu, measured))
    return 0
  if executor == "ray":
    from scaling.sweep import fleet

    outcome = fleet.run(plan, address=address)
  else:
    from scaling.sweep import runner

    outcome = runner.run(plan)
  print(f"{len(outcome.finished)} of {len(plan.runs)} runs finished; "
        f"results in {outcome.results_path}")
  for name, reason in outcome.failed.items():
    print(f"failed: {name}: {reason}", file=sys.stderr)
  if outcome.preempted:
    print(f"preempted during {outcome.preempted} ({outcome.signal}): run the same command again "
          "to resume", file=sys.stderr)
    return signal_exit_code(outcome.signal)  # 130 / 143, as `scaling train` gives
  return 1 if outcome.failed else 0


def _hardware(topology: str | None, assume_mfu: str | None, num_slices: str | None = None):
  """(Topology | None, mfu) from the --topology, --assume-mfu and --num-slices values."""
  assume_mfu = "0.4" if assume_mfu is None else assume_mfu
  try:
    mfu = float(assume_mfu)
  except ValueError:
    mfu = -1.0
  if not 0 < mfu <= 1:
    raise InputError(f"{PROG}: --assume-mfu must be in (0, 1], got {assume_mfu!r}")
  if topology:
    from scaling.compile import topology as topology_lib

    if num_slices is not None and not num_slices.isdigit():
      raise InputError(f"{PROG}: --num-slices must be a positive integer, got {num_slices!r}")
    return topology_lib.parse(topology, int(num_slices or 1)), mfu
  return None, mfu

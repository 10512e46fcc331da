"""`scaling sweep --config FILE --workdir DIR [--config.KEY=VALUE ...] [--dry-run [--topology TYPE]]`.

Plans the sweep (validating every key first), prints the plan, and unless --dry-run trains its runs
one after another; exit 1 when any run failed (each is listed with its reason). With --topology,
the dry run also compiles each run's step for that TPU slice (`scaling.compile.sweep_plan`).
"""

import sys

from scaling import config_file
from scaling.errors import InputError

PROG = "scaling sweep"
USAGE = f"""usage: {PROG} --config FILE --workdir DIR [--config.KEY=VALUE ...] [--dry-run]

  --config FILE   a sweep config (configs/sweeps/*.py; every key in configs/sweeps/base.py)
  --workdir DIR   DIR/plan.json, DIR/results.csv, DIR/runs/NAME (one train workdir per run)
  --dry-run       print the plan and write nothing
  --topology TYPE with --dry-run: compile each run for this TPU slice (e.g. v5p-32) and add whether
                  it fits, memory per device, a lower bound on its wall time and chip-hours
  --assume-mfu X  the MFU that chip-hours assume (default 0.4)
"""


def main(argv: list[str]) -> int:
  if any(a in ("-h", "--help") for a in argv):
    print(USAGE, end="")
    return 0
  dry_run = "--dry-run" in argv
  argv, topology, assume_mfu = _hardware_options([a for a in argv if a != "--dry-run"])
  if topology and not dry_run:
    raise InputError(f"{PROG}: --topology plans against hardware; it needs --dry-run")
  config, workdir = config_file.load(argv, prog=PROG, reference="configs/sweeps/base.py")
  from scaling.sweep import plan as plan_lib

  plan = plan_lib.build(config, workdir)
  print(plan.table())
  if dry_run:
    if topology:
      from scaling.compile import sweep_plan

      print(sweep_plan.table(plan, topology, assume_mfu))
    return 0
  from scaling.sweep import runner

  outcome = runner.run(plan)
  print(f"{len(outcome.finished)} of {len(plan.runs)} runs finished; "
        f"results in {outcome.results_path}")
  if outcome.preempted:
    print(f"preempted during {outcome.preempted}: run the same command again to resume")
  for name, reason in outcome.failed.items():
    print(f"failed: {name}: {reason}", file=sys.stderr)
  return 1 if outcome.failed else 0


def _hardware_options(argv: list[str]):
  """Takes --topology TYPE and --assume-mfu X out of argv: (the rest, Topology | None, mfu)."""
  values, rest, i = {"--topology": None, "--assume-mfu": "0.4"}, [], 0
  while i < len(argv):
    name, _, inline = argv[i].partition("=")
    if name in values:
      if not inline and i + 1 >= len(argv):
        raise InputError(f"{PROG}: {name} needs a value")
      values[name] = inline or argv[i + 1]
      i += 1 if inline else 2
      continue
    rest.append(argv[i])
    i += 1
  try:
    mfu = float(values["--assume-mfu"])
  except ValueError:
    mfu = -1.0
  if not 0 < mfu <= 1:
    raise InputError(f"{PROG}: --assume-mfu must be in (0, 1], got {values['--assume-mfu']!r}")
  topology = None
  if values["--topology"]:
    from scaling.compile import topology as topology_lib

    topology = topology_lib.parse(values["--topology"])
  return rest, topology, mfu

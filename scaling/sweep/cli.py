"""`scaling sweep --config FILE --workdir DIR [--config.KEY=VALUE ...] [--dry-run] [--executor E]`.

Plans the sweep (validating every key first), prints the plan, and unless --dry-run trains its runs,
one after another in this process (`--executor local`) or as Ray work across a cluster
(`--executor ray`, fleet.py); exit 1 when any run failed (each is listed with its reason).
"""

import sys

from scaling import config_file
from scaling.cli import signal_exit_code
from scaling.errors import InputError

PROG = "scaling sweep"
USAGE = f"""usage: {PROG} --config FILE --workdir DIR [--config.KEY=VALUE ...] [--dry-run]
                     [--executor local|ray] [--ray-address ADDR]

  --config FILE       a sweep config (configs/sweeps/*.py; every key in configs/sweeps/base.py)
  --workdir DIR       DIR/plan.json, DIR/results.csv, DIR/runs/NAME (one train workdir per run)
  --dry-run           print the plan and write nothing
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
  executor, argv = _take_option(argv, "--executor")
  address, argv = _take_option(argv, "--ray-address")
  executor = executor or "local"
  if executor not in EXECUTORS:
    raise InputError(f"{PROG}: --executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
  if address is not None and executor != "ray":
    raise InputError(f"{PROG}: --ray-address needs --executor ray")
  config, workdir = config_file.load([a for a in argv if a != "--dry-run"], prog=PROG,
                                     reference="configs/sweeps/base.py")
  from scaling.sweep import plan as plan_lib

  plan = plan_lib.build(config, workdir)
  print(plan.table())
  if dry_run:
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

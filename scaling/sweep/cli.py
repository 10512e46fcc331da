"""`scaling sweep --config FILE --workdir DIR [--config.KEY=VALUE ...] [--dry-run]`.

Plans the sweep (validating every key first), prints the plan, and unless --dry-run trains its runs
one after another; exit 1 when any run failed (each is listed with its reason).
"""

import sys

from scaling import config_file
from scaling.cli import signal_exit_code

PROG = "scaling sweep"
USAGE = f"""usage: {PROG} --config FILE --workdir DIR [--config.KEY=VALUE ...] [--dry-run]

  --config FILE   a sweep config (configs/sweeps/*.py; every key in configs/sweeps/base.py)
  --workdir DIR   DIR/plan.json, DIR/results.csv, DIR/runs/NAME (one train workdir per run)
  --dry-run       print the plan and write nothing

exit codes: 0 every run finished, 1 some run failed (each listed), 2 bad input, 130 / 143 stopped
by SIGINT (Ctrl-C) / SIGTERM after the current run saved a checkpoint (the same command resumes).
"""


def main(argv: list[str]) -> int:
  if any(a in ("-h", "--help") for a in argv):
    print(USAGE, end="")
    return 0
  dry_run = "--dry-run" in argv
  config, workdir = config_file.load([a for a in argv if a != "--dry-run"], prog=PROG,
                                     reference="configs/sweeps/base.py")
  from scaling.sweep import plan as plan_lib

  plan = plan_lib.build(config, workdir)
  print(plan.table())
  if dry_run:
    return 0
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

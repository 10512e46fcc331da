"""One process of one run of a Ray sweep: `python -m scaling.sweep.worker OUTCOME_PATH < pickle`.

A fresh process per run (per host of a slice), so every run gets its own JAX backend, its own
`jax.distributed` group and a clean exit. stdin holds the pickled (train config, run workdir, sweep
workdir, seconds to wait for a slice's other hosts); OUTCOME_PATH (on this host's disk) gets
{"outcome": finished|preempted|failed, "reason"}. Exit codes follow `scaling train`: 0 finished,
143 preempted (SIGTERM, after a checkpoint), 1 a failure, 2 bad input.

A host whose slice-mates never join `jax.distributed` within the timeout was left alone by a
preempted (or lost) host: JAX aborts the process (SIGABRT, no Python exception), so the outcome
file says "preempted" before the host joins and is removed once it has.
"""

import json
import os
import pickle
import sys
import traceback

PREEMPTED_EXIT = 143


def _write(path: str, outcome: str, reason: str = "") -> None:
  with open(path, "w", encoding="utf-8") as f:
    json.dump({"outcome": outcome, "reason": reason}, f)


def _join(settings, timeout_s: float) -> None:
  """`jax.distributed.initialize` with the run's settings (unset ones auto-detected, as the trainer
  does) and a timeout; the trainer then finds the group joined."""
  import jax

  jax.distributed.initialize(
      coordinator_address=settings.coordinator_address or None,
      num_processes=settings.num_processes or None,
      process_id=settings.process_id if settings.process_id >= 0 else None,
      initialization_timeout=int(timeout_s))


def main(outcome_path: str) -> int:
  config, workdir, sweep_workdir, join_timeout_s = pickle.load(sys.stdin.buffer)
  from scaling import rundir
  from scaling.errors import InputError, first_line
  from scaling.sweep import runner
  from scaling.train import trainer

  try:
    if config.distributed.initialize:
      _write(outcome_path, "preempted", "jax.distributed.initialize timed out after "
             f"{join_timeout_s:g} s: a host of the slice never joined")
      _join(config.distributed, join_timeout_s)
      os.remove(outcome_path)
    with runner.compile_cache(rundir.SweepDir(sweep_workdir).compile_cache):
      last = trainer.train(config, workdir)
  except Exception as e:  # noqa: BLE001  reported to the driver as this run's one-line reason
    if not isinstance(e, InputError):
      traceback.print_exc()
    _write(outcome_path, "failed", first_line(e, with_type=True))
    return 2 if isinstance(e, InputError) else 1
  if last.get("preempted"):
    _write(outcome_path, "preempted")
    return PREEMPTED_EXIT
  _write(outcome_path, "finished")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1]))

"""`scaling train --config FILE --workdir DIR [--config.KEY=VALUE ...]`: one run, resumable.

JAX and the trainer are imported only after --help, so printing the usage stays instant.
"""

import sys

from scaling.errors import InputError

USAGE = """usage: scaling train --config FILE --workdir DIR [--config.KEY=VALUE ...]

  --config FILE        a train config (configs/tiny.py; every key, its default and meaning in
                       scaling/train/config.py defaults())
  --workdir DIR        run.json, metrics.jsonl, checkpoints/, tensorboard/; the same DIR resumes
  --config.KEY=VALUE   override any key, e.g. --config.model.d_model=128 --config.train_steps=500

exit codes: 0 trained (or already finished), 1 diverged, out of memory or out of disk space
(the complete checkpoints kept), 2 bad input (nothing written) or DIR being trained by another
process (named), 130 stopped by SIGINT (Ctrl-C) and 143 by SIGTERM, each after saving a
checkpoint from which the same command resumes.
"""


def main(argv: list[str]) -> int:
  if any(a in ("-h", "--help") for a in argv):
    print(USAGE, end="")
    return 0
  from scaling import config_file
  from scaling.cli import signal_exit_code
  from scaling.train import trainer

  config, workdir = config_file.load(argv, prog="scaling train", reference="scaling/train/config.py")
  if "sweep" in config and "base" in config:
    raise InputError("scaling train: --config is a sweep config (it has sweep.* and base.* keys); "
                     "run it with scaling sweep")
  config_file.require(config, ("data",), prog="scaling train",
                      reference="scaling.train.config.defaults()")

  last = _train_holding_the_lease(config, workdir)
  if last is None:
    return 1
  if last.get("preempted"):
    return signal_exit_code(last["signal"])
  if not last:
    print(f"{workdir}: already trained to its last step; nothing to do")
    return 0
  summary = ", ".join(f"{k} {last[k]:.4g}" for k in ("loss", "eval_loss", "tokens", "flops") if k in last)
  print(f"step {last['step']}: {summary}; outputs in {workdir}")
  throughput = trainer.throughput(workdir)
  if throughput:
    print("throughput (median over log intervals, first one with compilation excluded): "
          f"{throughput['tokens_per_sec']:,.0f} tokens/s, "
          f"{throughput['flops_per_sec']:.3g} model FLOP/s (chinchilla convention)")
  return 0


def _train_holding_the_lease(config, workdir: str) -> dict | None:
  """Trains holding the run's lease (scaling/train/runstate.py), as a sweep's runs are: a second
  process on the same workdir is refused (InputError, exit 2) instead of training it twice. A
  multi-process run takes none (its processes would have to agree on who holds it). None: failed
  (diverged, out of memory or disk, lease taken over), said on stderr."""
  import uuid

  from scaling import rundir, storage
  from scaling.errors import first_line
  from scaling.train import runstate
  from scaling.train import hooks, trainer

  attempt = None
  if not config.get("distributed", {}).get("initialize", False):
    attempt = runstate.Attempt(workdir, f"train/{uuid.uuid4().hex[:12]}")
    storage.check_writable(workdir)  # the trainer's check (a bucket it cannot reach: one line)
    attempt.refuse_if_held()  # reads only: a busy workdir is refused before anything compiles
  try:
    last = trainer.train(config, workdir, claim=attempt and trainer.Claim(attempt))
  except (trainer.Diverged, trainer.OutOfMemory, hooks.DiskFull, runstate.LeaseLost) as e:
    if attempt:
      attempt.end("failed", str(e))
    print(f"error: {e}", file=sys.stderr)
    return None
  except BaseException as e:
    if attempt:
      attempt.end("preempted" if isinstance(e, KeyboardInterrupt) else "failed",
                  first_line(e))
    raise
  if attempt:
    total = rundir.RunDir(workdir).record().train_steps if last else None
    stopped = bool(last.get("preempted")) and last["step"] != total  # a stop at the end finished
    attempt.end("preempted" if stopped else "finished", last.get("signal", "") if stopped else "")
  return last

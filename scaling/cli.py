"""`scaling COMMAND ...`: a thin dispatcher. Each command's module is imported only when it runs.

Bad input anywhere raises `InputError`; here it becomes one line on stderr and exit code 2.
"""

import logging
import signal
import sys

from scaling.errors import InputError

USAGE = """usage: scaling COMMAND [ARGS...]

commands:
  demo    an isoFLOP sweep on this machine, fitted: scaling demo [--workdir runs/demo]
  train   train one model: scaling train --config configs/tiny.py --workdir DIR [--config.KEY=VALUE ...]
  sweep   plan and train a sweep: scaling sweep --config configs/sweeps/isoflop_tiny.py --workdir DIR [--dry-run] [--executor ray]
  runs    where each run of a sweep stands: scaling runs DIR [--json]
  fit     fit a scaling law: scaling fit --data POINTS.csv|DIR [--law ...] [--approach ...]
  plot    draw figures: scaling plot DIR [--out OUTDIR] [--fit REPORT.json ...]
  launch  several processes: scaling launch local|tpu [OPTIONS] -- scaling train|sweep ...
  generate  sample text from a trained run: scaling generate --workdir DIR --prompt TEXT [--max-tokens N ...]
  bench   speed and MFU, side by side with PyTorch: scaling bench --config configs/tiny.py [--json]
  compile  the train step compiled for a TPU slice, its memory and cost: scaling compile --config F --topology v5p-32 [--json]
  tokenizer  train a SentencePiece model: scaling tokenizer train --source ... --vocab-size N --out tok.model
"""


TRAIN_USAGE = """usage: scaling train --config FILE --workdir DIR [--config.KEY=VALUE ...]

  --config FILE        a train config (configs/tiny.py; every key, its default and meaning in
                       configs/base.py)
  --workdir DIR        run.json, metrics.jsonl, checkpoints/, tensorboard/; the same DIR resumes
  --config.KEY=VALUE   override any key, e.g. --config.model.d_model=128 --config.train_steps=500

exit codes: 0 trained (or already finished), 1 diverged or out of memory, 2 bad input (nothing
written), 130 stopped by SIGINT (Ctrl-C) and 143 by SIGTERM, each after saving a checkpoint from
which the same command resumes.
"""


def signal_exit_code(name: str) -> int:
  """128 + the signal's number, as a shell reports a process the signal ended: SIGINT 130, SIGTERM
  143; so a wrapper tells a run stopped (and saved) from one that finished."""
  return 128 + signal.Signals[name]


def train(argv: list[str]) -> int:
  if any(a in ("-h", "--help") for a in argv):
    print(TRAIN_USAGE, end="")
    return 0
  from scaling import config_file
  from scaling.train import trainer

  config, workdir = config_file.load(argv, prog="scaling train", reference="configs/base.py")
  if "sweep" in config and "base" in config:
    raise InputError("scaling train: --config is a sweep config (it has sweep.* and base.* keys); "
                     "run it with scaling sweep")

  try:
    last = trainer.train(config, workdir)
  except (trainer.Diverged, trainer.OutOfMemory) as e:
    print(f"error: {e}", file=sys.stderr)
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


def tokenizer(argv: list[str]) -> int:
  from scaling.data import tokenizer_cli

  return tokenizer_cli.main(argv)


def demo(argv: list[str]) -> int:
  from scaling import demo as demo_lib

  return demo_lib.main(argv)


def sweep(argv: list[str]) -> int:
  from scaling.sweep import cli as sweep_cli

  return sweep_cli.main(argv)


def runs(argv: list[str]) -> int:
  from scaling.sweep import runs_cli

  return runs_cli.main(argv)


def plot(argv: list[str]) -> int:
  from scaling.plots import cli as plots_cli

  return plots_cli.main(argv)


def bench(argv: list[str]) -> int:
  from scaling.bench import cli as bench_cli

  return bench_cli.main(argv)


def generate(argv: list[str]) -> int:
  from scaling.sample import cli as sample_cli

  return sample_cli.main(argv)


def launch(argv: list[str]) -> int:
  from scaling.launch import cli as launch_cli

  return launch_cli.main(argv)


def compile_(argv: list[str]) -> int:
  from scaling.compile import cli as compile_cli

  return compile_cli.main(argv)


def fit(argv: list[str]) -> int:
  from scaling.fit import cli as fit_cli

  return fit_cli.main(argv)


COMMANDS = {"demo": demo, "train": train, "sweep": sweep, "runs": runs, "fit": fit, "plot": plot,
            "launch": launch, "tokenizer": tokenizer, "bench": bench, "generate": generate,
            "compile": compile_}


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  if not argv or argv[0] in ("-h", "--help"):
    print(USAGE, end="")
    return 0 if argv else 2
  command, rest = argv[0], argv[1:]
  # Libraries below (orbax, absl) log their own view of a failure; the CLI reports it as one line.
  logging.getLogger("absl").setLevel(logging.CRITICAL)
  if command not in COMMANDS:
    print(f"error: unknown command {command!r} (commands: {', '.join(COMMANDS)})", file=sys.stderr)
    return 2
  try:
    return COMMANDS[command](rest)
  except InputError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:  # Ctrl-C outside a training loop (which saves and exits 130 itself)
    print(f"interrupted: scaling {command} stopped by Ctrl-C", file=sys.stderr)
    return signal_exit_code("SIGINT")


if __name__ == "__main__":
  sys.exit(main())

"""`scaling COMMAND ...`: one table from command to the module that runs it.

Each command is a module with `main(argv) -> exit code`, imported only when that command runs, so
`scaling fit` or `scaling runs` never pays for importing JAX. Bad input anywhere raises
`InputError`; here it becomes one line on stderr and exit code 2.
"""

import importlib
import logging
import signal
import sys

from scaling.errors import InputError

# name -> (module with main(argv), what `scaling --help` says of it), in the order --help lists them.
COMMANDS = {
    "demo": ("scaling.demo",
             "an isoFLOP sweep on this machine, fitted: scaling demo [--workdir runs/demo]"),
    "train": ("scaling.train.cli",
              "train one model: scaling train --config configs/tiny.py --workdir DIR [--config.KEY=VALUE ...]"),
    "sweep": ("scaling.sweep.cli",
              "plan and train a sweep: scaling sweep --config configs/sweeps/isoflop_tiny.py --workdir DIR [--dry-run] [--executor ray]"),
    "runs": ("scaling.sweep.runs_cli",
             "where each run of a sweep stands: scaling runs DIR [--json]"),
    "fit": ("scaling.fit.cli",
            "fit a scaling law: scaling fit --data POINTS.csv|DIR [--law ...] [--approach ...]"),
    "plot": ("scaling.plots.cli",
             "draw figures: scaling plot DIR [--out OUTDIR] [--fit REPORT.json ...]"),
    "launch": ("scaling.launch.cli",
               "several processes: scaling launch local|tpu [OPTIONS] -- scaling train|sweep ..."),
    "generate": ("scaling.sample.cli",
                 "sample text from a trained run: scaling generate --workdir DIR --prompt TEXT [--max-tokens N ...]"),
    "bench": ("scaling.bench.cli",
              "speed and MFU, side by side with PyTorch: scaling bench --config configs/tiny.py [--json]"),
    "compile": ("scaling.compile.cli",
                "the train step compiled for a TPU slice, its memory and cost: scaling compile --config F --topology v5p-32 [--json]"),
    "data": ("scaling.data.prepare_cli",
             "tokenize a corpus once into shards: scaling data prepare --source parquet:GLOB|jsonl:GLOB|text:GLOB --tokenizer bytes|spm:PATH --out DIR"),
    "export": ("scaling.export.cli",
               "a run as a Hugging Face model directory: scaling export --workdir DIR --out HF_DIR [--step N]"),
    "tokenizer": ("scaling.data.tokenizer_cli",
                  "train a SentencePiece model: scaling tokenizer train --source ... --vocab-size N --out tok.model"),
}
_WIDTH = max(map(len, COMMANDS))
USAGE = "usage: scaling COMMAND [ARGS...]\n\ncommands:\n" + "".join(
    f"  {name.ljust(_WIDTH)}  {help_}\n" for name, (_, help_) in COMMANDS.items())


def signal_exit_code(name: str) -> int:
  """128 + the signal's number, as a shell reports a process the signal ended: SIGINT 130, SIGTERM
  143; so a wrapper tells a run stopped (and saved) from one that finished."""
  return 128 + signal.Signals[name]


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
  return run(lambda args: importlib.import_module(COMMANDS[command][0]).main(args), rest, command)


def run(entry_point, argv: list[str], command: str | None = None) -> int:
  """Runs a command's `main(argv)` as `scaling COMMAND` does, also for `python -m` of a command's
  module: bad input (`InputError`) becomes one `error: ...` line on stderr and exit status 2, Ctrl-C
  outside a training loop (which saves and exits 130 itself) one line and 130. `command` names it
  in that line (default: the command whose module defines `entry_point`)."""
  if command is None:
    modules = {module: name for name, (module, _) in COMMANDS.items()}
    command = modules.get(entry_point.__module__, entry_point.__module__)
  try:
    return entry_point(argv)
  except InputError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(f"interrupted: scaling {command} stopped by Ctrl-C", file=sys.stderr)
    return signal_exit_code("SIGINT")


if __name__ == "__main__":
  sys.exit(main())

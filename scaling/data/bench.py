"""Input pipeline throughput alone, against what the trainer consumes.

  python -m scaling.data.bench --config configs/tiny.py [--config.KEY=VALUE ...]
      [--steps 200] [--repeats 5] [--train-steps 60]

The pipeline figure reads --steps batches through the iterator the trainer uses (same batches,
same prefetch thread) with nothing consuming them, --repeats times from a fresh iterator; it is
tokens (batch_size x seq_len per step, as the trainer counts them) per second, the median over the
repeats, the first batch of each (start-up) excluded. Loading the corpus is timed separately. Then,
unless --train-steps is 0, `scaling train` runs the same config for --train-steps steps in a
subprocess and its consumption is the median tokens_per_sec of its metrics.jsonl, the first interval
(compilation) excluded.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

from scaling import rundir
from scaling.data import batches, corpus
from scaling.errors import ArgumentParser, InputError


def _load_config(path: str, overrides: list[str]):
  """The config file with its `--config.KEY=VALUE` overrides applied (ml_collections' flags)."""
  from absl import flags
  from ml_collections import config_flags

  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", path, "config file", flag_values=values)
  try:
    values(["bench", f"--config={path}", *overrides])
  except Exception as e:  # a config file is user code: any failure in it is bad input
    raise InputError(f"--config {path}: {str(e).splitlines()[0]}") from None
  return values.config


def pipeline_tokens_per_sec(data_corpus: corpus.Corpus, config, steps: int) -> float:
  """Tokens/s of `steps` train batches read after the first one."""
  dataset = batches.train_batches(
      data_corpus.train, seq_len=config.model.seq_len, global_batch_size=config.batch_size,
      seed=config.seed)
  iterator = batches.iterate_from(dataset, 0)
  next(iterator)
  start = time.perf_counter()
  for _ in range(steps):
    next(iterator)
  elapsed = time.perf_counter() - start
  iterator.close()
  return steps * config.batch_size * config.model.seq_len / elapsed


def trainer_tokens_per_sec(config_path: str, overrides: list[str], config, steps: int) -> float:
  """Median tokens_per_sec of a `scaling train` run of `steps` steps, compilation excluded."""
  with tempfile.TemporaryDirectory() as workdir:
    command = [sys.executable, "-m", "scaling.cli", "train", "--config", config_path, *overrides,
               "--workdir", workdir, f"--config.train_steps={steps}",
               f"--config.warmup_steps={min(config.warmup_steps, steps - 1)}",
               "--config.train_tokens=0", "--config.progress=false"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    rows = rundir.RunDir(workdir).read_metrics()
  if len(rows) < 2:
    raise InputError(f"--train-steps {steps}: fewer than two log intervals (log_every "
                     f"{config.log_every}); train longer")
  return statistics.median(row["tokens_per_sec"] for row in rows[1:])


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  parser = ArgumentParser(prog="python -m scaling.data.bench", description=__doc__.split("\n")[0])
  parser.add_argument("--config", default="configs/tiny.py", help="ml_collections config file")
  parser.add_argument("--steps", type=int, default=200, help="batches per pipeline measurement")
  parser.add_argument("--repeats", type=int, default=5, help="pipeline measurements (median)")
  parser.add_argument("--train-steps", type=int, default=60,
                      help="steps of `scaling train` to measure consumption; 0 = skip")
  args, overrides = parser.parse_known_args(argv)
  unknown = [a for a in overrides if not a.startswith("--config.")]
  if unknown:
    raise InputError(f"python -m scaling.data.bench: unrecognized arguments: {' '.join(unknown)}")
  if not os.path.isfile(args.config):
    raise InputError(f"--config {args.config}: no such file")
  config = _load_config(args.config, overrides)

  start = time.perf_counter()
  data_corpus = corpus.load_corpus(config.data)
  print(f"corpus: {config.data.source}, tokenizer {data_corpus.tokenizer.identity['kind']} "
        f"(vocab {data_corpus.tokenizer.vocab_size}), loaded in {time.perf_counter() - start:.1f} s")
  rates = [pipeline_tokens_per_sec(data_corpus, config, args.steps) for _ in range(args.repeats)]
  pipeline = statistics.median(rates)
  print(f"input pipeline: {pipeline:,.0f} tokens/s (median of {args.repeats} x {args.steps} "
        f"batches of {config.batch_size} x {config.model.seq_len}; "
        f"range {min(rates):,.0f}-{max(rates):,.0f})")
  if args.train_steps:
    trainer = trainer_tokens_per_sec(args.config, overrides, config, args.train_steps)
    print(f"trainer consumes: {trainer:,.0f} tokens/s (median over the log intervals of "
          f"{args.train_steps} steps)")
    print(f"pipeline / trainer: {pipeline / trainer:,.1f}x")
  return 0


if __name__ == "__main__":
  try:
    sys.exit(main())
  except InputError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)

"""`scaling data prepare --source parquet:GLOB|jsonl:GLOB|text:GLOB [--text-field text]
--tokenizer bytes|spm:PATH --out DIR [--validation-percent 5] [--shard-tokens N]
[--invalid-utf8 error|replace|skip]`: tokenize a corpus once into shards that
`data.source=tokens:DIR` trains from (scaling/data/prepare.py)."""

import time

from scaling import checks
from scaling.data import documents, prepare
from scaling.data.tokenizer import load_tokenizer
from scaling.errors import ArgumentParser, InputError


def _parser() -> ArgumentParser:
  parser = ArgumentParser(prog="scaling data", description=__doc__.split(":", 1)[1].strip())
  commands = parser.add_subparsers(dest="command", required=True)
  p = commands.add_parser("prepare", help="tokenize documents into shards and a manifest")
  p.add_argument("--source", required=True,
                 help="parquet:GLOB | jsonl:GLOB (.jsonl, .jsonl.gz, .jsonl.zst) | text:GLOB; "
                      "local or gs://, ** recursive")
  p.add_argument("--text-field", default="text", help="jsonl/parquet: the field that is one document")
  p.add_argument("--tokenizer", required=True, help="bytes | spm:PATH, as data.tokenizer")
  p.add_argument("--out", required=True, help="the directory to write (local or gs://)")
  p.add_argument("--validation-percent", type=int, default=5,
                 help="documents held out, by crc32 of their name, as data.validation_percent")
  p.add_argument("--shard-tokens", type=int, default=1 << 26,
                 help="tokens per shard, cut at a document boundary (default 67,108,864)")
  p.add_argument("--invalid-utf8", choices=documents.POLICIES, default="error",
                 help="a document that is not UTF-8: error (the default), replace (U+FFFD), skip")
  p.add_argument("--no-progress", action="store_true", help="no progress bar")
  return parser


def main(argv: list[str]) -> int:
  args = _parser().parse_args(argv)
  checks.number(args.validation_percent, "--validation-percent", integer=True, at_least=0,
                at_most=100)
  checks.number(args.shard_tokens, "--shard-tokens", integer=True, at_least=1)
  if not args.text_field:
    raise InputError("--text-field must not be empty")
  documents.parse(args.source)
  tokenizer = load_tokenizer(args.tokenizer)
  request = prepare.Request(source=args.source, text_field=args.text_field,
                            tokenizer=args.tokenizer, validation_percent=args.validation_percent,
                            shard_tokens=args.shard_tokens, invalid_utf8=args.invalid_utf8)
  started = time.perf_counter()
  try:
    manifest, tokenized = prepare.prepare(request, tokenizer, args.out,
                                          progress=not args.no_progress)
  except OSError as e:  # sources' read errors are InputErrors already: this is writing --out
    raise InputError(f"--out {args.out}: cannot write ({e.strerror or e})") from None
  seconds = time.perf_counter() - started
  splits = manifest["splits"]
  tokens = {s: sum(shard["tokens"] for shard in splits[s]["shards"]) for s in prepare.SPLITS}
  skipped = sum(splits[s]["skipped"] for s in prepare.SPLITS)
  print(f"{args.out}: {manifest['documents']:,} documents ({skipped:,} skipped), "
        f"{tokens['train']:,} train and {tokens['validation']:,} validation tokens in "
        f"{sum(len(splits[s]['shards']) for s in prepare.SPLITS)} shards; "
        + (f"{tokenized / max(seconds, 1e-9):,.0f} tokens/s this run; " if tokenized else
           "already prepared, nothing to do; ") +
        f"train with --config.data.source=tokens:{args.out} "
        f"--config.data.tokenizer={args.tokenizer}", flush=True)
  return 0

"""`scaling tokenizer train`: a SentencePiece model trained on the train split of any data source.

  scaling tokenizer train --source stdlib --vocab-size 4096 --out stdlib.model
  scaling tokenizer train --source tfds:c4/en:3.1.0 --data-dir gs://BUCKET/tfds \\
      --vocab-size 32000 --out c4.model
  scaling train --config configs/tiny.py --workdir DIR --config.data.tokenizer=spm:stdlib.model

Only the documents a run would train on are used (the same file split, or the TFDS train split), so
the tokenizer never sees validation text.
"""

import itertools
import os
from collections.abc import Iterator

from etils import epath

from scaling import storage
from scaling.data import corpus, sources, tfds_source, tokenizer
from scaling.errors import ArgumentParser, InputError


def training_documents(source: str, *, glob: str = "", validation_percent: int = 5,
                       data_dir: str = "", text_feature: str = "text",
                       split: str = "train") -> Iterator[bytes]:
  """The train documents of a source, in its order (file names; the TFDS split's file order)."""
  if tfds_source.is_tfds(source):
    texts = tfds_source.open_splits(source, data_dir=data_dir, text_feature=text_feature,
                                    splits={"--split": split}).documents["--split"]
    return (texts[i] for i in range(len(texts)))
  corpus.DataConfig(source=source, glob=glob, validation_percent=validation_percent)
  _, documents = sources.read_documents(source, glob)
  return (content for name, content in documents
          if not corpus.is_validation(name, validation_percent))


def _parser() -> ArgumentParser:
  parser = ArgumentParser(prog="scaling tokenizer", description=__doc__.split("\n")[0])
  commands = parser.add_subparsers(dest="command", required=True)
  train = commands.add_parser("train", help="train a SentencePiece model")
  train.add_argument("--source", required=True,
                     help="stdlib | text | tfds:NAME[/CONFIG][:VERSION], as data.source")
  # Source options default to None, so that one given to a source that does not read it is
  # refused rather than ignored.
  train.add_argument("--glob", help="for --source text: files to read, as data.glob")
  train.add_argument("--validation-percent", type=int,
                     help="stdlib/text: files held out (not trained on), as data.validation_percent "
                          "(default 5)")
  train.add_argument("--data-dir", help="tfds: the TFDS data dir, as data.data_dir")
  train.add_argument("--text-feature", help="tfds: as data.text_feature (default text)")
  train.add_argument("--split", help="tfds: the split to read, as data.train_split (default train)")
  train.add_argument("--vocab-size", type=int, required=True, help="pieces, specials included")
  train.add_argument("--model-type", choices=("unigram", "bpe"), default="unigram")
  train.add_argument("--max-documents", type=int, default=1_000_000,
                     help="read at most this many documents (default 1,000,000)")
  train.add_argument("--out", required=True, help="where to write the model (local or gs://)")
  return parser


# Which source kinds read each source option.
_READ_BY = {"--glob": ("text",), "--validation-percent": ("stdlib", "text"),
            "--data-dir": ("tfds",), "--text-feature": ("tfds",), "--split": ("tfds",)}


def _check_source_options(args) -> None:
  """An option the source does not read is refused, not ignored; then the defaults are filled."""
  kind = "tfds" if tfds_source.is_tfds(args.source) else args.source
  for option, kinds in _READ_BY.items():
    if getattr(args, option[2:].replace("-", "_")) is not None and kind not in kinds:
      raise InputError(f"{option} does not apply to --source {args.source} (only to "
                       f"{' and '.join('tfds:...' if k == 'tfds' else k for k in kinds)})")
  args.glob = args.glob or ""
  args.validation_percent = 5 if args.validation_percent is None else args.validation_percent
  args.data_dir = args.data_dir or ""
  args.text_feature = args.text_feature or "text"
  args.split = args.split or "train"


def _check_out(out: str) -> None:
  """Where the model goes, checked before any training: a file in a directory that exists (or a
  usable bucket), not a directory itself."""
  if storage.is_remote(out):
    storage.check_writable(out, "--out")  # an object store has no directories to check
  elif not epath.Path(out).parent.is_dir():
    raise InputError(f"--out {out}: directory {os.fspath(epath.Path(out).parent)} does not exist")
  if storage.is_dir(out):
    raise InputError(f"--out {out} is a directory; name the model file, such as "
                     f"{storage.join(out, 'tok.model')}")


def main(argv: list[str]) -> int:
  args = _parser().parse_args(argv)
  for flag, value in (("--vocab-size", args.vocab_size), ("--max-documents", args.max_documents)):
    if value <= 0:
      raise InputError(f"{flag} must be positive, got {value}")
  _check_source_options(args)
  _check_out(args.out)
  documents = training_documents(
      args.source, glob=args.glob, validation_percent=args.validation_percent,
      data_dir=args.data_dir, text_feature=args.text_feature, split=args.split)
  first = next(documents, None)
  if first is None:
    held_out = (f" (--validation-percent {args.validation_percent} holds them all out)"
                if not tfds_source.is_tfds(args.source) else "")
    raise InputError(f"--source {args.source}: no training documents left{held_out}")
  documents = itertools.chain([first], documents)
  read = {"documents": 0, "bytes": 0}

  def counted(documents):
    for document in documents:
      read["documents"] += 1
      read["bytes"] += len(document)
      yield document

  model = tokenizer.train_sentencepiece(
      counted(itertools.islice(documents, args.max_documents)), vocab_size=args.vocab_size,
      model_type=args.model_type)
  storage.write_bytes(args.out, model)
  trained = tokenizer.SentencePieceTokenizer(model, args.out)
  print(f"{args.out}: {args.model_type} model, vocab {trained.vocab_size}, eos (document separator) "
        f"id {trained.eos_id}; trained on {read['documents']:,} documents ({read['bytes']:,} bytes) "
        f"of {args.source}; use --config.data.tokenizer=spm:{args.out}")
  return 0

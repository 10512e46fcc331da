"""The corpus: documents from a source, split, tokenized into one train and one validation split.

Sources (`data.source`):
  - "stdlib" / "text": files read into memory; the split is a pure function of each document's
    relative path (crc32 mod 100), so it is the same on every machine and a file keeps its split when
    other files are added or removed; each split is one token stream.
  - "tokens:DIR": shards written once by `scaling data prepare` (scaling/data/prepare.py), read by
    range (scaling/data/token_shards.py): each split is a stream as above, never loaded whole; the
    split, the tokenizer and the fingerprint are the manifest's.
  - "tfds:NAME[:VERSION]": a prepared TFDS dataset read lazily (scaling/data/tfds_source.py); its own
    splits are used and each split is a grain `MapDataset` of documents tokenized on access.
The fingerprint identifies what is trained on (documents and tokenizer) and goes into the run
metadata; a workdir refuses to resume on another one.
"""

import dataclasses
import hashlib
import os
import zlib
from collections.abc import Mapping
from typing import Any

import grain

from scaling import checks
from scaling.data import prepare, sources, tfds_source, token_shards
from scaling.data.batches import Split
from scaling.data.tokenizer import Tokenizer, load_tokenizer
from scaling.errors import InputError


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """The `config.data` section."""

  source: str = "stdlib"  # "stdlib" | "text" (files by `glob`) | "tfds:NAME[/CONFIG][:VERSION]" | "tokens:DIR"
  glob: str = ""  # for source "text": a glob pattern, `**` recursive
  validation_percent: int = 5  # stdlib/text: percent of files (by path hash) held out for evaluation
  data_dir: str = ""  # tfds: TFDS data dir, local or gs://; "" = $TFDS_DATA_DIR or the TFDS default
  text_feature: str = "text"  # tfds: the text feature that is one document
  train_split: str = "train"  # tfds: split to train on (TFDS split syntax, e.g. "train[:90%]")
  validation_split: str = "validation"  # tfds: split to evaluate on (lm1b has "test")
  tokenizer: str = "bytes"  # "bytes" (vocab 256) | "spm:PATH" (a SentencePiece model)

  def __post_init__(self):
    for key in ("source", "glob", "data_dir", "text_feature", "train_split", "validation_split",
                "tokenizer"):
      if not isinstance(getattr(self, key), str):
        raise InputError(f"data.{key} must be a string, got {getattr(self, key)!r}")
    if tfds_source.is_tfds(self.source):
      tfds_source.parse(self.source)
      for key in ("text_feature", "train_split", "validation_split"):
        if not getattr(self, key):
          raise InputError(f"data.{key} must not be empty for data.source={self.source}")
    elif token_shards.is_tokens(self.source):
      token_shards.directory(self.source)
    elif self.source not in sources.SOURCES:
      raise InputError(f"data.source must be one of {', '.join(sources.SOURCES)} or "
                       f"tfds:NAME[:VERSION] or tokens:DIR, got {self.source!r}")
    if self.source == "text" and not self.glob:
      raise InputError("data.glob: a pattern is required for data.source='text'")
    checks.number(self.validation_percent, "data.validation_percent", integer=True, at_least=0,
                  at_most=100)

  @classmethod
  def from_dict(cls, values: Mapping[str, Any]) -> "DataConfig":
    """Builds from a mapping (e.g. `config.data`), naming any unknown key."""
    return checks.dataclass_from(cls, values, "data")


@dataclasses.dataclass(frozen=True, eq=False)
class Corpus:
  """The two splits and what they were made from.

  A split is a token stream (uint8 for bytes, uint16/int32 for SentencePiece; documents separated by
  `tokenizer.eos_id`) for in-memory sources, or a `MapDataset` of tokenized documents (each ending in
  eos) for tfds. `data.train_batches` and `data.eval_batches` take either.
  """

  train: Split
  validation: Split
  fingerprint: dict[str, Any]
  tokenizer: Tokenizer


def is_validation(name: str, validation_percent: int) -> bool:
  """Whether the document at relative path `name` is held out."""
  return zlib.crc32(os.fsencode(name)) % 100 < validation_percent


def load_corpus(data_config: Mapping[str, Any] | DataConfig) -> Corpus:
  """Reads, splits and tokenizes the configured source (tfds: opens it; documents are read later)."""
  config = data_config if isinstance(data_config, DataConfig) else DataConfig.from_dict(data_config)
  tokenizer = load_tokenizer(config.tokenizer)
  if tfds_source.is_tfds(config.source):
    splits = tfds_source.open_splits(
        config.source, data_dir=config.data_dir, text_feature=config.text_feature,
        splits={"data.train_split": config.train_split,
                "data.validation_split": config.validation_split})
    fingerprint = {**splits.fingerprint, "train_split": config.train_split,
                   "validation_split": config.validation_split, "tokenizer": tokenizer.identity,
                   "sha256": _with_tokenizer(splits.fingerprint["sha256"], tokenizer)}
    train, validation = (
        grain.MapDataset.source(splits.documents[key]).map(tokenizer.encode_document)
        for key in ("data.train_split", "data.validation_split"))
    return Corpus(train=train, validation=validation, fingerprint=fingerprint, tokenizer=tokenizer)
  if token_shards.is_tokens(config.source):
    return _load_tokens(config, tokenizer)
  root, documents = sources.read_documents(config.source, config.glob)
  held_out = [is_validation(name, config.validation_percent) for name, _ in documents]
  train = tokenizer.encode_documents(c for (_, c), v in zip(documents, held_out) if not v)
  validation = tokenizer.encode_documents(c for (_, c), v in zip(documents, held_out) if v)
  fingerprint = {
      "source": config.source,
      "root": root,
      "files": len(documents),
      "bytes": sum(len(content) for _, content in documents),
      "sha256": _with_tokenizer(_sha256(documents), tokenizer),
      "validation_percent": config.validation_percent,
      "train_tokens": int(train.size),
      "validation_tokens": int(validation.size),
      "tokenizer": tokenizer.identity,
  }
  return Corpus(train=train, validation=validation, fingerprint=fingerprint, tokenizer=tokenizer)


def _load_tokens(config: DataConfig, tokenizer: Tokenizer) -> Corpus:
  """A prepared directory's two streams; `data.tokenizer` must be the one it was prepared with."""
  root = token_shards.directory(config.source)
  manifest, train, validation = token_shards.open_splits(root)
  recorded, wanted = manifest["tokenizer"], prepare.tokenizer_record(tokenizer)
  if recorded["sha256"] != wanted["sha256"]:
    raise InputError(f"data.tokenizer={config.tokenizer} is not the tokenizer {root} was prepared "
                     f"with ({recorded['kind']}{' ' + recorded['path'] if 'path' in recorded else ''}"
                     f", sha256 {recorded['sha256'][:12]})")
  fingerprint = {
      "source": config.source,
      "root": root,
      "prepared_from": manifest["source"],
      "files": len(manifest["files"]),
      "bytes": sum(f["bytes"] for f in manifest["files"]),
      "documents": manifest["documents"],
      "sha256": manifest["sha256"],
      "validation_percent": manifest["validation_percent"],
      "train_tokens": train.size,
      "validation_tokens": validation.size,
      "tokenizer": tokenizer.identity,
  }
  return Corpus(train=train, validation=validation, fingerprint=fingerprint, tokenizer=tokenizer)


def _with_tokenizer(documents_sha256: str, tokenizer: Tokenizer) -> str:
  """The documents' hash, combined with the tokenizer model's for anything but bytes (whose ids are
  the documents' bytes), so a changed model is a changed corpus."""
  if tokenizer.identity["kind"] == "bytes":
    return documents_sha256
  return hashlib.sha256(f"{documents_sha256}:{tokenizer.identity['sha256']}".encode()).hexdigest()


def _sha256(documents: list[tuple[str, bytes]]) -> str:
  """Hash of every (name, content) in order; lengths are hashed so no two corpora collide by framing."""
  digest = hashlib.sha256()
  for name, content in documents:
    encoded = os.fsencode(name)
    digest.update(len(encoded).to_bytes(8, "little") + encoded + len(content).to_bytes(8, "little"))
    digest.update(content)
  return digest.hexdigest()

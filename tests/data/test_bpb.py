"""Bits per byte: the tokenizers' bytes per token (scaling/data/tokenizer.py) and the eval rows'
`eval_bpb` (scaling/train/hooks.py's Evaluator; for the byte tokenizer, tests/train/test_trainer.py
checks bpb = nats / ln 2 on its baseline run)."""

import math

import jax
import numpy as np
import pytest

from scaling.data import ByteTokenizer, load_corpus, load_tokenizer
from scaling.rundir import read_metrics
from scaling.train import trainer
from small_runs import small_config


def test_sentencepiece_bytes_per_token_add_up_to_the_documents_bytes(spm_model, text_corpus):
  tokenizer = load_tokenizer(f"spm:{spm_model}")
  table_V = tokenizer.bytes_per_token()
  documents = [b"def f(x):\n    return  x  # two spaces\n", "naïve — 東京 🙂\t\n".encode()]
  stream = tokenizer.encode_documents(documents)
  # Each document's bytes, plus one for its eos: what the byte tokenizer counts for the same text.
  assert table_V[stream].sum() == sum(len(d) + 1 for d in documents)
  assert ByteTokenizer().bytes_per_token()[ByteTokenizer().encode_documents(documents)].sum() == (
      sum(len(d) + 1 for d in documents))


def _eval_rows(config, workdir):
  trainer.train(config, str(workdir), devices=jax.devices()[:1])
  return [row for row in read_metrics(str(workdir)) if "eval_loss" in row]


def test_bpb_is_nats_times_tokens_over_bytes_for_sentencepiece(spm_model, text_corpus, tmp_path):
  config = small_config(text_corpus, train_steps=2, warmup_steps=1, **{"data.tokenizer": f"spm:{spm_model}"})
  rows = _eval_rows(config, tmp_path)
  # The evaluated windows, as the trainer picks them: count their target tokens and bytes.
  from scaling.data import eval_batches

  corpus = load_corpus(config.data)
  batches = list(eval_batches(corpus.validation, seq_len=32, global_batch_size=16,
                              num_batches=config.eval_batches))
  targets = np.concatenate([b[:, 1:].ravel() for b in batches])
  tokens_per_byte = targets.size / corpus.tokenizer.bytes_per_token()[targets].sum()
  assert 1 / 6 < tokens_per_byte < 1  # SentencePiece pieces are several bytes on average
  for row in rows:
    assert row["eval_bpb"] == pytest.approx(
        row["eval_loss"] * tokens_per_byte / math.log(2), rel=1e-5)

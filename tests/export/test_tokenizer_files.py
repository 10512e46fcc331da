"""scaling/export/tokenizer_files.py: AutoTokenizer encodes and decodes as our tokenizers do."""

import glob
import os
import sysconfig

import pytest

from scaling.data.tokenizer import ByteTokenizer, SentencePieceTokenizer, train_sentencepiece
from scaling.export import tokenizer_files

transformers = pytest.importorskip("transformers")

TEXTS = ("def f(x):\n    return  x  # two spaces\n", "naïve — 東京 🙂\t\n\n", "  leading",
         "trailing  ", "Ā is text, not the separator", "</s><unk> are text too")


def _documents() -> list[bytes]:
  root = sysconfig.get_paths()["stdlib"]
  return [open(path, "rb").read() for path in sorted(glob.glob(os.path.join(root, "json", "*.py")))]


@pytest.fixture(params=["bytes", "bpe", "unigram"])
def tokenizers(request, tmp_path):
  """(ours, AutoTokenizer loaded from the files written for it)."""
  if request.param == "bytes":
    ours, proto = ByteTokenizer(), None
  else:
    proto = train_sentencepiece(_documents(), vocab_size=400, model_type=request.param)
    ours = SentencePieceTokenizer(proto, "tok.model")
  for name, content in tokenizer_files.files(ours, proto).items():
    (tmp_path / name).write_bytes(content)
  return ours, transformers.AutoTokenizer.from_pretrained(str(tmp_path))


def test_ids_are_eos_then_ours_and_decode_gives_the_text_back(tokenizers):
  ours, theirs = tokenizers
  assert theirs.eos_token_id == ours.eos_id
  for text in (*TEXTS, _documents()[0].decode()):
    ids = theirs(text)["input_ids"]
    assert ids == [ours.eos_id, *ours.encode(text).tolist()]
    assert theirs.decode(ids, skip_special_tokens=True) == text

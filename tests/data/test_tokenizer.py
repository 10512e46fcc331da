import os
import re

import numpy as np
import pytest

from scaling import cli
from scaling.data import tokenizer_cli
from scaling.data.tokenizer import ByteTokenizer, SentencePieceTokenizer, load_tokenizer
from scaling.errors import InputError


def test_round_trip_ascii_and_unicode():
  tokenizer = ByteTokenizer()
  for text in ("def f(x):\n  return x\n", "naïve — 東京 🙂", ""):
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int32
    assert tokenizer.decode(ids) == text


def test_ids_are_utf8_bytes():
  tokenizer = ByteTokenizer()
  assert tokenizer.vocab_size == 256 and tokenizer.eos_id == 0
  np.testing.assert_array_equal(tokenizer.encode("é"), [0xC3, 0xA9])


def test_decode_replaces_a_cut_character():
  tokenizer = ByteTokenizer()
  assert tokenizer.decode([ord("a"), 0xC3]) == "a\ufffd"


def test_decode_rejects_ids_outside_the_vocabulary():
  with pytest.raises(ValueError, match="256"):
    ByteTokenizer().decode([65, 256])


def test_encode_documents_ends_each_document_with_eos():
  stream = ByteTokenizer().encode_documents([b"ab", b"", b"c"])
  assert stream.dtype == np.uint8
  assert stream.tobytes() == b"ab\0\0c\0"
  assert ByteTokenizer().encode_documents([]).size == 0


def test_encode_document_ends_with_eos():
  np.testing.assert_array_equal(ByteTokenizer().encode_document(b"ab"), [97, 98, 0])


def test_load_tokenizer_bytes_and_bad_specs(tmp_path):
  assert load_tokenizer("bytes") == ByteTokenizer()
  (tmp_path / "junk.model").write_bytes(b"not a model")
  for spec in ("wordpiece", "spm:", "spm:" + str(tmp_path / "missing.model"),
               "spm:" + str(tmp_path / "junk.model")):
    with pytest.raises(InputError, match=r"^data\.tokenizer"):
      load_tokenizer(spec)


def test_sentencepiece_round_trips_text_exactly(spm_model):
  tokenizer = load_tokenizer(f"spm:{spm_model}")
  assert isinstance(tokenizer, SentencePieceTokenizer)
  assert tokenizer.vocab_size == 512 and tokenizer.eos_id == 1
  for text in ("def f(x):\n    return  x  # two spaces\n", "naïve — 東京 🙂\t\n\n", ""):
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int32 and tokenizer.eos_id not in ids
    assert tokenizer.decode(ids) == text
  assert len(tokenizer.encode("import json\n")) < len("import json\n")
  with pytest.raises(ValueError, match="512"):
    tokenizer.decode([512])


def test_sentencepiece_documents_are_separated_by_its_eos(spm_model):
  tokenizer = load_tokenizer(f"spm:{spm_model}")
  documents = [b"import os\n", b"", "caf\u00e9\n".encode()]
  stream = tokenizer.encode_documents(documents)
  assert stream.dtype == np.uint16
  assert np.flatnonzero(stream == tokenizer.eos_id).size == 3 and stream[-1] == tokenizer.eos_id
  expected = np.concatenate([tokenizer.encode_document(d) for d in documents])
  np.testing.assert_array_equal(stream, expected)
  assert tokenizer.identity["sha256"] and tokenizer.identity["kind"] == "spm"


def test_tokenizer_cli_trains_on_any_source(tmp_path, tfds_dataset, no_network, capsys):
  out = tmp_path / "tfds.model"
  assert tokenizer_cli.main(["train", "--source", "tfds:scaling_test_text", "--data-dir",
                             tfds_dataset.data_dir, "--vocab-size", "278", "--out", str(out)]) == 0
  assert f"--config.data.tokenizer=spm:{out}" in capsys.readouterr().out
  assert load_tokenizer(f"spm:{out}").vocab_size == 278


@pytest.mark.parametrize("args, named", [
    (["train", "--source", "stdlib", "--vocab-size", "0", "--out", "x.model"], "--vocab-size"),
    (["train", "--source", "stdlib", "--vocab-size", "100", "--out", "/no/such/dir/x.model"],
     "--out"),
    (["train", "--source", "nope", "--vocab-size", "100", "--out", "x.model"], "data.source"),
    (["train", "--source", "text", "--vocab-size", "100", "--out", "x.model"], "data.glob"),
    (["train", "--vocab-size", "100"], "scaling tokenizer"),
    (["untrain"], "scaling tokenizer"),
])
def test_tokenizer_cli_bad_input_names_the_argument(args, named, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(InputError, match=re.escape(named)):
    tokenizer_cli.main(args)


@pytest.mark.parametrize("args, named", [
    (["--source", "stdlib", "--validation-percent", "100"],
     "--source stdlib: no training documents left (--validation-percent 100 holds them all out)"),
    (["--source", "stdlib", "--glob", "*.py"], "--glob does not apply to --source stdlib"),
    (["--source", "text", "--glob", "TEXT", "--split", "validation"],
     "--split does not apply to --source text (only to tfds:...)"),
    (["--source", "text", "--glob", "TEXT", "--data-dir", "/tmp"],
     "--data-dir does not apply to --source text"),
    (["--source", "tfds:c4/en", "--validation-percent", "10"],
     "--validation-percent does not apply to --source tfds:c4/en"),
    (["--source", "text", "--glob", "TEXT", "--out", "OUT_DIR"], "is a directory; name the model"),
])
def test_tokenizer_cli_refuses_before_training_and_leaves_nothing(args, named, tmp_path,
                                                                   text_corpus, capsys):
  (tmp_path / "models").mkdir()
  args = [{"TEXT": text_corpus, "OUT_DIR": str(tmp_path / "models")}.get(a, a) for a in args]
  out = [] if "--out" in args else ["--out", str(tmp_path / "models" / "tok.model")]
  assert cli.main(["tokenizer", "train", "--vocab-size", "300", "--max-documents", "20",
                   *out, *args]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and err.count("\n") == 1 and named in err, err
  assert os.listdir(tmp_path / "models") == []


def test_tokenizer_cli_vocabulary_too_large_for_the_text(tmp_path, text_corpus):
  with pytest.raises(InputError, match=r"^--vocab-size 1000000"):
    tokenizer_cli.main(["train", "--source", "text", "--glob", text_corpus, "--vocab-size",
                        "1000000", "--max-documents", "3", "--out", str(tmp_path / "x.model")])


def test_tokenizer_cli_writes_to_a_bucket(text_corpus, gcs_dir, capsys):
  out = f"{gcs_dir}/text.model"
  assert tokenizer_cli.main(["train", "--source", "text", "--glob", text_corpus, "--vocab-size",
                             "400", "--max-documents", "20", "--out", out]) == 0
  assert f"--config.data.tokenizer=spm:{out}" in capsys.readouterr().out
  assert load_tokenizer(f"spm:{out}").vocab_size == 400
  with pytest.raises(InputError, match="bucket gs://no-such-bucket does not exist"):
    tokenizer_cli.main(["train", "--source", "text", "--glob", text_corpus, "--vocab-size", "300",
                        "--out", "gs://no-such-bucket/x.model"])

"""`scaling data prepare` (scaling/data/prepare.py, documents.py) and `data.source=tokens:DIR`
(scaling/data/token_shards.py): shards and a manifest from parquet, jsonl and text; the tokens
source reads the batches the text source makes; resume; bad input is one line, exit 2."""

import gzip
import json
import os
import zlib

import jax
import numpy as np
import pytest

from scaling import cli, rundir, storage
from scaling.data import DataConfig, eval_batches, load_corpus, train_batches
from scaling.rundir import read_metrics
from scaling.train import trainer
from small_runs import small_config

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
zstandard = pytest.importorskip("zstandard")

DOCUMENTS = [f"doc {i}: " + " ".join(f"w{(i * 7 + j) % 50}" for j in range((i * 37) % 90)) + " naïve 東京"
             for i in range(200)]


def prepare(*args) -> int:
  return cli.main(["data", "prepare", "--no-progress", *args])


def manifest(out) -> dict:
  with open(os.path.join(out, "manifest.json")) as f:
    return json.load(f)


def stream(out, split: str) -> np.ndarray:
  m = manifest(out)
  return np.concatenate([np.fromfile(os.path.join(out, s["file"]), m["dtype"])
                         for s in m["splits"][split]["shards"]])


@pytest.fixture
def sources(tmp_path):
  """The same 200 documents as jsonl.gz (two files), jsonl.zst, parquet; and 40 text files."""
  lines = [json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(DOCUMENTS)]
  with gzip.open(tmp_path / "a.jsonl.gz", "wt", encoding="utf-8") as f:
    f.writelines(lines[:120])
  with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as f:
    f.writelines(lines[120:])
  (tmp_path / "c.jsonl.zst").write_bytes(
      zstandard.ZstdCompressor().compress("".join(lines).encode()))
  pq.write_table(pa.table({"text": DOCUMENTS, "id": list(range(200))}), tmp_path / "d.parquet",
                 row_group_size=64)
  (tmp_path / "text").mkdir()
  for i in range(40):
    (tmp_path / "text" / f"{i:02d}.txt").write_text("\n".join(DOCUMENTS[i * 5:i * 5 + 5]))
  return tmp_path


@pytest.mark.parametrize("source, files", [
    ("jsonl:{}/*.jsonl.gz", ["a.jsonl.gz", "b.jsonl.gz"]),
    ("jsonl:{}/*.jsonl.zst", ["c.jsonl.zst"]),
    ("parquet:{}/*.parquet", ["d.parquet"]),
])
def test_prepare_writes_each_splits_documents_then_eos_in_shards(sources, source, files, capsys):
  out = sources / "out"
  assert prepare("--source", source.format(sources), "--tokenizer", "bytes", "--out", str(out),
                 "--shard-tokens", "3000", "--validation-percent", "20") == 0
  assert "tokens/s" in capsys.readouterr().out
  m = manifest(out)
  assert m["documents"] == 200 and m["tokenizer"]["kind"] == "bytes" and m["dtype"] == "uint8"
  assert [f["name"] for f in m["files"]] == files
  assert [f["bytes"] for f in m["files"]] == [os.path.getsize(sources / f) for f in files]
  assert not os.path.exists(out / "progress.json")
  names = [f"{f}:{i}" for f, count in zip(files, [120, 80] if len(files) == 2 else [200])
           for i in range(count)]
  held_out = [zlib.crc32(n.encode()) % 100 < 20 for n in names]  # the text source's rule
  for split, wanted in (("train", False), ("validation", True)):
    expected = b"".join(d.encode() + b"\0" for d, v in zip(DOCUMENTS, held_out) if v == wanted)
    assert stream(out, split).tobytes() == expected
    shards = m["splits"][split]["shards"]
    assert len(shards) > 1 and all(s["tokens"] >= 3000 for s in shards[:-1])
    assert m["splits"][split]["documents"] == sum(v == wanted for v in held_out)


@pytest.mark.parametrize("tokenizer", ["bytes", "spm"])
def test_tokens_source_gives_the_text_sources_batches(sources, spm_model, tokenizer):
  spec = "bytes" if tokenizer == "bytes" else f"spm:{spm_model}"
  out = str(sources / "out")
  assert prepare("--source", f"text:{sources}/text/*.txt", "--tokenizer", spec, "--out", out,
                 "--shard-tokens", "500", "--validation-percent", "20") == 0
  text = load_corpus(DataConfig(source="text", glob=f"{sources}/text/*.txt",
                                validation_percent=20, tokenizer=spec))
  tokens = load_corpus(DataConfig(source=f"tokens:{out}", tokenizer=spec))
  assert tokens.fingerprint["sha256"] == manifest(out)["sha256"]
  np.testing.assert_array_equal(tokens.train.read(0, tokens.train.size), text.train)
  for process_index in (0, 1):  # two processes together read the one-process rows
    layout = dict(seq_len=16, global_batch_size=8, process_index=process_index, process_count=2)
    ours = iter(train_batches(tokens.train, seed=3, **layout))
    theirs = iter(train_batches(text.train, seed=3, **layout))
    for _ in range(5):
      np.testing.assert_array_equal(next(ours), next(theirs))
    np.testing.assert_array_equal(
        np.stack(list(eval_batches(tokens.validation, num_batches=2, **layout))),
        np.stack(list(eval_batches(text.validation, num_batches=2, **layout))))


def test_training_from_tokens_records_the_manifests_fingerprint(sources, text_corpus, tmp_path):
  out = str(sources / "out")
  assert prepare("--source", f"text:{text_corpus}", "--tokenizer", "bytes", "--out", out,
                 "--validation-percent", "20") == 0
  config = small_config(text_corpus, train_steps=2, warmup_steps=1,
                        **{"data.source": f"tokens:{out}", "data.glob": ""})
  trainer.train(config, str(tmp_path / "run"), devices=jax.devices()[:1])
  run = rundir.RunDir(str(tmp_path / "run")).read_run()
  assert run["corpus"]["sha256"] == manifest(out)["sha256"]
  assert "eval_loss" in read_metrics(str(tmp_path / "run"))[-1]


def test_a_killed_prepare_resumes_to_the_same_manifest(sources, monkeypatch):
  args = ["--source", f"jsonl:{sources}/*.jsonl.gz", "--tokenizer", "bytes",
          "--shard-tokens", "2000", "--validation-percent", "20"]
  assert prepare(*args, "--out", str(sources / "clean")) == 0
  write_bytes, writes = storage.write_bytes, []

  def killed_after_four_shards(path, data):
    if len(writes) == 4:
      raise KeyboardInterrupt  # as SIGINT arrives: between whole-file writes
    writes.append(path)
    write_bytes(path, data)

  monkeypatch.setattr(storage, "write_bytes", killed_after_four_shards)
  out = sources / "killed"
  assert prepare(*args, "--out", str(out)) == 130
  assert not os.path.exists(out / "manifest.json") and os.path.exists(out / "progress.json")
  assert prepare(*args, "--out", str(out), "--tokenizer", "spm:/nonexistent.model") == 2
  monkeypatch.setattr(storage, "write_bytes", write_bytes)
  assert prepare(*args, "--out", str(out)) == 0
  clean, resumed = manifest(sources / "clean"), manifest(out)
  clean.pop("seconds"), resumed.pop("seconds")
  assert resumed == clean
  assert prepare(*args, "--out", str(out)) == 0  # finished: nothing changes
  assert manifest(out)["sha256"] == clean["sha256"]


def test_resuming_with_another_tokenizer_is_refused(sources, spm_model, monkeypatch, capsys):
  args = ["--source", f"jsonl:{sources}/*.jsonl.gz", "--shard-tokens", "2000", "--out",
          str(sources / "out")]
  monkeypatch.setattr(storage, "write_text", _interrupted(storage.write_text))
  assert prepare(*args, "--tokenizer", "bytes") == 130
  monkeypatch.undo()
  capsys.readouterr()
  assert prepare(*args, "--tokenizer", f"spm:{spm_model}") == 2
  err = capsys.readouterr().err.strip()
  assert "the tokenizer differs" in err and len(err.splitlines()) == 1


def _interrupted(write):
  """`write` that is interrupted on its second call (after the first progress record)."""
  calls = []

  def once_then_interrupt(path, text):
    if calls:
      raise KeyboardInterrupt
    calls.append(path)
    write(path, text)
  return once_then_interrupt


@pytest.mark.parametrize("make, args, named", [
    (lambda d: (d / "x.jsonl").write_text('{"content": "a"}\n'), ["--source", "jsonl:{}/*.jsonl"],
     "no 'text' field"),
    (lambda d: pq.write_table(pa.table({"body": ["a"]}), d / "x.parquet"),
     ["--source", "parquet:{}/*.parquet"], "no 'text' column"),
    (lambda d: (d / "x.jsonl").write_bytes(b'{"text": "caf\xe9"}\n'), ["--source", "jsonl:{}/*.jsonl"],
     "not valid UTF-8"),
    (lambda d: (d / "x.txt").write_bytes(b"caf\xe9"), ["--source", "text:{}/*.txt"],
     "not valid UTF-8"),
    (lambda d: None, ["--source", "jsonl:{}/*.jsonl"], "no files match"),
    (lambda d: None, ["--source", "csv:{}/*.csv"], "--source must be KIND:GLOB"),
    (lambda d: (d / "x.jsonl").write_text('{"text": "a"}\n') and (d / "out").write_text("a file"),
     ["--source", "jsonl:{}/*.jsonl"], "--out"),
    (lambda d: (d / "x.jsonl").write_text('{"text": "a"}\n'),
     ["--source", "jsonl:{}/*.jsonl", "--invalid-utf8", "ignore"], "--invalid-utf8"),
    (lambda d: (d / "x.jsonl").write_text('{"text": "a"}\n'),
     ["--source", "jsonl:{}/*.jsonl", "--validation-percent", "101"], "--validation-percent"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, make, args, named):
  make(tmp_path)
  args = [a.format(tmp_path) for a in args]
  assert prepare(*args, "--tokenizer", "bytes", "--out", str(tmp_path / "out")) == 2
  err = capsys.readouterr().err.strip()
  assert named in err and len(err.splitlines()) == 1, err
  assert not os.path.exists(tmp_path / "out" / "manifest.json")


@pytest.mark.parametrize("policy, documents", [("skip", 1), ("replace", 2)])
def test_invalid_utf8_can_be_skipped_or_replaced(tmp_path, policy, documents):
  (tmp_path / "x.jsonl").write_bytes(b'{"text": "caf\xe9"}\n{"text": "ok"}\n')
  out = tmp_path / "out"
  assert prepare("--source", f"jsonl:{tmp_path}/*.jsonl", "--tokenizer", "bytes", "--out",
                 str(out), "--invalid-utf8", policy, "--validation-percent", "0") == 0
  assert manifest(out)["splits"]["train"]["documents"] == documents
  if policy == "replace":
    assert stream(out, "train").tobytes() == "caf\ufffd".encode() + b"\0ok\0"


def test_tokens_source_with_another_tokenizer_or_no_manifest_is_refused(sources, spm_model):
  out = str(sources / "out")
  with pytest.raises(Exception, match="no manifest.json"):
    load_corpus(DataConfig(source=f"tokens:{out}"))
  assert prepare("--source", f"text:{sources}/text/*.txt", "--tokenizer", "bytes", "--out",
                 out) == 0
  with pytest.raises(Exception, match="is not the tokenizer"):
    load_corpus(DataConfig(source=f"tokens:{out}", tokenizer=f"spm:{spm_model}"))


def test_prepare_from_and_into_a_bucket_and_read_it_from_there(sources, gcs_dir):
  storage.write_bytes(f"{gcs_dir}/in/d.parquet", (sources / "d.parquet").read_bytes())
  local, remote = str(sources / "local"), f"{gcs_dir}/tokens"
  for source, out in ((f"{sources}/*.parquet", local), (f"{gcs_dir}/in/*.parquet", remote)):
    assert prepare("--source", f"parquet:{source}", "--tokenizer", "bytes", "--out", out,
                   "--shard-tokens", "3000") == 0
  here = load_corpus(DataConfig(source=f"tokens:{local}"))
  there = load_corpus(DataConfig(source=f"tokens:{remote}"))
  assert there.fingerprint["sha256"] == here.fingerprint["sha256"]
  layout = dict(seq_len=32, global_batch_size=4, seed=0)
  np.testing.assert_array_equal(next(iter(train_batches(there.train, **layout))),
                                next(iter(train_batches(here.train, **layout))))


def test_sigkill_during_prepare_then_a_rerun_gives_the_same_manifest(tmp_path):
  """A real kill (no handler runs): the re-run resumes from progress.json to the clean manifest."""
  import signal
  import subprocess
  import sys
  import time

  with open(tmp_path / "big.jsonl", "w") as f:
    for i in range(1000):
      f.write(json.dumps({"text": DOCUMENTS[i % 200] * 3}) + "\n")
  args = ["--source", f"jsonl:{tmp_path}/big.jsonl", "--tokenizer", "bytes",
          "--shard-tokens", "10000"]
  assert prepare(*args, "--out", str(tmp_path / "clean")) == 0
  out = tmp_path / "killed"
  process = subprocess.Popen(
      [sys.executable, "-m", "scaling.cli", "data", "prepare", "--no-progress", *args,
       "--out", str(out)], env={**os.environ, "PYTHONPATH": os.getcwd()},
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 60
  while time.monotonic() < deadline:
    try:
      with open(out / "progress.json") as f:
        if len(json.load(f)["splits"]["train"]["shards"]) >= 5:
          break
    except (OSError, ValueError):  # not written yet
      pass
    time.sleep(0.01)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert not os.path.exists(out / "manifest.json"), "prepare finished before the kill"
  assert prepare(*args, "--out", str(out)) == 0
  clean, resumed = manifest(tmp_path / "clean"), manifest(out)
  clean.pop("seconds"), resumed.pop("seconds")
  assert resumed == clean


@pytest.mark.slow
def test_a_tokens_run_trains_as_the_text_run_and_resumes_exactly(sources, tmp_path):
  """Three trainings: text, tokens (the same losses), tokens resumed from step 3 (the same rows)."""
  import shutil

  glob = f"{sources}/text/*.txt"
  out = str(sources / "out")
  assert prepare("--source", f"text:{glob}", "--tokenizer", "bytes", "--out", out,
                 "--shard-tokens", "1000", "--validation-percent", "20") == 0
  overrides = {"train_steps": 6, "warmup_steps": 1, "checkpoint_every": 3, "eval_every": 3,
               "eval_batches": 1, "batch_size": 8}
  runs = {}
  for name, data in (("text", {}), ("tokens", {"data.source": f"tokens:{out}", "data.glob": ""})):
    runs[name] = str(tmp_path / name)
    trainer.train(small_config(glob, **overrides, **data), runs[name], devices=jax.devices()[:1])
  text_rows, tokens_rows = read_metrics(runs["text"]), read_metrics(runs["tokens"])
  assert [r["loss"] for r in tokens_rows] == [r["loss"] for r in text_rows]
  assert [r.get("eval_loss") for r in tokens_rows] == [r.get("eval_loss") for r in text_rows]
  resumed = str(tmp_path / "resumed")
  shutil.copytree(runs["tokens"], resumed)
  shutil.rmtree(os.path.join(resumed, "checkpoints", "6"))
  trainer.train(small_config(glob, **overrides, **{"data.source": f"tokens:{out}", "data.glob": ""}),
                resumed, devices=jax.devices()[:1])
  assert [r["loss"] for r in read_metrics(resumed)] == [r["loss"] for r in tokens_rows]

"""The run-directory layer, on a local disk and on GCS (the emulator of tests/emulated_gcs.py) alike."""

import json
import subprocess
import sys
import threading

import pytest

from scaling import rundir, storage
from scaling.errors import InputError


def test_a_cut_off_line_is_one_warning_line_naming_the_file_and_line(tmp_path):
  """Wherever a reader skips a line and nobody catches the warning (scaling runs, a sweep's
  results): one `warning:` line, not Python's warning format with this module's source path."""
  run = rundir.RunDir(tmp_path)
  storage.write_text(run.metrics_file, '{"step": 1}\n{"st')
  script = ("import sys; from scaling import rundir; "
            f"sys.exit(len(rundir.read_metrics({str(tmp_path)!r})) != 1)")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  assert result.stderr == (f"warning: {run.metrics_file} line 2: skipping a cut-off last line "
                           "(an incomplete line: a crash mid-write?)\n")


def test_scaling_runs_reports_a_cut_off_line_as_one_clean_warning(tmp_path):
  run = rundir.RunDir(tmp_path / "run")
  run.write_run({"train_steps": 4})
  storage.write_text(run.metrics_file, '{"step": 1, "loss": 3.0}\n{"step": 2, "lo')
  result = subprocess.run([sys.executable, "-m", "scaling.cli", "runs", run.root],
                          capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  assert f"warning: {run.metrics_file} line 2: skipping a cut-off last line" in result.stderr
  assert "UserWarning" not in result.stderr and "rundir.py" not in result.stderr


def test_files_of_a_run_or_sweep_have_an_owner(tmp_path):
  sweep, run = tmp_path / "sweep", tmp_path / "sweep" / "runs" / "r"
  storage.write_text(str(sweep / "plan.json"), "{}")
  storage.write_text(str(run / "run.json"), "{}")
  for owned, owner in (("plan.json", sweep), ("results.csv", sweep), ("runs/x.json", sweep),
                       ("runs/r/metrics.jsonl", run), ("runs/r/lease.3", run),
                       ("runs/r/checkpoints/5/state", run), ("runs/r/wandb/run_id", run)):
    assert rundir.owner(str(sweep / owned)) == str(owner), owned
  for free in ("fits/fit.json", "fit.json"):
    assert rundir.owner(str(sweep / free)) is None, free
  assert rundir.owner(str(tmp_path / "results.csv")) is None  # not in a sweep
  assert rundir.owner(str(run / "fit.json")) == str(sweep)  # below the sweep's runs/


def rows(*steps, loss=1.0):
  return [{"step": s, "loss": loss + s} for s in steps]


def test_metrics_of_a_live_run_a_finished_run_and_a_resumed_run(root):
  run = rundir.RunDir(root)
  writer = run.metrics_writer(resume_step=0)
  for row in rows(1, 2, 3):
    writer.write(row)
  writer.flush()  # what the trainer does at a checkpoint: readable by others from here on
  assert run.read_metrics() == rows(1, 2, 3)
  writer.write(rows(4)[0])
  writer.close()
  assert run.read_metrics() == rows(1, 2, 3, 4)
  assert storage.list_names(run.metrics_chunks) == []  # folded into metrics.jsonl
  assert storage.read_text(run.metrics_file) == rundir.rows_text(rows(1, 2, 3, 4))

  # Killed after step 4's rows (a chunk still there on GCS), resumed from the checkpoint of step 2:
  # rows 3 and 4 are recomputed, so the old ones go, and nothing is listed twice.
  writer = run.metrics_writer(resume_step=4)
  for row in rows(5, 6):
    writer.write(row)
  writer.flush()  # then SIGKILL: close() never runs
  writer = run.metrics_writer(resume_step=2)
  assert run.read_metrics() == rows(1, 2)
  for row in rows(3, 4, 5, 6, loss=2.0):
    writer.write(row)
  writer.close()
  assert run.read_metrics() == rows(1, 2) + rows(3, 4, 5, 6, loss=2.0)


def test_metrics_read_while_the_writer_deletes_its_last_chunk_on_gcs(gcs_dir):
  """Process 1 of a two-process run read the metrics while process 0 folded the chunks into
  metrics.jsonl and deleted them; listing the chunk directory as its last object went raised
  FileNotFoundError and failed the run (tests/launch: the bucket test, once in three runs)."""
  run = rundir.RunDir(gcs_dir)
  chunk = storage.join(run.metrics_chunks, "0000000001-0000000001.jsonl")
  stop = threading.Event()

  def churn():  # the writer's flush() and close(), over and over
    while not stop.is_set():
      storage.write_text(chunk, rundir.rows_text(rows(1)))
      storage.remove(chunk)

  writer = threading.Thread(target=churn)
  writer.start()
  try:
    seen = [run.read_metrics() for _ in range(30)]
  finally:
    stop.set()
    writer.join()
  assert all(rows_read in ([], rows(1)) for rows_read in seen)


def test_a_resumed_local_run_appends_after_a_cut_off_line_is_dropped(tmp_path):
  run = rundir.RunDir(tmp_path)
  storage.write_text(run.metrics_file, '{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
  with pytest.warns(UserWarning, match="cut-off"):
    writer = run.metrics_writer(resume_step=1)
  writer.write(rows(2)[0])
  writer.close()
  expected = '{"step": 1, "loss": 2.0}\n' + json.dumps(rows(2)[0]) + "\n"
  assert storage.read_text(run.metrics_file) == expected


def test_readers_skip_a_cut_off_last_line_and_strict_ones_refuse_garbage(tmp_path):
  run = rundir.RunDir(tmp_path)
  storage.write_text(run.metrics_file, '{"step": 1}\n{"step": 2}\n{"st')
  with pytest.warns(UserWarning, match="line 3: skipping a cut-off last line"):
    assert [r["step"] for r in run.read_metrics(strict=True)] == [1, 2]
  storage.write_text(run.metrics_file, '{"step": 1}\n{garbage\n{"step": 3}\n')
  with pytest.raises(InputError, match="metrics.jsonl line 2: not valid JSON"):
    run.read_metrics(strict=True)


def test_a_sweep_finds_its_run_directories(root):
  sweep = rundir.SweepDir(root)
  for name in ("b", "a"):
    sweep.run(name).write_run({"name": name})
  storage.write_text(storage.join(root, "runs", "not_a_run", "notes.txt"), "")
  assert [run.name for run in sweep.run_dirs()] == ["a", "b"]
  assert sweep.run("a").read_run() == {"name": "a"}



"""`scaling runs DIR [--json]`: where every run of a sweep (or the one run in DIR) stands, now.

Reads only the run directories (plan.json, run.json, metrics, status.json, the lease), so it works
while a sweep is in flight, from any machine that sees the workdir. A run is `finished` once its
metrics reached the last step with an eval loss; `running` while its lease is renewed; `stalled`
when its status says running but the lease stopped being renewed (the worker died; a driver takes
it over); otherwise what its status.json says (pending, failed, preempted).
"""

import json
import sys
import time

from scaling import rundir, storage
from scaling.errors import ArgumentParser, InputError
from scaling.train import runstate

COLUMNS = ("name", "state", "step", "tokens", "flops", "loss", "eval_loss", "tokens_per_sec",
           "where", "lease_age_s", "reason")


def _train_steps(run: rundir.RunDir) -> int | None:
  """The run's length from its run.json; None while it has none (or a broken one)."""
  try:
    return run.record().train_steps
  except InputError:
    return None


def _runs(directory: str) -> list[tuple[str, str, int | None]]:
  """(name, workdir, total steps) of every run DIR holds: a sweep's plan, or DIR as one run."""
  if not storage.is_dir(directory):
    raise InputError(f"scaling runs: {directory} is a file; give a sweep's or a run's directory")
  sweep = rundir.SweepDir(directory)
  if sweep.has_plan():
    try:
      plan = sweep.read_plan()
      plan.needs("runs")
    except InputError as e:
      raise InputError(f"scaling runs: {sweep.plan_file} is corrupt ({e}); the runs' own "
                       "directories are under runs/ (scaling runs DIR/runs/NAME)") from None
    return [(run["name"], storage.join(directory, run["workdir"]), run["steps"])
            for run in plan.entries()]
  run = rundir.RunDir(directory)
  if run.has_run() or run.has_metrics() or storage.exists(storage.join(directory,
                                                                     runstate.STATUS_FILE)):
    return [(run.name, directory, _train_steps(run))]
  raise InputError(f"scaling runs: {directory} holds neither a sweep ({rundir.PLAN_FILE}) nor a "
                   f"run ({rundir.RUN_FILE})")


def describe(name: str, workdir: str, total: int | None, now: float) -> dict:
  """One run's line: its state, progress, last losses, throughput, where it runs, its lease."""
  run = rundir.RunDir(workdir)
  rows = run.read_metrics() if run.has_metrics() else []
  last = rows[-1] if rows else {}
  evals = [row for row in rows if "eval_loss" in row]
  status = runstate.read_status(workdir)
  lease = runstate.holder(workdir)
  if total is None:
    total = _train_steps(run)
  if last and last.get("step") == total and evals and evals[-1] is last:
    state = "finished"
  elif lease is not None and lease.live(now):
    state = "running"
  elif status["state"] == "running":
    state = "stalled"
  else:
    state = status["state"]
  held = lease is not None and not lease.released
  return {
      "name": name, "state": state, "step": last.get("step", 0), "total_steps": total,
      "tokens": last.get("tokens", 0), "flops": last.get("flops", 0.0), "loss": last.get("loss"),
      "eval_loss": evals[-1]["eval_loss"] if evals else None,
      "tokens_per_sec": last.get("tokens_per_sec"),
      "where": (lease.where if held else status.get("where")) or "",
      "lease_age_s": round(lease.age(now), 1) if held else None,
      "attempts": len(status.get("attempts", [])), "reason": status.get("reason", "") or "",
  }


def _cell(key: str, value) -> str:
  if value is None:
    return "-"
  if key in ("loss", "eval_loss"):
    return f"{value:.4f}"
  if key == "flops":
    return f"{value:.3e}"
  if key in ("tokens", "tokens_per_sec"):
    return f"{value:,.0f}"
  if key == "lease_age_s":
    return f"{value:.0f}s"
  return str(value)


def table(lines: list[dict]) -> str:
  header = ("name", "state", "step", "tokens", "FLOPs", "loss", "eval", "tok/s", "where", "lease",
            "reason")
  cells = [header] + [
      tuple(f"{line['step']}/{line['total_steps'] or '?'}" if key == "step"
            else _cell(key, line[key]) for key in COLUMNS) for line in lines]
  widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
  return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                   for row in cells)


def main(argv: list[str]) -> int:
  parser = ArgumentParser(prog="scaling runs",
                          description="One line per run of a sweep (or the one run in DIR).")
  parser.add_argument("dir", help="a sweep workdir (with plan.json) or one run's workdir")
  parser.add_argument("--json", action="store_true", help="a JSON list, one object per run")
  args = parser.parse_args(argv)
  storage.check_readable(args.dir, "scaling runs")
  now = time.time()
  lines = [describe(name, workdir, total, now) for name, workdir, total in _runs(args.dir)]
  if args.json:
    json.dump(lines, sys.stdout, indent=1)
    print()
  else:
    print(table(lines))
  return 0

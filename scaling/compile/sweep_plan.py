"""A sweep plan against real hardware: each run's step compiled for a TPU slice, and what it costs.

`scaling sweep --dry-run --topology TYPE` compiles each distinct step of the plan once (runs that
differ only in length or learning rate share one), keeps the reports in a persistent cache keyed by
everything that shapes the program, and adds to each run: fits or not, memory per device, the
roofline lower bound on its wall time (steps × the bound on one step), and chip-hours at an assumed
MFU (the model's chinchilla FLOPs at that fraction of the slice's bf16 peak) and, where a `scaling
bench --json` report measured the same shape on the same chip, at its measured MFU. Before compiling
anything, every run's shape is checked against the slice's mesh: a width the mesh cannot split is
bad input (one line naming the run and the key), not a row.

With --search, each distinct run shape (runs that differ only in microbatches or remat share one)
goes through `scaling compile --search` instead (scaling/compile/search.py, every candidate through
the same cache), and each run is printed with the best microbatches × remat policy that fits.
"""

import hashlib
import importlib.metadata
import json
import os
import pathlib

from scaling import hardware
from scaling.compile import aot
from scaling.compile import topology as topology_lib
from scaling.errors import InputError

CACHE_ENV = "SCALING_COMPILE_CACHE"  # a directory, or "off"
# Keys that shape the compiled step; the rest (run length, learning rate, logging) do not.
STEP_KEYS = ("model", "batch_size", "microbatches", "grad_dtype", "mesh", "grad_clip", "weight_decay")


def cache_dir() -> str | None:
  path = os.environ.get(CACHE_ENV, os.path.join(os.path.expanduser("~"), ".cache", "scaling",
                                                "compile"))
  return None if path == "off" else path


def _code_fingerprint() -> str:
  """A hash of this package's source: a changed model or step compiles to another program."""
  root = pathlib.Path(__file__).resolve().parents[1]
  digest = hashlib.sha256()
  for path in sorted(root.rglob("*.py")):
    digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
  return digest.hexdigest()


def check_shapes(plan, topo: topology_lib.Topology) -> None:
  """Every run's mesh and widths against the slice, as `scaling train` would check them there."""
  from scaling.parallel import mesh as mesh_lib
  from scaling.train import config as train_config

  devices = topo.chips * topo.slices
  for run in plan.runs:
    try:
      cfg = train_config.validate(run.config, vocab_size=run.config.model.vocab_size)
      shape = mesh_lib.mesh_shape(run.config.mesh.to_dict(), devices)
      if topo.slices > 1:
        mesh_lib.split_over_slices(shape, topo.slices)
      train_config.check_fits_mesh(cfg, shape, topo.hosts)
    except InputError as e:
      raise InputError(f"run {run.name} on {topo.accelerator_type}"
                       f"{f' × {topo.slices}' if topo.slices > 1 else ''}: {e}") from None


def measured_mfu(path: str) -> dict:
  """A `scaling bench --json` report: the MFU it measured, for the shape and chip it measured."""
  try:
    with open(path, encoding="utf-8") as f:
      report = json.load(f)
    return {"mfu": float(report["mfu"]), "device_kind": report["device"]["kind"],
            "shape": {k: report["config"][k] for k in BENCH_SHAPE}}
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise InputError(f"--measured {path}: not a `scaling bench --json` report with an MFU ({e})") from None


# What makes a bench's MFU this run's: the model's shape and the batch.
BENCH_SHAPE = ("d_model", "n_layers", "n_heads", "seq_len", "batch_size")


def _same_shape(config: dict, measured: dict) -> bool:
  ours = {**config["model"], "batch_size": config["batch_size"]}
  return all(ours.get(k) == v for k, v in measured["shape"].items())


def step_key(config: dict, topo: topology_lib.Topology) -> str:
  versions = {name: importlib.metadata.version(name) for name in ("jax", "libtpu")}
  versions["scaling"] = _code_fingerprint()
  shaping = {key: config[key] for key in STEP_KEYS}
  text = json.dumps([topo.accelerator_type, topo.slices, versions, shaping], sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:24]


def compile_cached(cfg, config: dict, topo: topology_lib.Topology) -> tuple[dict, bool]:
  """(report, whether it came from the cache)."""
  directory = cache_dir()
  path = os.path.join(directory, step_key(config, topo) + ".json") if directory else None
  if path and os.path.isfile(path):
    with open(path, encoding="utf-8") as f:
      return json.load(f), True
  report = aot.compile_step(cfg, config, topo)
  if path:
    os.makedirs(directory, exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
      json.dump(report, f)
    os.replace(path + ".tmp", path)
  return report, False


def run_costs(plan, topo: topology_lib.Topology, assume_mfu: float,
              measured: dict | None = None) -> list[dict]:
  """One row per run of the plan: its step's report and the costs that follow."""
  from scaling.train import config as train_config

  rows, compiled = [], {}
  for run in plan.runs:
    config = run.config.to_dict()
    key = step_key(config, topo)
    if key not in compiled:
      cfg = train_config.validate(run.config, vocab_size=run.config.model.vocab_size)
      compiled[key] = compile_cached(cfg, config, topo)
    report, cached = compiled[key]
    memory = report["memory_per_device"]
    row = {"name": run.name, "fits": memory["fits"], "memory_per_device": memory["total"],
           "cached": cached, "step_seconds_lower_bound": None, "bound_by": None,
           "hours_lower_bound": None, "chip_hours": None, "chip_hours_measured": None,
           "mfu_upper_bound": None}
    if "estimate" in report:
      estimate = report["estimate"]
      peak, step_s = estimate["peak_flops_per_sec"], estimate["step_seconds_lower_bound"]
      flops = report["flops"]["model_per_step"] * run.steps
      row.update(step_seconds_lower_bound=step_s, bound_by=estimate["bound_by"],
                 hours_lower_bound=step_s * run.steps / 3600,
                 mfu_upper_bound=estimate["mfu_upper_bound"],
                 chip_hours=flops / (peak * assume_mfu) / 3600)
      if measured and measured["device_kind"] == report["device_kind"] and _same_shape(config,
                                                                                       measured):
        row["chip_hours_measured"] = flops / (peak * measured["mfu"]) / 3600
    rows.append(row)
  return rows


def table(plan, topo: topology_lib.Topology, assume_mfu: float, measured: dict | None = None) -> str:
  check_shapes(plan, topo)
  rows = run_costs(plan, topo, assume_mfu, measured)
  chip = hardware.chip(topo.generation)
  lines = [("name", "fits", "GiB/device", "step ≥ ms", "bound", "MFU ≤", "hours ≥",
            f"chip-h @{assume_mfu:.0%} MFU")]
  if measured:
    lines[0] += (f"chip-h @{measured['mfu']:.1%} measured",)
  for row in rows:
    def fmt(value, spec):
      return "n/a" if value is None else format(value, spec)
    line = (row["name"], "yes" if row["fits"] else "NO",
            fmt(row["memory_per_device"] and row["memory_per_device"] / 2**30, ".2f"),
            fmt(row["step_seconds_lower_bound"] and row["step_seconds_lower_bound"] * 1e3, ".1f"),
            row["bound_by"] or "n/a", fmt(row["mfu_upper_bound"], ".0%"),
            fmt(row["hours_lower_bound"], ".3g"), fmt(row["chip_hours"], ".4g"))
    lines.append(line + ((fmt(row["chip_hours_measured"], ".4g"),) if measured else ()))
  widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
  out = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                   enumerate(zip(line, widths))) for line in lines]
  misfits = [row["name"] for row in rows if not row["fits"]]
  known = [row for row in rows if row["chip_hours"] is not None]
  chips = topo.chips * topo.slices
  slices = f" ({topo.slices} slices)" if topo.slices > 1 else ""
  out.append(
      f"{topo.accelerator_type}{slices}: {chips} chips × {chip.hbm_bytes / 2**30:.2f} GiB HBM, "
      f"{sum(row['fits'] for row in rows)} of {len(rows)} runs fit; in all ≥ "
      f"{sum(r['hours_lower_bound'] for r in known):.3g} hours (roofline bound) and "
      f"{sum(r['chip_hours'] for r in known):.4g} chip-hours at {assume_mfu:.0%} MFU"
      + (f"; does not fit: {', '.join(misfits)}" if misfits else ""))
  if measured:
    same = [r for r in rows if r["chip_hours_measured"] is not None]
    out.append(f"at the MFU measured ({measured['mfu']:.1%} on {measured['device_kind']}): "
               + (f"{sum(r['chip_hours_measured'] for r in same):.4g} chip-hours for the "
                  f"{len(same)} runs of the measured shape" if same else
                  "no run of the plan has the measured shape on this chip"))
  return "\n".join(out)


def _shape_key(config: dict, topo: topology_lib.Topology) -> str:
  """`step_key` without what the search varies: the runs that one search serves."""
  return step_key({**config, "microbatches": None, "model": {**config["model"], "remat": None}}, topo)


def search_runs(plan, topo: topology_lib.Topology) -> list[dict]:
  """Per run: {"name", "fits": [candidates that fit, best first], "tried": [every candidate]}."""
  from scaling.compile import search
  from scaling.train import config as train_config

  results, rows = {}, []
  for run in plan.runs:
    config = run.config.to_dict()
    key = _shape_key(config, topo)
    if key not in results:
      cfg = train_config.validate(run.config, vocab_size=run.config.model.vocab_size)
      results[key] = search.search(cfg, config, topo, remats=search.REMATS,
                                   compile_step=lambda *args: compile_cached(*args)[0])
    rows.append({"name": run.name, **results[key]})
  return rows


def search_table(plan, topo: topology_lib.Topology) -> str:
  """Each run with the best microbatches × remat policy that fits, as ready overrides."""
  check_shapes(plan, topo)
  rows = search_runs(plan, topo)
  lines = [("name", "fits", "GiB/device", "step ≥ ms", "bound", "best of fitting", "overrides")]
  for row in rows:
    best = row["fits"][0] if row["fits"] else None
    if best is None:
      lines.append((row["name"], "NO", "n/a", "n/a", "n/a", f"0 of {len(row['tried'])}",
                    "(no microbatches × remat policy tried fits)"))
      continue
    step = "n/a" if best["step_seconds"] is None else f"{best['step_seconds'] * 1e3:.1f}"
    lines.append((row["name"], "yes", f"{best['memory_bytes'] / 2**30:.2f}", step,
                  best["bound_by"] or "n/a", f"1 of {len(row['fits'])}", best["overrides"]))
  widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]) - 1)]
  out = ["  ".join([cell.ljust(w) if i == 0 else cell.rjust(w)
                    for i, (cell, w) in enumerate(zip(line, widths))] + [line[-1]]) for line in lines]
  slices = f" ({topo.slices} slices)" if topo.slices > 1 else ""
  shapes = {id(row["tried"]): row for row in rows}.values()
  out.append(f"{topo.accelerator_type}{slices}: searched {len(shapes)} run shapes "
             f"({sum(len(row['tried']) for row in shapes)} candidates); "
             f"{sum(bool(row['fits']) for row in rows)} of {len(rows)} runs fit with their best")
  choices = {row["fits"][0]["overrides"] for row in rows if row["fits"]}
  if len(choices) == 1 and all(row["fits"] for row in rows):
    best = rows[0]["fits"][0]
    out.append(f"one choice serves every run: --config.base.microbatches={best['microbatches']} "
               f"--config.base.model.remat={best['remat']}")
  return "\n".join(out)

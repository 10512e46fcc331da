"""`scaling compile --search`: which microbatches × remat policy fits a TPU slice, and which is fastest.

Each candidate is the config with `microbatches` and `model.remat` changed, compiled by libtpu as
`scaling compile` compiles it (`aot.compile_step`); those that fit in HBM are ranked by the roofline
bound on the step time, and printed as ready `--config.` overrides, the best marked. For each remat
policy the microbatch counts are tried smallest first and the first that fits is kept: more
microbatches do the same FLOPs with more weight gathers and reads per step, so they only trade
speed for memory. A candidate whose compile fails (e.g. a policy this libtpu cannot compile) is
listed with its error under --json and not ranked.
"""

import dataclasses

from scaling.errors import InputError

REMATS = ("none", "save_attention_mlp_input", "save_attention", "save_mlp_input", "dots", "offload",
          "full")
MICROBATCHES = (1, 2, 4, 8, 16, 32)


def step_bound(report: dict) -> float | None:
  """The roofline step time of a compiled report: the planner's honest bound where the report has
  it, else `scaling compile`'s lower bound."""
  estimate = report.get("estimate") or {}
  for key in ("step_seconds_lower_bound", "step_seconds"):
    if estimate.get(key) is not None:
      return estimate[key]
  return None


def _candidate(cfg, resolved: dict, microbatches: int, remat: str):
  model = dataclasses.replace(cfg.model, remat=remat)
  config = {**resolved, "microbatches": microbatches, "model": {**resolved["model"], "remat": remat}}
  return dataclasses.replace(cfg, microbatches=microbatches, model=model), config


def overrides(microbatches: int, remat: str) -> str:
  return f"--config.microbatches={microbatches} --config.model.remat={remat}"


def search(cfg, resolved: dict, topo, remats=REMATS, microbatches=MICROBATCHES, log=None,
           compile_step=None) -> dict:
  """{"fits": [rows ranked by step bound], "tried": [every row]}; a row is {"microbatches", "remat",
  "overrides", "fits", "step_seconds", "bound_by", "memory_bytes", "compile_seconds", "error"}.
  `compile_step(cfg, config, topo)` -> report: `aot.compile_step` unless given (a sweep's cache)."""
  from scaling.compile import aot
  from scaling.parallel import mesh as mesh_lib
  from scaling.parallel import rules

  if "remat" not in models_keys(cfg):
    raise InputError(f"scaling compile --search: model.arch={cfg.model.arch} has no remat policies")
  shape = dict(zip(rules.MESH_AXES, mesh_lib.mesh_shape(cfg.mesh, topo.chips)))
  batch_ways = rules.split_size("batch", shape, rules.table(cfg.sharding_rules))
  counts = [m for m in microbatches if cfg.batch_size % (m * batch_ways) == 0]
  if not counts:
    raise InputError(f"scaling compile --search: batch_size={cfg.batch_size} splits over the "
                     f"{batch_ways} batch-sharding devices in none of {list(microbatches)} microbatches")
  tried = []
  for remat in remats:
    for m in counts:
      candidate, config = _candidate(cfg, resolved, m, remat)
      row = {"microbatches": m, "remat": remat, "overrides": overrides(m, remat), "fits": False,
             "step_seconds": None, "bound_by": None, "memory_bytes": None, "compile_seconds": None,
             "error": None}
      try:
        report = (compile_step or aot.compile_step)(candidate, config, topo)
      except Exception as e:  # noqa: BLE001  e.g. a policy this libtpu cannot compile
        row["error"] = str(e).strip().splitlines()[0][:200] if str(e).strip() else repr(e)
      else:
        memory = report["memory_per_device"]
        row.update(fits=bool(memory["fits"]), memory_bytes=memory["total"],
                   compile_seconds=report["compile_seconds"], step_seconds=step_bound(report),
                   bound_by=(report.get("estimate") or {}).get("bound_by"))
      tried.append(row)
      if log:
        log(row)
      if row["fits"] or row["error"]:
        break  # a larger count fits too, at more gathers per step; an error repeats
  fits = sorted((r for r in tried if r["fits"]), key=lambda r: (r["step_seconds"] is None,
                                                               r["step_seconds"] or 0.0))
  return {"fits": fits, "tried": tried}


def models_keys(cfg) -> tuple[str, ...]:
  from scaling import models

  return models.get(cfg.model.arch).config.key_names()


def table(result: dict, topology: str) -> str:
  """The fitting candidates ranked, best marked with *, as lines of text."""
  if not result["fits"]:
    return f"{topology}: no microbatches × remat policy tried fits"
  lines = [f"{topology}: {len(result['fits'])} of {len(result['tried'])} compiled candidates fit; "
           "ranked by the roofline bound on the step time"]
  for rank, row in enumerate(result["fits"], 1):
    mark = "*" if rank == 1 else " "
    step = "n/a" if row["step_seconds"] is None else f"{row['step_seconds'] * 1e3:9.2f} ms"
    lines.append(f"{mark} {rank:2d}. step ≥ {step} ({row['bound_by']}-bound), "
                 f"{row['memory_bytes'] / 2**30:7.2f} GiB per device: {row['overrides']}")
  return "\n".join(lines)

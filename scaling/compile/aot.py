"""Compile the real train step for a TPU slice ahead of time, and read its memory and cost.

The step is `scaling.train.state.build`'s, on a mesh made by `scaling.parallel.mesh` from the
slice's devices, with the rules table, donation, scan/remat and dtype of the config, so whatever
compiles here compiles on the pod. Inputs are abstract (ShapeDtypeStructs): nothing is allocated
and nothing runs. The report's figures are per device unless named otherwise.
"""

import math
import re
import time

from scaling import models
from scaling.compile import hardware, hlo
from scaling.compile import topology as topology_lib
from scaling.models import attention
from scaling.train.config import TrainConfig

# XLA's error when a program does not fit, e.g. "... HLO temporaries (34.72G) exceeds available
# HBM (15.75G)": the compiler stops before there is an executable to analyse.
_OUT_OF_MEMORY = re.compile(r"RESOURCE_EXHAUSTED: .*?[Rr]an out of memory")
_SIZE = re.compile(r"\(([\d.]+)([KMGT])\)")
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _shard_bytes(abstract_tree) -> int:
  import jax

  return sum(math.prod(leaf.sharding.shard_shape(leaf.shape)) * leaf.dtype.itemsize
             for leaf in jax.tree.leaves(abstract_tree))


def state_bytes(steps) -> dict:
  """Parameters and optimizer state on one device, as our shardings lay them out (the most loaded
  device: shards are equal or, where a size does not divide, the first ones are the largest)."""
  model_state, optimizer_state = steps.abstract_state[0], steps.abstract_state[1]
  params, optimizer = _shard_bytes(model_state), _shard_bytes(optimizer_state)
  return {"params": params, "optimizer": optimizer, "total": params + optimizer}


def _memory(compiled, chip: hardware.Chip) -> dict:
  stats = compiled.memory_analysis()
  total = (stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
           + stats.temp_size_in_bytes + stats.generated_code_size_in_bytes)
  return {"arguments": stats.argument_size_in_bytes, "outputs": stats.output_size_in_bytes,
          "aliased": stats.alias_size_in_bytes, "temp": stats.temp_size_in_bytes,
          "code": stats.generated_code_size_in_bytes, "total": total, "hbm": chip.hbm_bytes,
          "fits": total <= chip.hbm_bytes, "headroom": chip.hbm_bytes - total}


def _out_of_memory(message: str, chip: hardware.Chip) -> dict:
  """The figures XLA's refusal gives: what it needed and what it had."""
  sizes = [float(n) * _UNITS[unit] for n, unit in _SIZE.findall(message)]
  total = int(sizes[0]) if sizes else None
  return {"arguments": None, "outputs": None, "aliased": None, "temp": None, "code": None,
          "total": total, "hbm": chip.hbm_bytes, "fits": False,
          "headroom": None if total is None else chip.hbm_bytes - total,
          "compiler_error": message.strip().splitlines()[0][:400]}


def _flops(cost: dict, lowered_text: str, summary: hlo.Summary, cfg: TrainConfig,
           devices: int) -> dict:
  """XLA's count with its loop bodies counted once per trip: XLA's own figure plus the matmul FLOPs
  of the trips it left out (from the lowered program), plus the FLOPs of Pallas kernels (which XLA
  counts as 0) by our own count. Against the model's chinchilla count."""
  per_token = models.get(cfg.model.arch).flops_per_token(cfg.model)["chinchilla"]
  model = per_token * cfg.tokens_per_step
  reported = float(cost.get("flops", 0.0)) * devices
  matmul, matmul_once = hlo.matmul_flops(lowered_text)
  kernels = attention.kernel_flops_per_step(cfg.model, "tpu", cfg.batch_size) if hasattr(
      cfg.model, "attention") else 0.0
  xla = reported + (matmul - matmul_once) + kernels
  return {"xla_per_step": xla, "xla_reported_per_step": reported, "matmul_per_step": matmul,
          "kernel_per_step": kernels,
          "loops": {str(k): v for k, v in summary.loops.items()},
          "model_per_step": model, "ratio": xla / model if model else None}


def _estimate(flops: dict, cost: dict, collectives: dict, cfg: TrainConfig, topo, device_kind) -> dict:
  """Roofline: the step cannot be faster than its FLOPs at peak, its HBM traffic at full HBM
  bandwidth, or its collective bytes at full ICI bandwidth. A bound, not a prediction."""
  chip = hardware.chip(topo.generation)
  peak = hardware.peak_flops_per_sec(device_kind)
  devices = topo.chips
  compute_s = flops["xla_per_step"] / devices / peak
  # XLA's bytes accessed count each loop body once: fewer than the step moves, so still a bound.
  memory_s = float(cost.get("bytes accessed", 0.0)) / chip.hbm_bytes_per_sec
  ici_s = sum(c["bytes"] for c in collectives.values()) / chip.ici_bytes_per_sec
  step_s = max(compute_s, memory_s, ici_s)
  bound = {"compute": compute_s, "hbm": memory_s, "ici": ici_s}
  return {
      "step_seconds_lower_bound": step_s, "bound_by": max(bound, key=bound.get), "seconds": bound,
      "mfu_upper_bound": flops["model_per_step"] / (step_s * devices * peak) if step_s else None,
      "tokens_per_sec_upper_bound": cfg.tokens_per_step / step_s if step_s else None,
      "peak_flops_per_sec": peak, "hbm_bytes_per_sec": chip.hbm_bytes_per_sec,
      "ici_bytes_per_sec": chip.ici_bytes_per_sec, "source": chip.source,
  }


def advice(report: dict) -> str:
  """One line: how far over HBM the step is, and what would bring it under."""
  memory, state = report["memory_per_device"], report["state_bytes"]["total"]
  hbm, total = memory["hbm"], memory["total"]
  over = f"{total / 2**30:.2f} GiB per device > {hbm / 2**30:.2f} GiB HBM ({total / hbm:.2f}×)"
  mesh, cfg, devices = report["mesh"], report["config"], report["devices"]
  helps = []
  if mesh["fsdp"] * mesh["tensor"] < devices:
    helps.append(f"more fsdp (--config.mesh.fsdp={devices // mesh['tensor']} --config.mesh.data=1)")
  if state >= hbm:
    helps.append(f"a bigger slice (parameters and Adam moments alone take {state / 2**30:.2f} GiB "
                 "per device)")
  else:
    family_keys = models.get(cfg["model"]["arch"]).config.key_names()
    if "remat" in family_keys and cfg["model"]["remat"] != "full":
      helps.append("--config.model.remat=full")
    helps.append(f"a smaller batch than batch_size={cfg['batch_size']}")
  return f"{report['topology']}: does not fit: {over}; try " + ", or ".join(helps)


def compile_step(cfg: TrainConfig, config_dict: dict, topo: topology_lib.Topology,
                 hlo_path: str | None = None) -> dict:
  """Compiles `scaling train`'s step for `topo`; returns the report (see docs/scale.md) and, with
  `hlo_path`, writes the optimized HLO there (to see where the collectives go)."""
  import jax
  import jax.numpy as jnp
  from jax.sharding import NamedSharding, PartitionSpec

  from scaling.parallel import mesh as mesh_lib
  from scaling.train import config as config_lib
  from scaling.train import state as state_lib

  devices = topology_lib.devices(topo)
  mesh = mesh_lib.make_mesh(cfg.mesh, devices)
  config_lib.check_fits_mesh(cfg, mesh.devices.shape, topo.hosts)
  steps = state_lib.build(cfg, mesh)
  batch = jax.ShapeDtypeStruct((cfg.batch_size, cfg.model.seq_len + 1), jnp.int32,
                               sharding=steps.batch_sharding)
  first_bad = jax.ShapeDtypeStruct((), jnp.int32, sharding=NamedSharding(mesh, PartitionSpec()))
  chip = hardware.chip(topo.generation)
  report = {
      "topology": topo.accelerator_type, "topology_name": topo.name,
      "device_kind": devices[0].device_kind, "devices": len(devices), "processes": topo.hosts,
      "mesh": dict(zip(mesh.axis_names, (int(n) for n in mesh.devices.shape))),
      "config": config_dict, "state_bytes": state_bytes(steps),
  }
  start = time.perf_counter()
  lowered = steps.train.lower(steps.abstract_state, batch, first_bad)
  try:
    compiled = lowered.compile()
  except jax.errors.JaxRuntimeError as e:
    if not _OUT_OF_MEMORY.search(str(e)):
      raise
    report["compile_seconds"] = time.perf_counter() - start
    report["memory_per_device"] = _out_of_memory(str(e), chip)
    return report
  report["compile_seconds"] = time.perf_counter() - start
  report["memory_per_device"] = _memory(compiled, chip)
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  text = compiled.as_text()
  if hlo_path:
    with open(hlo_path, "w", encoding="utf-8") as f:
      f.write(text)
  summary = hlo.summarize(text)
  report["flops"] = _flops(cost, lowered.as_text(), summary, cfg, len(devices))
  report["collectives"] = summary.collectives
  report["estimate"] = _estimate(report["flops"], cost, summary.collectives, cfg, topo,
                                 report["device_kind"])
  return report

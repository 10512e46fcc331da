"""Compile the real train step for a TPU slice ahead of time, and read its memory and cost.

The step is `scaling.train.state.build`'s, on a mesh made by `scaling.parallel.mesh` from the
slice's devices, with the rules table, donation, scan/remat and dtype of the config, so whatever
compiles here compiles on the pod. Inputs are abstract (ShapeDtypeStructs): nothing is allocated
and nothing runs. The report's figures are per device unless named otherwise.
"""

import math
import re
import time

from scaling import hardware, models
from scaling.compile import hlo
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


def _out_of_memory(message: str, chip: hardware.Chip, state: dict) -> dict:
  """The figures XLA's refusal gives: the temporaries it needed (its first size) and the HBM it
  had (its last). The total adds the arguments, our count of the state (params and moments, donated
  so the outputs alias them): the temporaries alone understate what the step needs."""
  sizes = [float(n) * _UNITS[unit] for n, unit in _SIZE.findall(message)]
  temp = int(sizes[0]) if sizes else None
  total = None if temp is None else temp + state["total"]
  return {"arguments": state["total"], "outputs": None, "aliased": None, "temp": temp, "code": None,
          "total": total, "hbm": chip.hbm_bytes, "fits": False,
          "headroom": None if total is None else chip.hbm_bytes - total,
          "compiler_error": message.strip().splitlines()[0][:400]}


def _flops(cost: dict, lowered_text: str, summary: hlo.Summary, cfg: TrainConfig,
           devices: int) -> dict:
  """XLA's count with every loop trip: its own figure (loop bodies once) plus the matmul FLOPs of
  the trips it left out, counted from the optimized program's trip counts (the scanned blocks and
  the loops XLA splits matmuls into), plus what Pallas kernels declare, plus our own count of the
  attention kernels that declare nothing (jax's splash kernel: XLA counts it as 0). Against the
  chinchilla count of the model; `matmul_per_step`, from the lowered program, cross-checks the
  matmuls."""
  per_token = models.get(cfg.model.arch).flops_per_token(cfg.model)["chinchilla"]
  model = per_token * cfg.tokens_per_step
  reported = float(cost.get("flops", 0.0)) * devices
  matmul, _ = hlo.matmul_flops(lowered_text)
  counted = (attention.kernel_flops_per_step(cfg.model, "tpu", cfg.batch_size)
             if summary.kernels_without_estimate and hasattr(cfg.model, "attention") else 0.0)
  kernels = summary.kernel_flops * devices + counted
  xla = reported + (summary.matmul_flops - summary.matmul_flops_once
                    + summary.kernel_flops - summary.kernel_flops_once) * devices + counted
  return {"xla_per_step": xla, "xla_reported_per_step": reported, "matmul_per_step": matmul,
          "kernel_per_step": kernels, "kernels_without_estimate": summary.kernels_without_estimate,
          "loops": {str(k): v for k, v in summary.loops.items()},
          "trip_counts_from": summary.trip_counts,
          "model_per_step": model, "ratio": xla / model if model else None}


# Bytes each device sends per byte of a collective's size, for the ring algorithm over n devices
# (Austin et al. 2025, part 3; Patarasuk & Yuan 2009): an all-reduce is a reduce-scatter then an
# all-gather, 2(n−1)/n of its size; an all-gather (n−1)/n of its result; a reduce-scatter (n−1)/n
# of its operand; an all-to-all (n−1)/n; a collective-permute its whole size, once.
def _algorithm_bytes(kind: str, n: int, result: float, operand: float) -> float:
  if kind == "all-reduce":
    return 2 * (n - 1) / n * result
  if kind == "reduce-scatter":
    return (n - 1) / n * operand
  if kind in ("all-gather", "all-to-all"):
    return (n - 1) / n * result
  return result


def _links(group: list, devices: list, topo, chip: hardware.Chip,
           one_way: bool = False) -> tuple[str, float]:
  """("ici" or "dcn", bytes/s one device sends at) for a collective over `group` (logical ids, as
  the program's device assignment, the mesh's order). Over ICI: one link each way per torus
  dimension the group spans, both ways round where the dimension wraps (a ring), one way on a line;
  a permute (`one_way`) sends over one link. Across slices: the data-center network's per-chip
  share."""
  members = [devices[i] for i in group if i < len(devices)]
  if len({getattr(d, "slice_index", 0) for d in members}) > 1:
    return "dcn", chip.dcn_bytes_per_sec
  coords = [tuple(d.coords) for d in members]
  link = chip.ici_bytes_per_sec / (2 * chip.ici_links)  # one link, one way
  spanned = [dim for dim in range(len(coords[0])) if len({c[dim] for c in coords}) > 1] if coords else []
  if one_way:
    return "ici", link
  return "ici", link * sum(2 if hardware.wraps(topo.generation, topo.shape, dim) else 1
                           for dim in spanned) or link


def _communication(summary: hlo.Summary, devices: list, topo, chip: hardware.Chip) -> dict:
  """Seconds per step each network spends on the step's collectives, one after another."""
  seconds = {"ici": 0.0, "dcn": 0.0}
  sent = {"ici": 0.0, "dcn": 0.0}
  for kind, runs, result, operand, spec in summary.ops:
    groups = hlo.replica_groups(spec, len(devices)) if "replica_groups" in spec else None
    if kind == "collective-permute":
      pair = re.search(r"\{(\d+),(\d+)\}", spec)
      group = [int(pair.group(1)), int(pair.group(2))] if pair else [0, 1]
    else:
      group = groups[0] if groups else list(range(hlo.replica_group_size(spec) or len(devices)))
    if len(group) < 2:
      continue
    network, rate = _links(group, devices, topo, chip, one_way=kind == "collective-permute")
    size = _algorithm_bytes(kind, len(group), result, operand) * runs
    sent[network] += size
    seconds[network] += size / rate if rate else 0.0
  # Collectives across slices leave the program as megascale transfers, by the same algorithms
  # over the slices.
  slices = topo.slices
  for transfer, size in summary.cross_slice.get("by_transfer", {}).items():
    if slices > 1:
      kind = transfer.replace("_", "-")  # what a slice sends: the operand, an all-gather's piece
      moved = _algorithm_bytes(kind, slices, size * slices if kind == "all-gather" else size, size)
      sent["dcn"] += moved
      seconds["dcn"] += moved / chip.dcn_bytes_per_sec
  return {"seconds": seconds, "bytes": sent}


def _estimate(flops: dict, cost: dict, summary: hlo.Summary, cfg: TrainConfig, topo, devices: list,
              device_kind: str) -> dict:
  """Roofline: the step cannot be faster than its FLOPs at peak, its HBM traffic at full HBM
  bandwidth, or its collectives at the bandwidth of the links they cross. With perfect overlap the
  step takes the largest term (`step_seconds_lower_bound`), with none their sum
  (`step_seconds_serial`). A bound, not a prediction."""
  chip = hardware.chip(topo.generation)
  peak = hardware.peak_flops_per_sec(device_kind)
  n = len(devices)
  # MFU counts the model's FLOPs at peak, so the compute term is the larger of the program's and
  # the model's: a bound that can never put MFU above 1.
  compute_s = max(flops["xla_per_step"], flops["model_per_step"]) / n / peak
  reported = float(cost.get("bytes accessed", 0.0))
  accessed = reported + summary.hbm_bytes - summary.hbm_bytes_once
  communication = _communication(summary, devices, topo, chip)
  seconds = {"compute": compute_s, "hbm": accessed / chip.hbm_bytes_per_sec,
             "ici": communication["seconds"]["ici"], "dcn": communication["seconds"]["dcn"]}
  step_s = max(seconds.values())
  return {
      "step_seconds_lower_bound": step_s, "step_seconds_serial": sum(seconds.values()),
      "bound_by": max(seconds, key=seconds.get), "seconds": seconds,
      "bytes_accessed_per_step": accessed, "bytes_accessed_xla_reported": reported,
      "ici_bytes_per_step": communication["bytes"]["ici"],
      "dcn_bytes_per_step": communication["bytes"]["dcn"],
      "mfu_upper_bound": flops["model_per_step"] / (step_s * n * peak) if step_s else None,
      "tokens_per_sec_upper_bound": cfg.tokens_per_step / step_s if step_s else None,
      "peak_flops_per_sec": peak, "hbm_bytes_per_sec": chip.hbm_bytes_per_sec,
      "ici_bytes_per_sec": chip.ici_bytes_per_sec, "dcn_bytes_per_sec": chip.dcn_bytes_per_sec,
      "source": chip.source,
  }


def advice(report: dict) -> str:
  """One line: how far over HBM the step is, and what would bring it under."""
  memory, state = report["memory_per_device"], report["state_bytes"]["total"]
  hbm, total = memory["hbm"], memory["total"]
  over = f"{total / 2**30:.2f} GiB per device > {hbm / 2**30:.2f} GiB HBM ({total / hbm:.2f}×)"
  mesh, cfg, devices = report["mesh"], report["config"], report["devices"]
  more_sharding = _more_parameter_sharding(mesh, cfg["mesh"].get("rules", ""), devices)
  helps = [more_sharding] if more_sharding else []
  if state >= hbm:
    helps.append(f"a bigger slice (parameters and Adam moments alone take {state / 2**30:.2f} GiB "
                 "per device)")
  else:
    family_keys = models.get(cfg["model"]["arch"]).config.key_names()
    if "remat" in family_keys and cfg["model"]["remat"] != "full":
      helps.append("--config.model.remat=full")
    helps.append(f"a smaller batch than batch_size={cfg['batch_size']}")
  return f"{report['topology']}: does not fit: {over}; try " + ", or ".join(helps)


def _more_parameter_sharding(mesh: dict, rules_text: str, devices: int) -> str | None:
  """Advice to move the data-parallel replicas onto the mesh axis the run's rules shard the
  parameters over (`embed`'s: fsdp by default), or to shard them at all; None if nothing to move."""
  from scaling.parallel import rules

  split = rules.mesh_axes("embed", rules.table(rules.parse(rules_text)))
  if not split:
    return "sharded parameters (--config.mesh.rules=embed=fsdp)"
  if "data" in split or mesh["data"] == 1:
    return None
  others = math.prod(size for axis, size in mesh.items() if axis not in (split[0], "data"))
  return f"more {split[0]} (--config.mesh.{split[0]}={devices // others} --config.mesh.data=1)"


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
      "device_kind": devices[0].device_kind, "devices": len(devices), "processes": topo.hosts, "slices": topo.slices,
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
    report["memory_per_device"] = _out_of_memory(str(e), chip, report["state_bytes"])
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
  report["cross_slice"] = summary.cross_slice
  report["estimate"] = _estimate(report["flops"], cost, summary, cfg, topo,
                                 list(mesh.devices.flat), report["device_kind"])
  return report

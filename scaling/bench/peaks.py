"""What the hardware could do, for MFU = model FLOP/s ÷ peak FLOP/s (Chowdhery et al. 2022, App. B).

Accelerators: the vendors' dense peaks per device. A CPU has no peak worth quoting (it depends on
the cores, clock, vector units and neighbours a machine gives us), so on CPU the bench measures the
best float32 matmul throughput this process reaches, in the same run as the model.
"""

import math
import re
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp

from scaling import hardware

# device_kind (matched whole) -> dense peak FLOP/s per device, by compute dtype; datasheet figures.
# float32 on NVIDIA is the TF32 tensor-core peak, because at JAX's default matmul precision XLA
# computes float32 matmuls in TF32 there; NVIDIA quotes TF32 with sparsity, these are halved. TPUs
# publish bf16 peaks only (their float32 matmuls run as bf16 passes), so float32 MFU is n/a there;
# their rows are the chips of scaling/hardware.py's table.
PEAKS = (
    (r"NVIDIA H100 PCIe", {"bfloat16": 756e12, "float32": 378e12}),
    (r"NVIDIA H100.*", {"bfloat16": 989e12, "float32": 494.5e12}),  # SXM
    (r"NVIDIA H200.*", {"bfloat16": 989e12, "float32": 494.5e12}),
    (r"NVIDIA A100.*", {"bfloat16": 312e12, "float32": 156e12}),
    *((generation.chip.device_kind, {"bfloat16": generation.chip.bf16_flops_per_sec})
      for generation in hardware.GENERATIONS.values() if generation.chip),
)


def table_peak(device_kind: str, dtype: str) -> float | None:
  """The published dense peak of one device for `dtype` compute, or None when there is none."""
  for pattern, peaks in PEAKS:
    if re.fullmatch(pattern, device_kind):
      return peaks.get(dtype)
  return None


def mfu(model_flops_per_sec: float, peak_flops_per_sec: float | None) -> float | None:
  """Model FLOPs utilization as a fraction; None without a peak to compare against."""
  if not peak_flops_per_sec:
    return None
  return model_flops_per_sec / peak_flops_per_sec


def matmul_probe(n: int, min_seconds: float = 0.05) -> tuple[Callable[[], None], float]:
  """A jitted float32 [n, n] @ [n, n], dispatched back to back often enough that one run lasts about
  `min_seconds` (so timer and dispatch overheads vanish): (run, FLOPs per run)."""
  key_a, key_b = jax.random.split(jax.random.key(0))
  a_NxN = jax.random.normal(key_a, (n, n), jnp.float32)
  b_NxN = jax.random.normal(key_b, (n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  matmul(a_NxN, b_NxN).block_until_ready()
  start = time.perf_counter()
  matmul(a_NxN, b_NxN).block_until_ready()
  repeats = max(1, math.ceil(min_seconds / (time.perf_counter() - start)))

  def run():
    for _ in range(repeats):
      out_NxN = matmul(a_NxN, b_NxN)
    out_NxN.block_until_ready()

  return run, repeats * 2.0 * n**3


def best_matmul_size(sizes, repeats: int = 3) -> tuple[int, dict[int, float]]:
  """The size whose matmul reaches the most FLOP/s (median of `repeats`), and FLOP/s for each size."""
  by_size = {}
  for n in sizes:
    run, flops = matmul_probe(n)
    seconds = []
    for _ in range(repeats):
      start = time.perf_counter()
      run()
      seconds.append(time.perf_counter() - start)
    by_size[n] = flops / statistics.median(seconds)
  return max(by_size, key=by_size.get), by_size


def cpu_peak(by_size: dict[int, float], round_flops_per_sec: list[float]) -> float:
  """The fastest matmul throughput seen: the size probe's best and every in-round re-timing.

  Other processes only ever slow a timing down, so the fastest one is the closest to what the
  hardware can do; a median lets one crowded 50 ms probe lower the peak and push MFU above 100 %.
  """
  return max([*by_size.values(), *round_flops_per_sec])

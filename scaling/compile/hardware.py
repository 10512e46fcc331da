"""Per-chip figures of each TPU generation: what the roofline bound and the HBM check use.

Peak bf16 FLOP/s come from `scaling.bench.peaks` (the datasheet table MFU already uses). HBM
capacity, HBM bandwidth and bidirectional ICI bandwidth per chip are from Google's Cloud TPU
system-architecture pages, except v4's ICI, which that page does not list:
- v4: 32 GiB, 1200 GB/s (cloud.google.com/tpu/docs/v4); ICI 6 links × 45 GB/s each way
  (Austin et al. 2025, "How to Scale Your Model", part 2 "TPUs") = 540 GB/s bidirectional.
- v5p: 95 GiB, 2765 GB/s, ICI 1200 GB/s (cloud.google.com/tpu/docs/v5p).
- v5e (v5litepod): 16 GiB, 819 GB/s, ICI 400 GB/s (cloud.google.com/tpu/docs/v5e).
- v6e: 32 GiB, 1638 GB/s, ICI 800 GB/s (cloud.google.com/tpu/docs/v6e).
HBM capacity is in GiB as the compiler counts it (it reports 15.75 GiB usable on a v5e's 16).
"""

import dataclasses

from scaling.bench import peaks

GiB = 1 << 30


@dataclasses.dataclass(frozen=True)
class Chip:
  hbm_bytes: int
  hbm_bytes_per_sec: float
  ici_bytes_per_sec: float  # bidirectional, all links of one chip
  source: str


CHIPS = {
    "v4": Chip(32 * GiB, 1200e9, 540e9, "cloud.google.com/tpu/docs/v4; ICI: Austin et al. 2025"),
    "v5p": Chip(95 * GiB, 2765e9, 1200e9, "cloud.google.com/tpu/docs/v5p"),
    "v5litepod": Chip(16 * GiB, 819e9, 400e9, "cloud.google.com/tpu/docs/v5e"),
    "v6e": Chip(32 * GiB, 1638e9, 800e9, "cloud.google.com/tpu/docs/v6e"),
}


def chip(generation: str) -> Chip:
  return CHIPS[generation]


def peak_flops_per_sec(device_kind: str) -> float:
  """bf16 dense peak of one chip (TPUs publish no other; their f32 matmuls run as bf16 passes)."""
  peak = peaks.table_peak(device_kind, "bfloat16")
  if peak is None:
    raise KeyError(f"no peak FLOP/s for {device_kind!r} in scaling/bench/peaks.py")
  return peak

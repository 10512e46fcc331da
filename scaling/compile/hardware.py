"""Per-chip figures of each TPU generation: what the roofline bound and the HBM check use.

Peak bf16 FLOP/s come from `scaling.bench.peaks` (the datasheet table MFU already uses). HBM
capacity, HBM bandwidth and bidirectional ICI bandwidth per chip are from Google's Cloud TPU
system-architecture pages, except v4's ICI, which that page does not list:
- v4: 32 GiB, 1200 GB/s (cloud.google.com/tpu/docs/v4); ICI 6 links × 45 GB/s each way
  (Austin et al. 2025, "How to Scale Your Model", part 2 "TPUs") = 540 GB/s bidirectional.
- v5p: 95 GiB, 2765 GB/s, ICI 1200 GB/s (cloud.google.com/tpu/docs/v5p).
- v5e (v5litepod): 16 GiB, 819 GB/s, ICI 400 GB/s (cloud.google.com/tpu/docs/v5e).
- v6e: 32 GiB, 1638 GB/s, ICI 800 GB/s (cloud.google.com/tpu/docs/v6e).
HBM capacity is in GiB as the compiler counts it, and what it lets a program use: 15.75 GiB of a
v5e's 16 (XLA's own out-of-memory message). Links: a chip of a 3D torus (v4, v5p) has 6 ICI links,
of a 2D torus (v5e, v6e) 4 (the same pages). DCN, the data-center network between slices, per chip:
v5p 50 Gbit/s (cloud.google.com/tpu/docs/v5p); v5e 6.4 and v6e 25.6 Tbit/s per 256-chip pod
(cloud.google.com/tpu/docs/v6e's comparison table), 25 and 100 Gbit/s per chip; v4's is not
published there, so v4 plans no multi-slice run.
"""

import dataclasses

from scaling.bench import peaks

GiB = 1 << 30


@dataclasses.dataclass(frozen=True)
class Chip:
  hbm_bytes: int
  hbm_bytes_per_sec: float
  ici_bytes_per_sec: float  # bidirectional, all links of one chip
  ici_links: int
  dcn_bytes_per_sec: float | None  # one chip's share of its host's network
  source: str


CHIPS = {
    "v4": Chip(32 * GiB, 1200e9, 540e9, 6, None,
               "cloud.google.com/tpu/docs/v4; ICI: Austin et al. 2025"),
    "v5p": Chip(95 * GiB, 2765e9, 1200e9, 6, 50e9 / 8, "cloud.google.com/tpu/docs/v5p"),
    "v5litepod": Chip(int(15.75 * GiB), 819e9, 400e9, 4, 25e9 / 8,
                      "cloud.google.com/tpu/docs/v5e; DCN: cloud.google.com/tpu/docs/v6e"),
    "v6e": Chip(32 * GiB, 1638e9, 800e9, 4, 100e9 / 8, "cloud.google.com/tpu/docs/v6e"),
}


def chip(generation: str) -> Chip:
  return CHIPS[generation]


def wraps(generation: str, shape: tuple[int, ...], dim: int) -> bool:
  """Whether dimension `dim` of a slice is a ring (wraparound links) rather than a line: in a 3D
  torus, slices of whole 4×4×4 cubes (every dimension a multiple of 4); in a 2D one, only the full
  16×16 pod (Austin et al. 2025, part 2; the Cloud TPU topology pages)."""
  if shape[dim] < 3:
    return False
  if len(shape) == 3:
    return all(n % 4 == 0 for n in shape)
  return tuple(shape) == (16, 16)


def peak_flops_per_sec(device_kind: str) -> float:
  """bf16 dense peak of one chip (TPUs publish no other; their f32 matmuls run as bf16 passes)."""
  peak = peaks.table_peak(device_kind, "bfloat16")
  if peak is None:
    raise KeyError(f"no peak FLOP/s for {device_kind!r} in scaling/bench/peaks.py")
  return peak

"""Every TPU generation in one table: how its slices are named and laid out, and what a chip can do.

`scaling bench` (MFU against the bf16 peak), `scaling compile` (slice shapes, HBM check, roofline),
`scaling sweep` (Ray resources: hosts of a slice) and `scaling launch tpu` (runtime, slice sizes)
all read `GENERATIONS`; nothing else writes a TPU figure down. It imports no JAX and no stage, so
every stage may import it. Adding a generation is one row (and its shape table if it is new).

Spellings: the key is the accelerator-type prefix that gcloud, Ray and `--topology` take
(`v5litepod-16`); `libtpu` is the compile-only client's topology prefix (`v5e:4x4`); a chip's
`device_kind` is what `jax.devices()` reports (`TPU v5 lite`), matched whole. Per-chip figures are
cited in each row's `source`; slice shapes, host layouts and per-chip figures come from Google's
Cloud TPU pages (cloud.google.com/tpu/docs/v4, /v5p, /v5e, /v6e: the configuration and
system-architecture tables), runtime versions from cloud.google.com/tpu/docs/runtimes
(tpu-ubuntu2204-base for v4 and older), v2 and v3 slice sizes from cloud.google.com/tpu/docs/v2,
/v3. HBM is in GiB as the compiler counts it, and what it lets a program use: 15.75 GiB of a v5e's
16 (XLA's own out-of-memory message). ICI bandwidth is bidirectional, all links of one chip; a chip
of a 3D torus (v4, v5p) has 6 links, of a 2D torus (v5e, v6e) 4. DCN, the data-center network
between slices, is one chip's share of its host's: v5e 6.4 and v6e 25.6 Tbit/s per 256-chip pod
(the v6e page's comparison table) are 25 and 100 Gbit/s per chip; v4's is not published there.
bf16 peaks are dense, per chip (TPUs publish no other; their float32 matmuls run as bf16 passes).
"""

import dataclasses
import re

GiB = 1 << 30

# Chips of a slice -> its torus shape, for the default (untwisted) shapes of each torus family.
TORUS_3D = {4: "2x2x1", 8: "2x2x2", 16: "2x2x4", 32: "2x4x4", 64: "4x4x4", 128: "4x4x8",
            256: "4x8x8", 512: "8x8x8", 1024: "8x8x16", 2048: "8x16x16", 4096: "16x16x16"}
TORUS_2D = {1: "1x1", 4: "2x2", 8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16",
            256: "16x16"}


@dataclasses.dataclass(frozen=True)
class Chip:
  """What one chip can do: the roofline bound, the HBM check and MFU read these."""

  device_kind: str  # regex, matched whole against jax's device_kind
  bf16_flops_per_sec: float
  hbm_bytes: int
  hbm_bytes_per_sec: float
  ici_bytes_per_sec: float  # bidirectional, all links of one chip
  ici_links: int
  dcn_bytes_per_sec: float | None  # one chip's share of its host's network; None: not published
  source: str


@dataclasses.dataclass(frozen=True)
class Generation:
  """How a generation's slices are named, laid out and started.

  `counts_cores`: the accelerator type's number counts TensorCores, two a chip (v4-8 is 4 chips),
  rather than chips. A slice of up to `single_host_chips` chips sits on one host; a larger one is
  hosts of `host_bounds` chips each. `libtpu` and `shapes` are None for a generation `scaling
  compile` does not map (each v2/v3 TensorCore is its own device, no megacore), whose slice sizes
  are then `slices` (accelerator-type numbers).
  """

  runtime_version: str  # gcloud's --version for JAX
  counts_cores: bool
  host_bounds: tuple[int, int, int]
  single_host_chips: int
  libtpu: str | None
  shapes: dict[int, str] | None
  slices: tuple[int, ...] | None
  chip: Chip | None

  @property
  def chips_per_host(self) -> int:
    """Of each host of a slice larger than one host."""
    return self.host_bounds[0] * self.host_bounds[1] * self.host_bounds[2]

  @property
  def cores_per_chip(self) -> int:
    """What the accelerator type's number counts per chip."""
    return 2 if self.counts_cores else 1


# Chip(device_kind, bf16 FLOP/s, HBM bytes, HBM bytes/s, ICI bytes/s, ICI links, DCN bytes/s, source)
GENERATIONS = {
    "v2": Generation("tpu-ubuntu2204-base", counts_cores=True, host_bounds=(2, 2, 1),
                     single_host_chips=4, libtpu=None, shapes=None,
                     slices=(8, 32, 128, 256, 512), chip=None),
    "v3": Generation("tpu-ubuntu2204-base", counts_cores=True, host_bounds=(2, 2, 1),
                     single_host_chips=4, libtpu=None, shapes=None,
                     slices=(8, 32, 64, 128, 256, 512, 1024, 2048), chip=None),
    # v4's ICI is not on its page: 6 links × 45 GB/s each way (Austin et al. 2025, "How to Scale
    # Your Model", part 2 "TPUs") = 540 GB/s bidirectional. Its DCN is not published.
    "v4": Generation("tpu-ubuntu2204-base", counts_cores=True, host_bounds=(2, 2, 1),
                     single_host_chips=4, libtpu="v4", shapes=TORUS_3D, slices=None,
                     chip=Chip(r"TPU v4", 275e12, 32 * GiB, 1200e9, 540e9, 6, None,
                               "cloud.google.com/tpu/docs/v4; ICI: Austin et al. 2025")),
    "v5p": Generation("v2-alpha-tpuv5", counts_cores=True, host_bounds=(2, 2, 1),
                      single_host_chips=4, libtpu="v5p", shapes=TORUS_3D, slices=None,
                      chip=Chip(r"TPU v5p?", 459e12, 95 * GiB, 2765e9, 1200e9, 6, 50e9 / 8,
                                "cloud.google.com/tpu/docs/v5p")),
    "v5litepod": Generation("v2-alpha-tpuv5-lite", counts_cores=False, host_bounds=(2, 2, 1),
                            single_host_chips=8, libtpu="v5e", shapes=TORUS_2D, slices=None,
                            chip=Chip(r"TPU v5( lite|e)", 197e12, int(15.75 * GiB), 819e9, 400e9,
                                      4, 25e9 / 8, "cloud.google.com/tpu/docs/v5e; DCN: "
                                      "cloud.google.com/tpu/docs/v6e")),
    "v6e": Generation("v2-alpha-tpuv6e", counts_cores=False, host_bounds=(2, 2, 1),
                      single_host_chips=8, libtpu="v6e", shapes=TORUS_2D, slices=None,
                      chip=Chip(r"TPU v6( lite|e)", 918e12, 32 * GiB, 1638e9, 800e9, 4, 100e9 / 8,
                                "cloud.google.com/tpu/docs/v6e")),
}


def compiled() -> list[str]:
  """The generations `scaling compile` maps to libtpu topologies."""
  return [name for name, generation in GENERATIONS.items() if generation.libtpu]


def chip(generation: str) -> Chip:
  return GENERATIONS[generation].chip


def peak_flops_per_sec(device_kind: str) -> float:
  """bf16 dense peak of one chip, by the device_kind jax reports."""
  for generation in GENERATIONS.values():
    if generation.chip and re.fullmatch(generation.chip.device_kind, device_kind):
      return generation.chip.bf16_flops_per_sec
  raise KeyError(f"no peak FLOP/s for {device_kind!r} in scaling/hardware.py")


def wraps(generation: str, shape: tuple[int, ...], dim: int) -> bool:
  """Whether dimension `dim` of a slice is a ring (wraparound links) rather than a line: in a 3D
  torus, slices of whole 4×4×4 cubes (every dimension a multiple of 4); in a 2D one, only the full
  16×16 pod (Austin et al. 2025, part 2; the Cloud TPU topology pages)."""
  if shape[dim] < 3:
    return False
  if len(shape) == 3:
    return all(n % 4 == 0 for n in shape)
  return tuple(shape) == (16, 16)

"""A Cloud TPU accelerator type (`v5p-32`, `v5litepod-16`, ...) as the slice JAX compiles for.

The name is the one `gcloud` and `scaling launch tpu --accelerator-type` take. For v4 and v5p its
number counts TensorCores, two per chip, which JAX drives as one device ("megacore"); for v5litepod
and v6e it counts chips. Shapes and hosts follow the Cloud TPU docs' configuration tables
(cloud.google.com/tpu/docs/v4, /v5p, /v5e, /v6e): a 3D slice has 4 chips (2x2x1) per host, a 2D
slice of 16 or more chips has 4 per host, smaller 2D slices sit on one host. The devices come from
libtpu's compile-only client, so no TPU needs to be attached.
"""

import dataclasses
import os

from scaling.errors import InputError

# Chips -> slice shape, for the default (untwisted) shapes of each family.
SHAPES_3D = {4: "2x2x1", 8: "2x2x2", 16: "2x2x4", 32: "2x4x4", 64: "4x4x4", 128: "4x4x8",
             256: "4x8x8", 512: "8x8x8", 1024: "8x8x16", 2048: "8x16x16", 4096: "16x16x16"}
SHAPES_2D = {1: "1x1", 4: "2x2", 8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16",
             256: "16x16"}
# Generation prefix of the accelerator type -> (libtpu topology prefix, TensorCores counted per chip).
GENERATIONS = {"v4": ("v4", 2), "v5p": ("v5p", 2), "v5litepod": ("v5e", 1), "v6e": ("v6e", 1)}
# Generations `scaling launch tpu` starts but this does not compile for: libtpu compiles for them,
# but each TensorCore is its own device (no megacore) and no per-chip table here covers them.
UNMAPPED = ("v2", "v3")
INSTALL_HINT = 'pip install -e ".[tpu]" (jax[tpu]: libtpu, which compiles for TPU on any machine)'


@dataclasses.dataclass(frozen=True)
class Topology:
  accelerator_type: str  # e.g. "v5p-32"
  generation: str  # v4 | v5p | v5litepod | v6e
  name: str  # libtpu's topology name, e.g. "v5p:2x2x4"
  chips: int  # of one slice
  chips_per_host: tuple[int, int, int]
  slices: int = 1  # slices joined by the data-center network (multi-slice)

  @property
  def hosts(self) -> int:
    """Of every slice together (one process each)."""
    per_host = self.chips_per_host[0] * self.chips_per_host[1] * self.chips_per_host[2]
    return self.chips // per_host * self.slices

  @property
  def shape(self) -> tuple[int, ...]:
    """One slice's chips along each torus dimension."""
    return tuple(int(n) for n in self.name.split(":")[1].split("x"))


def known_types() -> list[str]:
  """Every accelerator type this maps, smallest slice first within each generation."""
  names = []
  for generation, (_, cores_per_chip) in GENERATIONS.items():
    shapes = SHAPES_3D if cores_per_chip == 2 else SHAPES_2D
    names += [f"{generation}-{chips * cores_per_chip}" for chips in shapes]
  return names


def parse(accelerator_type: str, num_slices: int = 1) -> Topology:
  """The slice `accelerator_type` names, `num_slices` of them joined by the data-center network."""
  generation, _, count = accelerator_type.rpartition("-")
  if generation in UNMAPPED:
    raise InputError(f"--topology {accelerator_type}: scaling compile covers "
                     f"{', '.join(GENERATIONS)}, not {generation} (each {generation} TensorCore is "
                     "its own device and its memory and bandwidth are not in scaling/compile/"
                     "hardware.py); plan on a v4 slice of the same chip count")
  if generation not in GENERATIONS or not count.isdigit():
    raise InputError(f"--topology {accelerator_type!r}: not a TPU accelerator type; expected "
                     f"GENERATION-N with GENERATION one of {', '.join(GENERATIONS)} (e.g. v5p-32)")
  prefix, cores_per_chip = GENERATIONS[generation]
  chips, remainder = divmod(int(count), cores_per_chip)
  shapes = SHAPES_3D if cores_per_chip == 2 else SHAPES_2D
  if remainder or chips not in shapes:
    sizes = ", ".join(f"{generation}-{c * cores_per_chip}" for c in shapes)
    raise InputError(f"--topology {accelerator_type}: no slice of that size; known: {sizes}")
  shape = shapes[chips]
  if cores_per_chip == 2 or chips >= 16:
    per_host = (2, 2, 1)
  else:
    per_host = {1: (1, 1, 1), 4: (2, 2, 1), 8: (2, 4, 1)}[chips]
  if num_slices < 1:
    raise InputError(f"--num-slices {num_slices}: must be at least 1")
  if num_slices > 1 and generation == "v4":
    raise InputError(f"--num-slices {num_slices}: v4's data-center network bandwidth is not in "
                     "scaling/compile/hardware.py; plan multi-slice on v5p, v5litepod or v6e")
  return Topology(accelerator_type, generation, f"{prefix}:{shape}", chips, per_host, num_slices)


def compile_only_environment(topology: Topology) -> None:
  """Off a TPU VM, libtpu cannot read the slice from the VM's metadata and says so on stderr: name
  it ourselves. And it takes a machine-wide lock (/tmp/libtpu_lockfile) that would stop a second
  compiling process; with no chip to guard, allow several. On a TPU VM nothing changes."""
  from scaling import jax_platforms

  if not jax_platforms.tpu_chips_attached():
    os.environ.setdefault("TPU_ACCELERATOR_TYPE", topology.accelerator_type)
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")


def devices(topology: Topology) -> list:
  """The slice's devices, in libtpu's order, for compiling only (nothing runs on them)."""
  from scaling import jax_platforms

  if not jax_platforms.libtpu_installed(os.environ):
    raise InputError(f"compiling for a TPU topology needs libtpu: {INSTALL_HINT}")
  compile_only_environment(topology)
  from jax.experimental import topologies

  options = {"chips_per_host_bounds": topology.chips_per_host}
  if GENERATIONS[topology.generation][1] == 2:
    options["chip_config_name"] = "megacore"
  if topology.slices > 1:
    options["num_slices"] = topology.slices
  description = topologies.get_topology_desc(topology_name=topology.name, platform="tpu", **options)
  return list(description.devices)

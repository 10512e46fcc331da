"""A Cloud TPU accelerator type (`v5p-32`, `v5litepod-16`, ...) as the slice JAX compiles for.

The name is the one `gcloud` and `scaling launch tpu --accelerator-type` take; how its number
counts chips, the slice's torus shape and its hosts are the generation's row of
`scaling.hardware.GENERATIONS`. The devices come from libtpu's compile-only client, so no TPU needs
to be attached.
"""

import dataclasses
import os

from scaling import hardware
from scaling.errors import InputError

# Generations `scaling launch tpu` starts but this does not compile for: libtpu compiles for them,
# but each TensorCore is its own device (no megacore) and the table holds no chip figures for them.
UNMAPPED = tuple(name for name, generation in hardware.GENERATIONS.items() if not generation.libtpu)
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
  for name in hardware.compiled():
    generation = hardware.GENERATIONS[name]
    names += [f"{name}-{chips * generation.cores_per_chip}" for chips in generation.shapes]
  return names


def parse(accelerator_type: str, num_slices: int = 1) -> Topology:
  """The slice `accelerator_type` names, `num_slices` of them joined by the data-center network."""
  generation, _, count = accelerator_type.rpartition("-")
  covered = ", ".join(hardware.compiled())
  if generation in UNMAPPED:
    raise InputError(f"--topology {accelerator_type}: scaling compile covers {covered}, not "
                     f"{generation} (each {generation} TensorCore is its own device and its "
                     "memory and bandwidth are not in scaling/hardware.py); plan on a v4 slice of "
                     "the same chip count")
  if generation not in hardware.GENERATIONS or not count.isdigit():
    raise InputError(f"--topology {accelerator_type!r}: not a TPU accelerator type; expected "
                     f"GENERATION-N with GENERATION one of {covered} (e.g. v5p-32)")
  row = hardware.GENERATIONS[generation]
  chips, remainder = divmod(int(count), row.cores_per_chip)
  if remainder or chips not in row.shapes:
    sizes = ", ".join(f"{generation}-{c * row.cores_per_chip}" for c in row.shapes)
    raise InputError(f"--topology {accelerator_type}: no slice of that size; known: {sizes}")
  shape = row.shapes[chips]
  if chips <= row.single_host_chips:  # the whole slice on one host
    per_host = tuple([*(int(n) for n in shape.split("x")), 1][:3])
  else:
    per_host = row.host_bounds
  if num_slices < 1:
    raise InputError(f"--num-slices {num_slices}: must be at least 1")
  if num_slices > 1 and row.chip.dcn_bytes_per_sec is None:
    multi_slice = [name for name in hardware.compiled()
                   if hardware.chip(name).dcn_bytes_per_sec is not None]
    raise InputError(f"--num-slices {num_slices}: {generation}'s data-center network bandwidth is "
                     f"not in scaling/hardware.py; plan multi-slice on "
                     f"{', '.join(multi_slice[:-1])} or {multi_slice[-1]}")
  return Topology(accelerator_type, generation, f"{row.libtpu}:{shape}", chips, per_host,
                  num_slices)


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
  if hardware.GENERATIONS[topology.generation].counts_cores:
    options["chip_config_name"] = "megacore"
  if topology.slices > 1:
    options["num_slices"] = topology.slices
  description = topologies.get_topology_desc(topology_name=topology.name, platform="tpu", **options)
  return list(description.devices)

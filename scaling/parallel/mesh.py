"""Device mesh with axes (data, fsdp, tensor), sized from the config, multi-host and multi-slice
aware: over several TPU slices the data axis (else fsdp) spans the slices, so only its collectives
cross the slower data-center network (DCN), and the rest of the mesh stays inside a slice's ICI."""

import math

import jax
from jax.sharding import AxisType, Mesh

from scaling.errors import InputError
from scaling.parallel.rules import MESH_AXES


def mesh_shape(sizes: dict, n_devices: int) -> tuple[int, int, int]:
  """Resolves `mesh.*` sizes, where at most one axis is -1 (= whatever devices are left)."""
  for axis in MESH_AXES:
    size = sizes[axis]
    if not isinstance(size, int) or isinstance(size, bool) or (size <= 0 and size != -1):
      raise InputError(f"mesh.{axis} must be a positive integer or -1, got {size!r}")
  fill = [axis for axis in MESH_AXES if sizes[axis] == -1]
  if len(fill) > 1:
    raise InputError(f"only one of mesh.{{data,fsdp,tensor}} may be -1, got {', '.join(fill)}")
  fixed = math.prod(sizes[axis] for axis in MESH_AXES if sizes[axis] != -1)
  if n_devices % fixed:
    raise InputError(
        f"mesh {({axis: sizes[axis] for axis in MESH_AXES})} does not divide the {n_devices} devices "
        f"(the product of mesh.data, mesh.fsdp, mesh.tensor must be {n_devices})")
  shape = tuple(n_devices // fixed if sizes[axis] == -1 else sizes[axis] for axis in MESH_AXES)
  if math.prod(shape) != n_devices:
    raise InputError(
        f"mesh data={shape[0]} fsdp={shape[1]} tensor={shape[2]} uses {math.prod(shape)} of "
        f"{n_devices} devices; set one of mesh.* to -1 or make the product {n_devices}")
  return shape


def slice_count(devices) -> int:
  return len({getattr(d, "slice_index", 0) for d in devices})


def split_over_slices(shape: tuple[int, int, int], slices: int) -> tuple[tuple, tuple]:
  """(per-slice ICI shape, DCN shape) of a mesh over `slices` slices: data across slices if it
  divides, else fsdp."""
  for axis in range(2):
    if shape[axis] % slices == 0:
      dcn = tuple(slices if i == axis else 1 for i in range(len(shape)))
      return tuple(n // d for n, d in zip(shape, dcn)), dcn
  raise InputError(
      f"mesh data={shape[0]} fsdp={shape[1]} tensor={shape[2]} over {slices} slices: mesh.data "
      f"(or mesh.fsdp) must be a multiple of {slices}, so that one axis spans the slices")


def make_mesh(sizes: dict, devices=None) -> Mesh:
  """A mesh over `devices` (default: every device of every process), with GSPMD-style Auto axes."""
  devices = jax.devices() if devices is None else list(devices)
  shape = mesh_shape(sizes, len(devices))
  axis_types = (AxisType.Auto,) * len(MESH_AXES)
  slices = slice_count(devices)
  if slices == 1:
    return jax.make_mesh(shape, MESH_AXES, axis_types=axis_types, devices=devices)
  from jax.experimental import mesh_utils

  ici, dcn = split_over_slices(shape, slices)
  grid = mesh_utils.create_hybrid_device_mesh(ici, dcn, devices)
  return Mesh(grid, MESH_AXES, axis_types=axis_types)


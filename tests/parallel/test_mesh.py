"""Mesh sizing and the logical-axis rules."""

import jax
import pytest
from jax.sharding import PartitionSpec

from scaling.errors import InputError
from scaling.parallel import mesh, rules


@pytest.mark.parametrize("sizes,shape", [
    ({"data": -1, "fsdp": 1, "tensor": 1}, (8, 1, 1)),
    ({"data": 2, "fsdp": -1, "tensor": 2}, (2, 2, 2)),
    ({"data": 1, "fsdp": 1, "tensor": -1}, (1, 1, 8)),
    ({"data": 4, "fsdp": 1, "tensor": 2}, (4, 1, 2)),
])
def test_mesh_shape_fills_the_rest(sizes, shape):
  assert mesh.mesh_shape(sizes, 8) == shape


@pytest.mark.parametrize("sizes,named", [
    ({"data": 3, "fsdp": 1, "tensor": 1}, "does not divide"),
    ({"data": 2, "fsdp": 2, "tensor": 1}, "uses 4 of 8"),
    ({"data": -1, "fsdp": -1, "tensor": 1}, "only one"),
    ({"data": 0, "fsdp": 1, "tensor": 1}, "mesh.data"),
    ({"data": 1.5, "fsdp": 1, "tensor": 1}, "mesh.data"),
])
def test_bad_mesh_is_input_error(sizes, named):
  with pytest.raises(InputError, match=named):
    mesh.mesh_shape(sizes, 8)


def test_make_mesh_uses_given_devices():
  m = mesh.make_mesh({"data": 2, "fsdp": 1, "tensor": 2}, jax.devices()[:4])
  assert m.axis_names == ("data", "fsdp", "tensor") and m.devices.shape == (2, 1, 2)


def test_rules_map_logical_axes_to_mesh_axes():
  assert rules.logical_to_spec(("batch", "length")) == PartitionSpec(("data", "fsdp"), None)
  assert rules.logical_to_spec(("embed", "mlp")) == PartitionSpec("fsdp", "tensor")
  assert rules.logical_to_spec(("vocab", None)) == PartitionSpec("tensor", None)
  assert {name for name, _ in rules.RULES} >= {"embed", "mlp", "heads", "vocab", "batch"}


def test_over_slices_data_spans_them_else_fsdp():
  assert mesh.split_over_slices((2, 16, 1), 2) == ((1, 16, 1), (2, 1, 1))
  assert mesh.split_over_slices((1, 32, 1), 2) == ((1, 16, 1), (1, 2, 1))
  with pytest.raises(InputError, match="multiple of 2"):
    mesh.split_over_slices((1, 1, 8), 2)


def test_a_two_slice_mesh_keeps_each_slice_inside_one_data_row():
  """Devices of two v5e slices, from libtpu's compile-only client (as `scaling compile` and a
  multi-slice job see them): the data axis is the slice."""
  from scaling import jax_platforms
  from scaling.compile import topology

  if not jax_platforms.libtpu_installed(__import__("os").environ):
    pytest.skip("needs libtpu")
  devices = topology.devices(topology.parse("v5litepod-4", num_slices=2))
  grid = mesh.make_mesh({"data": 2, "fsdp": -1, "tensor": 1}, devices)
  assert dict(grid.shape) == {"data": 2, "fsdp": 4, "tensor": 1}
  for row in range(2):
    assert {d.slice_index for d in grid.devices[row].flat} == {row}

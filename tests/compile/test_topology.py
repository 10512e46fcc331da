"""Accelerator types map to the slices libtpu compiles for: chips, hosts, devices."""

import pytest

from scaling.compile import topology
from scaling.errors import InputError
from scaling.launch import tpu as launch_tpu


@pytest.mark.parametrize("name, libtpu_name, chips, hosts", [
    ("v4-8", "v4:2x2x1", 4, 1), ("v4-32", "v4:2x2x4", 16, 4), ("v4-128", "v4:4x4x4", 64, 16),
    ("v5p-8", "v5p:2x2x1", 4, 1), ("v5p-16", "v5p:2x2x2", 8, 2), ("v5p-128", "v5p:4x4x4", 64, 16),
    ("v5litepod-1", "v5e:1x1", 1, 1), ("v5litepod-8", "v5e:2x4", 8, 1),
    ("v5litepod-16", "v5e:4x4", 16, 4), ("v5litepod-256", "v5e:16x16", 256, 64),
    ("v6e-4", "v6e:2x2", 4, 1), ("v6e-64", "v6e:8x8", 64, 16), ("v6e-256", "v6e:16x16", 256, 64),
])
def test_accelerator_type_to_slice(name, libtpu_name, chips, hosts):
  slice_ = topology.parse(name)
  assert (slice_.name, slice_.chips, slice_.hosts) == (libtpu_name, chips, hosts)


def test_every_generation_that_launch_knows_is_mapped_and_compiles_to_its_devices():
  generations = {name.rsplit("-", 1)[0] for name in topology.known_types()}
  assert generations | set(topology.UNMAPPED) == set(launch_tpu.RUNTIME_VERSIONS)
  for generation in topology.UNMAPPED:  # launched, not compiled for: one line that says so
    with pytest.raises(InputError, match=f"not {generation}"):
      topology.parse(f"{generation}-8")
  for name in ("v4-16", "v5p-32", "v5litepod-16", "v6e-8"):
    slice_ = topology.parse(name)
    devices = topology.devices(slice_)
    assert len(devices) == slice_.chips
    assert len({d.process_index for d in devices}) == slice_.hosts
    assert devices[0].platform == "tpu"


@pytest.mark.parametrize("name, named", [
    ("v5p-17", "v5p-17"), ("v5litepod-3", "v5litepod-3"), ("v7-8", "v7-8"), ("tpu", "tpu"),
    ("v4-6", "v4-6")])
def test_unknown_accelerator_type_is_an_input_error(name, named):
  with pytest.raises(InputError, match=named):
    topology.parse(name)


def test_slices_multiply_hosts_and_only_whole_cubes_or_full_pods_wrap():
  from scaling import hardware

  two = topology.parse("v5litepod-16", num_slices=2)
  assert (two.shape, two.chips, two.hosts, two.slices) == ((4, 4), 16, 8, 2)
  assert not hardware.wraps("v5litepod", (4, 4), 0) and hardware.wraps("v5litepod", (16, 16), 1)
  assert not hardware.wraps("v5p", (2, 2, 4), 2)  # smaller than a 4×4×4 cube: lines
  assert all(hardware.wraps("v5p", (4, 4, 8), dim) for dim in range(3))

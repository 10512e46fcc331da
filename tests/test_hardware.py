"""The TPU table is the one source: every generation in it is known alike to sweep, launch, compile
and bench, and the stages agree on what its slices are."""

import os

import pytest

from scaling import hardware
from scaling.compile import topology
from scaling.errors import InputError
from scaling.launch import tpu as launch_tpu
from scaling.sweep import resources


def accelerator_types(name: str) -> list[str]:
  """Every slice of a generation that the table lists, as gcloud spells it."""
  generation = hardware.GENERATIONS[name]
  if generation.slices:
    return [f"{name}-{n}" for n in generation.slices]
  return [f"{name}-{chips * generation.cores_per_chip}" for chips in generation.shapes]


@pytest.mark.parametrize("name", hardware.GENERATIONS)
def test_every_slice_is_launched_and_swept_and_compiled_or_refused_in_one_line(name):
  for accelerator_type in accelerator_types(name):
    launch_tpu.check_accelerator_type(accelerator_type)
    vm = launch_tpu.TpuVm("t", "z", accelerator_type)
    assert vm.runtime() == hardware.GENERATIONS[name].runtime_version
    spec = resources.parse(accelerator_type)
    if name in topology.UNMAPPED:
      with pytest.raises(InputError, match=f"not {name} .*scaling/hardware.py") as refused:
        topology.parse(accelerator_type)
      assert "\n" not in str(refused.value)
      continue
    slice_ = topology.parse(accelerator_type)
    # The sweep asks Ray for as many hosts as the compiled program has processes.
    assert (spec.hosts, spec.chips_per_host * spec.hosts) == (slice_.hosts, slice_.chips)
    assert hardware.chip(slice_.generation).hbm_bytes > 0


def test_multi_slice_is_refused_exactly_where_the_table_has_no_dcn_figure():
  for name in hardware.compiled():
    accelerator_type = accelerator_types(name)[0]
    if hardware.chip(name).dcn_bytes_per_sec is None:
      with pytest.raises(InputError, match=f"{name}'s data-center network"):
        topology.parse(accelerator_type, num_slices=2)
    else:
      assert topology.parse(accelerator_type, num_slices=2).hosts == 2 * topology.parse(
          accelerator_type).hosts


def test_the_device_kind_libtpu_reports_has_the_tables_peak_in_bench_and_compile():
  """libtpu's compile-only devices of each generation: MFU (bench) and the roofline (compile) find
  the same bf16 peak by the device_kind JAX reports (needs libtpu; heavy)."""
  from scaling import jax_platforms
  from scaling.bench import peaks

  if not jax_platforms.libtpu_installed(os.environ):
    pytest.skip("needs libtpu")
  for name in hardware.compiled():
    kind = topology.devices(topology.parse(accelerator_types(name)[0]))[0].device_kind
    assert peaks.table_peak(kind, "bfloat16") == hardware.peak_flops_per_sec(kind) \
        == hardware.chip(name).bf16_flops_per_sec, kind
    assert peaks.table_peak(kind, "float32") is None  # TPUs publish bf16 only

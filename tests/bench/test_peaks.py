"""Peaks by device kind and the MFU arithmetic."""

import pytest

from scaling.bench import peaks

KINDS = {
    "NVIDIA H100 80GB HBM3": 989e12,
    "NVIDIA H100 PCIe": 756e12,
    "NVIDIA H200": 989e12,
    "NVIDIA A100-SXM4-80GB": 312e12,
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
    "TPU v5": 459e12,
    "TPU v5p": 459e12,
    "TPU v6 lite": 918e12,
}


@pytest.mark.parametrize("kind,peak", KINDS.items(), ids=KINDS.keys())
def test_bf16_peak_by_device_kind(kind, peak):
  assert peaks.table_peak(kind, "bfloat16") == peak


def test_unknown_kinds_and_unpublished_dtypes_have_no_peak():
  assert peaks.table_peak("cpu", "float32") is None
  assert peaks.table_peak("TPU v4 lite", "bfloat16") is None  # not a v4: matched whole
  assert peaks.table_peak("TPU v5 lite", "float32") is None  # TPUs publish bf16 only
  assert peaks.table_peak("NVIDIA H100 80GB HBM3", "float32") == 494.5e12  # TF32, dense


def test_mfu_against_a_known_peak():
  # 350M-ish model: 2.1e9 FLOPs/token at 235,476 tokens/s on one H100 is half its bf16 peak.
  model_flops_per_sec = 2.1e9 * 235_476.190476
  assert peaks.mfu(model_flops_per_sec, peaks.table_peak("NVIDIA H100 80GB HBM3", "bfloat16")) \
      == pytest.approx(0.5)
  assert peaks.mfu(1e9, None) is None


def test_matmul_probe_counts_its_flops():
  run, flops = peaks.matmul_probe(32, min_seconds=0.0)
  run()
  assert flops == 2 * 32**3
  size, by_size = peaks.best_matmul_size([16, 32], repeats=1)
  assert size in (16, 32) and all(f > 0 for f in by_size.values())


def test_cpu_peak_is_the_fastest_timing_so_one_crowded_probe_cannot_lower_it():
  # Rounds 2-4 shared the cores with another process: the median would be 40e9, the peak is not.
  rounds = [150e9, 40e9, 30e9, 35e9, 160e9]
  assert peaks.cpu_peak({256: 120e9, 512: 140e9}, rounds) == 160e9
  assert peaks.cpu_peak({256: 170e9}, rounds) == 170e9

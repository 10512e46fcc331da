"""JAX does not start libtpu on a machine without TPU chips, and still does on a TPU VM."""

import os
import subprocess
import sys

import pytest

from scaling import jax_platforms


def pci_root(tmp_path, vendors):
  for i, vendor in enumerate(vendors):
    device = tmp_path / f"0000:00:0{i}.0"
    device.mkdir()
    (device / "vendor").write_text(vendor + "\n")
  return str(tmp_path)


def test_no_tpu_chips_names_the_other_platforms(tmp_path):
  environ = {"TPU_LIBRARY_PATH": "/opt/libtpu.so"}
  value = jax_platforms.skip_absent_tpu(environ, pci_root(tmp_path, ["0x8086", "0x10de"]))
  assert value == environ["JAX_PLATFORMS"] and value.endswith("cpu") and "tpu" not in value


def test_tpu_vm_and_explicit_choices_are_left_alone(tmp_path):
  tpu_vm = {"TPU_LIBRARY_PATH": "/opt/libtpu.so"}
  assert jax_platforms.skip_absent_tpu(tpu_vm, pci_root(tmp_path, ["0x8086", "0x1ae0"])) is None
  assert "JAX_PLATFORMS" not in tpu_vm
  chosen = {"TPU_LIBRARY_PATH": "/opt/libtpu.so", "JAX_PLATFORMS": ""}
  assert jax_platforms.skip_absent_tpu(chosen, str(tmp_path / "none")) is None
  assert chosen["JAX_PLATFORMS"] == ""


def test_gpu_plugins_keep_their_platform_and_unknown_plugins_disable_the_choice():
  assert jax_platforms.platforms_without_tpu({"xla_cuda12"}) == "cuda,cpu"
  assert jax_platforms.platforms_without_tpu({"xla_cuda13", "xla_rocm7"}) == "cuda,rocm,cpu"
  assert jax_platforms.platforms_without_tpu(set()) == "cpu"
  assert jax_platforms.platforms_without_tpu({"xla_cuda12", "some_accelerator"}) is None


@pytest.mark.skipif(not jax_platforms.libtpu_installed(os.environ) or jax_platforms.tpu_chips_attached(),
                    reason="needs libtpu installed on a machine without TPU chips")
def test_a_process_importing_scaling_prints_nothing_from_libtpu():
  env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
  script = "import scaling, jax; print(jax.default_backend())"
  result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() in ("cpu", "gpu") and result.stderr == ""

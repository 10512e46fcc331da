"""Keep JAX from starting libtpu on a machine without TPU chips.

With `libtpu` installed (the `tpu` extra, which `scaling compile` needs), JAX tries every backend it
knows when JAX_PLATFORMS is unset, and libtpu, finding no TPU, prints its failed start-up on stderr in
every process. JAX already skips CUDA when no NVIDIA GPU is visible; this does the same for TPU, by
naming the platforms this machine can start before JAX reads JAX_PLATFORMS. AOT compilation for a TPU
topology (`jax.experimental.topologies`) loads libtpu itself, so it still works with the TPU skipped.
Nothing changes on a TPU VM, when JAX_PLATFORMS or PJRT_NAMES_AND_LIBRARY_PATHS is set, or when an
installed JAX plugin is one whose platform this does not know (it could be dropped).
"""

import glob
import importlib.metadata
import importlib.util
import os
import pathlib
import pkgutil

GOOGLE_PCI_VENDOR_ID = "0x1ae0"  # TPU chips are PCI devices of this vendor (as jax's hardware_utils reads)
PLUGIN_PLATFORMS = {"cuda": "cuda", "rocm": "rocm"}  # a substring of the plugin's module name -> platform


def tpu_chips_attached(pci_root: str = "/sys/bus/pci/devices") -> bool:
  for vendor_path in glob.glob(os.path.join(pci_root, "*", "vendor")):
    if pathlib.Path(vendor_path).read_text().strip() == GOOGLE_PCI_VENDOR_ID:
      return True
  return False


def libtpu_installed(environ) -> bool:
  return bool(environ.get("TPU_LIBRARY_PATH")) or importlib.util.find_spec("libtpu") is not None


def installed_plugin_modules() -> set[str]:
  """JAX's PJRT plugins, found the two ways JAX finds them: the jax_plugins namespace, entry points."""
  names = {entry.name for entry in importlib.metadata.entry_points(group="jax_plugins")}
  spec = importlib.util.find_spec("jax_plugins")
  if spec is not None and spec.submodule_search_locations:
    names |= {name for _, name, _ in pkgutil.iter_modules(spec.submodule_search_locations)}
  return names


def platforms_without_tpu(plugin_modules: set[str]) -> str | None:
  """JAX_PLATFORMS naming every platform these plugins provide, and cpu; None for an unknown plugin."""
  platforms = []
  for module in sorted(plugin_modules):
    platform = next((p for key, p in PLUGIN_PLATFORMS.items() if key in module), None)
    if platform is None:
      return None
    if platform not in platforms:
      platforms.append(platform)
  return ",".join(platforms + ["cpu"])


def skip_absent_tpu(environ=os.environ, pci_root: str = "/sys/bus/pci/devices") -> str | None:
  """Set JAX_PLATFORMS so that JAX does not start libtpu here; returns the value set, or None."""
  if "JAX_PLATFORMS" in environ or "PJRT_NAMES_AND_LIBRARY_PATHS" in environ:
    return None
  if not libtpu_installed(environ) or tpu_chips_attached(pci_root):
    return None
  platforms = platforms_without_tpu(installed_plugin_modules())
  if platforms is not None:
    environ["JAX_PLATFORMS"] = platforms
  return platforms

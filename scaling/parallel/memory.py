"""Will it fit? The bytes a tree of arrays takes on each device, against what the devices have.

Checked before anything is allocated or written, so a model far too large for the machine is one
line naming the sizes, not an out-of-memory error from deep inside XLA with files left behind.
CPU devices (real or simulated) share the host's memory, so their shares add up; an accelerator's
share must fit in its own memory.
"""

import collections
import math
import os

import jax

from scaling.errors import InputError


def bytes_per_device(abstract_tree) -> dict:
  """{device: bytes of its shards} for a tree of `jax.ShapeDtypeStruct`s that carry shardings."""
  per_device = collections.Counter()
  for leaf in jax.tree.leaves(abstract_tree):
    itemsize = getattr(leaf.dtype, "itemsize", 8)  # typed PRNG keys: a few words
    shard_bytes = math.prod(leaf.sharding.shard_shape(leaf.shape)) * itemsize
    for device in leaf.sharding.device_set:
      if device.process_index == jax.process_index():
        per_device[device] += shard_bytes
  return dict(per_device)


def host_available_bytes() -> int | None:
  """MemAvailable from /proc/meminfo (Linux), else free physical pages; None if unknown."""
  try:
    with open("/proc/meminfo", encoding="ascii") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  try:
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  except (ValueError, OSError, AttributeError):
    return None


def device_available_bytes(device) -> int | None:
  """An accelerator's free memory (its allocator's limit less what is in use); None if unknown."""
  try:
    stats = device.memory_stats()
  except Exception:  # noqa: BLE001  backends without the query
    return None
  if not stats or "bytes_limit" not in stats:
    return None
  return stats["bytes_limit"] - stats.get("bytes_in_use", 0)


def gib(n: float) -> str:
  return f"{n / 2**30:,.3g} GiB"


def check_fits(needed: dict, what: str, advice: str) -> None:
  """Raises InputError when `needed` ({device: bytes}) cannot fit; `advice` says what to change."""
  host = sum(n for device, n in needed.items() if device.platform == "cpu")
  if host:
    available = host_available_bytes()
    if available is not None and host > available:
      raise InputError(f"{what} needs {gib(host)} of host memory and {gib(available)} is "
                       f"available; {advice}")
  for device, n in needed.items():
    if device.platform == "cpu":
      continue
    available = device_available_bytes(device)
    if available is not None and n > available:
      raise InputError(f"{what} needs {gib(n)} on {device.device_kind} {device.id}, which has "
                       f"{gib(available)} free; {advice}")

"""What one run of a sweep asks of a Ray cluster: `cpu:N`, `gpu:N`, or a whole TPU slice.

`config.sweep.resources` is a tuple of `MAX_N=SPEC` entries (`SPEC` alone for every run): each run
takes the first spec whose MAX_N (non-embedding parameters) is at least its N, so small runs take
one GPU and large ones a slice. A TPU slice is named by its accelerator type (`v4-16`,
`v5litepod-8`, `v6e-16`); it takes the slice's `TPU-<type>-head` resource (which Ray puts on
worker 0 of every slice) and runs one process per host of that slice.
"""

import dataclasses
import math
import re

from scaling import checks, hardware
from scaling.errors import InputError

_TPU_TYPE = re.compile(f"({'|'.join(hardware.GENERATIONS)})-([1-9][0-9]*)")


@dataclasses.dataclass(frozen=True)
class Spec:
  """One run's demand: `kind` cpu | gpu | tpu; `count` CPUs or GPUs, or the slice's hosts."""

  text: str
  kind: str
  count: int
  chips_per_host: int = 0

  @property
  def hosts(self) -> int:
    return self.count if self.kind == "tpu" else 1

  @property
  def head_resource(self) -> str:
    return f"TPU-{self.text}-head"


def parse(text) -> Spec:
  """`cpu:2`, `gpu:1`, `v4-16` -> Spec; anything else is an InputError naming the forms."""
  if not isinstance(text, str):
    raise InputError(f"sweep.resources: a spec must be a string such as 'cpu:1', got {text!r}")
  match = re.fullmatch(r"(cpu|gpu):([1-9][0-9]*)", text)
  if match:
    return Spec(text=text, kind=match[1], count=int(match[2]))
  match = _TPU_TYPE.fullmatch(text)
  if match:
    generation = hardware.GENERATIONS[match[1]]
    chips, per_host = int(match[2]) // generation.cores_per_chip, generation.chips_per_host
    if chips <= generation.single_host_chips:
      return Spec(text=text, kind="tpu", count=1, chips_per_host=max(chips, 1))
    if chips % per_host:
      raise InputError(f"sweep.resources: {text} is not a slice of whole {per_host}-chip hosts")
    return Spec(text=text, kind="tpu", count=chips // per_host, chips_per_host=per_host)
  raise InputError(f"sweep.resources: {text!r} is not a resource spec (cpu:N, gpu:N, or a TPU "
                   "type such as v4-16, v5litepod-8, v6e-16)")


def specs_by_size(value) -> list[tuple[float, Spec]]:
  """`config.sweep.resources` as [(max_N, Spec), ...] in order, the last one covering any N.

  The config holds a tuple of strings: `SPEC` (every run) or `MAX_N=SPEC` entries by increasing
  MAX_N, the last of which may be a bare SPEC for every larger run:
  `("1e8=gpu:1", "1e9=v5litepod-8", "v5litepod-16")`.
  """
  if not isinstance(value, (tuple, list)) or not value:
    raise InputError("sweep.resources must be a tuple of specs, e.g. ('cpu:1',) or "
                     f"('1e8=gpu:1', 'v4-16'), got {value!r}")
  pairs = []
  for i, entry in enumerate(value):
    if not isinstance(entry, str):
      raise InputError(f"sweep.resources: entries are strings such as 'cpu:1' or '1e8=gpu:1', "
                       f"got {entry!r}")
    bound, _, text = entry.rpartition("=")
    if not bound:
      if i != len(value) - 1:
        raise InputError(f"sweep.resources: only the last entry may omit MAX_N=, got {entry!r}")
      pairs.append((math.inf, parse(text)))
      continue
    try:
      max_n = float(bound)
    except ValueError:
      max_n = math.nan
    if not max_n > 0:
      raise InputError(f"sweep.resources: {entry!r}: MAX_N must be a positive number")
    pairs.append((max_n, parse(text)))
  if [n for n, _ in pairs] != sorted(n for n, _ in pairs):
    raise InputError("sweep.resources: list the MAX_N=SPEC entries by increasing MAX_N")
  return pairs


def for_size(value, params_non_embedding: int) -> Spec:
  """The spec of a run with this many non-embedding parameters; an InputError if none covers it."""
  pairs = specs_by_size(value)
  for max_n, spec in pairs:
    if params_non_embedding <= max_n:
      return spec
  raise InputError(f"sweep.resources: no entry covers N={params_non_embedding:,} (the largest "
                   f"MAX_N is {pairs[-1][0]:.3g}); end with a bare SPEC for every larger run")


def check(sweep, sizes: list[int]) -> None:
  """Validates the executor keys of `config.sweep` against the plan's run sizes."""
  for size in sizes:
    for_size(sweep.resources, size)
  for key in ("preemption_retries", "failure_retries"):
    checks.number(sweep[key], f"sweep.{key}", integer=True, at_least=0)
  checks.number(sweep.lease_seconds, "sweep.lease_seconds", above=0)

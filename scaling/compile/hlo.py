"""Reading a step's programs as text: its collectives, and its matmul FLOPs with loops counted.

XLA's cost analysis counts a while loop's body once, however many times it runs, and `scan_layers`
and SPMD partitioning both emit loops. So both readers here give every loop body the number of times
one step runs it: `known_trip_count` where XLA records it, else the bound N of its condition
`i < N`, counting from 0 as scans and SPMD loops do.
- `summarize` reads the optimized (partitioned) HLO: each collective's count and the bytes of its
  results on one device.
- `matmul_flops` reads the lowered StableHLO (before partitioning, so global shapes): the FLOPs of
  every dot_general, 2 × output elements × contracted size. The optimized HLO is no place for this:
  TPU rewrites matmuls as padded convolutions whose windows overstate the work.
"""

import collections
import dataclasses
import math
import re

COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
BYTES_PER_ELEMENT = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4,
                     "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16,
                     "f8e4m3fn": 1, "f8e5m2": 1, "s4": 0.5, "u4": 0.5}

_HEADER = re.compile(r"^(ENTRY )?%?([\w.\-]+) .*\{$")
_INSTRUCTION = re.compile(r"^\s*(ROOT )?%([\w.\-]+) = (.+?) ([a-z][\w\-]*)\((.*)$")
_ARRAY = re.compile(r"\b([a-z]\w*)\[([\d,]*)\]")
_CALLEE = re.compile(r"\b(calls|to_apply|branch_computations|true_computation|false_computation)="
                     r"\{?([%\w.\-, ]+)\}?")
_TRIP_COUNT = re.compile(r'"known_trip_count":\{"n":"(\d+)"')


def _arrays(type_text: str) -> list[tuple[str, tuple[int, ...]]]:
  """Every array in an HLO type, a tuple's elements in order: [(dtype, dims), ...]."""
  return [(dtype, tuple(int(d) for d in dims.split(",") if d))
          for dtype, dims in _ARRAY.findall(type_text.split("{")[0] if "(" not in type_text
                                             else type_text)]


def _bytes(type_text: str) -> float:
  return sum(BYTES_PER_ELEMENT.get(dtype, 0) * math.prod(dims) for dtype, dims in _arrays(type_text))


@dataclasses.dataclass
class _Computation:
  collectives: dict = dataclasses.field(default_factory=lambda: collections.defaultdict(
      lambda: [0, 0.0]))  # kind -> [count, bytes]
  callees: list = dataclasses.field(default_factory=list)  # [(name, times per run of this one)]
  loops: list = dataclasses.field(default_factory=list)  # [(body, condition, known trip count)]
  constants: dict = dataclasses.field(default_factory=dict)  # integer scalar constants by name
  bound: int | None = None  # as a loop condition: N of a root `i < N`


def parse(text: str) -> tuple[dict, str]:
  """{computation name: _Computation}, and the entry computation's name."""
  computations, entry, current = {}, None, None
  for line in text.splitlines():
    header = _HEADER.match(line)
    if header and not line.startswith(" "):
      current = computations.setdefault(header.group(2), _Computation())
      if header.group(1):
        entry = header.group(2)
      continue
    match = _INSTRUCTION.match(line)
    if not match or current is None:
      continue
    _, name, type_text, opcode, rest = match.groups()
    kind = opcode.removesuffix("-done")
    if kind in COLLECTIVES and not opcode.endswith("-start"):
      entry_ = current.collectives[kind]
      entry_[0] += 1
      entry_[1] += _bytes(type_text)
    scalar = re.match(r"s(32|64)\[\]", type_text)
    if opcode == "constant" and scalar:
      current.constants[name] = int(re.match(r"(-?\d+)\)", rest).group(1))
    if match.group(1) and opcode == "compare" and "direction=LT" in rest:
      operands = re.findall(r"%([\w.\-]+)", rest.split(")")[0])
      if len(operands) == 2 and operands[1] in current.constants:
        current.bound = current.constants[operands[1]]
    if opcode == "while":
      trips = _TRIP_COUNT.search(rest)
      body = re.search(r"body=%([\w.\-]+)", rest).group(1)
      condition = re.search(r"condition=%([\w.\-]+)", rest).group(1)
      current.loops.append((body, condition, int(trips.group(1)) if trips else None))
      continue
    for _, names in _CALLEE.findall(rest):
      current.callees += [(n.strip().lstrip("%"), 1) for n in names.split(",") if n.strip()]
  for computation in computations.values():
    for body, condition, trips in computation.loops:
      if trips is None:
        trips = computations[condition].bound if condition in computations else None
      computation.callees.append((body, trips if trips and trips > 0 else 1))
  return computations, entry


@dataclasses.dataclass(frozen=True)
class Summary:
  loops: dict  # trip count -> how many while loops run that many times
  collectives: dict  # kind -> {"count", "bytes"}, per device and step, loop trips included


def summarize(text: str) -> Summary:
  computations, entry = parse(text)
  runs = collections.Counter()
  loops = collections.Counter()
  stack = [(entry, 1)]
  while stack:
    name, times = stack.pop()
    computation = computations.get(name)
    if computation is None:
      continue
    runs[name] += times
    for callee, per_run in computation.callees:
      if per_run > 1:
        loops[per_run] += 1
      stack.append((callee, times * per_run))
  collectives = {kind: {"count": 0, "bytes": 0} for kind in COLLECTIVES}
  for name, times in runs.items():
    for kind, (count, size) in computations[name].collectives.items():
      collectives[kind]["count"] += count * times
      collectives[kind]["bytes"] += int(size * times)
  return Summary(loops=dict(sorted(loops.items())), collectives=collectives)


_FUNCTION = re.compile(r"func\.func \w* ?@([\w.\-]+)")
_CALL = re.compile(r"func\.call @([\w.\-]+)")
_DOT = re.compile(r"stablehlo\.dot_general .*contracting_dims = \[([\d, ]*)\] x .*: \(tensor<([\dx]*)x?\w+>, "
                  r"tensor<[^>]*>\) -> tensor<([\dx]*)x?\w+>")
_BOUND = re.compile(r"stablehlo\.constant dense<(\d+)> : tensor<i(?:32|64)>")


def _dims(text: str) -> list[int]:
  return [int(d) for d in text.split("x") if d]


def matmul_flops(stablehlo: str) -> tuple[float, float]:
  """(FLOPs of the program's matmuls with every loop trip counted, the same with each loop body
  counted once as XLA's cost analysis does), over all devices."""
  functions = {}  # name -> [(flops, multiplier)], [(callee, multiplier)]
  dots, calls, stack, bound, in_condition = None, None, [], None, False
  for line in stablehlo.splitlines():
    text = line.strip()
    function = _FUNCTION.search(text)
    if function and text.endswith("{"):
      dots, calls = functions.setdefault(function.group(1), ([], []))
      stack = [1]
      continue
    if dots is None:
      continue
    if text == "cond {":
      stack.append(stack[-1])
      in_condition, bound = True, None
      continue
    if text == "} do {":
      stack[-1] = stack[-2] * (bound or 1)
      in_condition = False
      continue
    if in_condition:
      constant = _BOUND.search(text)
      bound = int(constant.group(1)) if constant else bound
    dot = _DOT.search(text)
    if dot:
      lhs, out = _dims(dot.group(2)), _dims(dot.group(3))
      contracted = math.prod(lhs[int(i)] for i in dot.group(1).split(",") if i.strip())
      dots.append((2.0 * math.prod(out) * contracted, stack[-1]))
    call = _CALL.search(text)
    if call:
      calls.append((call.group(1), stack[-1]))
    for _ in range(text.count("{") - text.count("}")):
      stack.append(stack[-1])
    for _ in range(text.count("}") - text.count("{")):
      if len(stack) > 1:
        stack.pop()

  def total(name, weighted, seen=()):
    if name not in functions or name in seen:
      return 0.0
    own, callees = functions[name]
    flops = sum(f * (m if weighted else 1) for f, m in own)
    return flops + sum((m if weighted else 1) * total(c, weighted, (*seen, name)) for c, m in callees)

  return total("main", True), total("main", False)

"""Reading a step's programs as text: its loops' trip counts, collectives, HBM bytes and FLOPs.

XLA's cost analysis counts a while loop's body once, however many times it runs, and `scan_layers`
and XLA itself (it splits big matmuls and collectives into loops) both emit loops. So everything
here gives each computation the number of times one step runs it. A loop's trip count comes from
`known_trip_count` in its backend config where XLA records it, else from its induction variable:
the condition's `i < N` (through fusions and bitcasts), the start value the loop is given and the
step its body adds. A loop neither names is counted once and reported as unresolved.
- `summarize` reads the optimized (partitioned) HLO, per device: the collectives (each logical
  collective once: TPU's async collective fusions repeat the same collective, one channel id, in
  their start, continuation and done computations), the HBM bytes and matmul FLOPs of every
  computation, with and without trips, and the FLOPs that Pallas kernels declare in their cost
  estimate (`pl.pallas_call(..., cost_estimate=pl.CostEstimate(flops=...))`): XLA cannot see into a
  kernel, so that estimate is all anyone counts (XLA's cost analysis adds it, once per loop body).
- `matmul_flops` reads the lowered StableHLO (before partitioning, so global shapes): the FLOPs of
  every dot_general, 2 × output elements × contracted size, as a cross-check of the model count.
"""

import collections
import dataclasses
import math
import re

COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
BYTES_PER_ELEMENT = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4,
                     "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16,
                     "f8e4m3fn": 1, "f8e5m2": 1, "s4": 0.5, "u4": 0.5}
# Instructions that move no HBM bytes of their own (views, tuples, control flow: a loop's or a
# call's bytes are its body's).
_NO_TRAFFIC = {"parameter", "get-tuple-element", "tuple", "bitcast", "constant", "after-all",
               "partition-id", "replica-id", "while", "call", "conditional", "opt-barrier",
               "add-dependency", "domain"}

_HEADER = re.compile(r"^(ENTRY )?%?([\w.\-]+) .*\{$")
_INSTRUCTION = re.compile(r"^\s*(ROOT )?%([\w.\-]+) = (.+?) ([a-z][\w\-]*)\((.*)$")
_ARRAY = re.compile(r"\b([a-z]\w*)\[([\d,]*)\]")
_CALLEE = re.compile(r"\b(calls|to_apply|branch_computations|true_computation|false_computation)="
                     r"\{?([%\w.\-, ]+)\}?")
_TRIP_COUNT = re.compile(r'"known_trip_count":\{"n":"(\d+)"')
_CHANNEL = re.compile(r"\bchannel_id=(\d+)")
# A collective's groups in any of HLO's spellings: mesh axes, iota, explicit; or a permute's pairs.
_GROUPS = re.compile(r"(replica_groups=(?:mesh\[[^\]]*\]\s*\{[^}]*\}|\[[\d,]+\]<=\[[\d,]+\]"
                     r"(?:T\([\d,]+\))?|\{\{[\d,{}]*\}\})|source_target_pairs=\{[\d,{}]*\})")
_MEGASCALE_TYPE = re.compile(r'_xla_megascale_transfer_type="(\w+)"')
_COST_ESTIMATE = re.compile(r'cost_estimate\\?"\s*:\s*\{\\?"flops\\?"\s*:\s*\\?"?(\d+)')


def _arrays(type_text: str) -> list[tuple[str, tuple[int, ...]]]:
  """Every array in an HLO type, a tuple's elements in order: [(dtype, dims), ...]."""
  return [(dtype, tuple(int(d) for d in dims.split(",") if d))
          for dtype, dims in _ARRAY.findall(type_text.split("{")[0] if "(" not in type_text
                                             else type_text)]


def _bytes(type_text: str) -> float:
  return sum(BYTES_PER_ELEMENT.get(dtype, 0) * math.prod(dims) for dtype, dims in _arrays(type_text))


def _operand_names(rest: str) -> list[str]:
  """The `%name` operands of an instruction: up to the parenthesis that closes its operand list."""
  depth = 1
  for i, char in enumerate(rest):
    depth += {"(": 1, ")": -1}.get(char, 0)
    if depth == 0:
      return re.findall(r"%([\w.\-]+)", rest[:i])
  return []


@dataclasses.dataclass
class _Instruction:
  name: str
  opcode: str
  type_text: str
  operands: list
  rest: str

  @property
  def bytes(self) -> float:
    return _bytes(self.type_text)


@dataclasses.dataclass
class _Computation:
  instructions: dict = dataclasses.field(default_factory=dict)  # name -> _Instruction, in order
  parameters: dict = dataclasses.field(default_factory=dict)  # index -> name
  root: str | None = None
  callees: list = dataclasses.field(default_factory=list)  # [(name, times per run of this one)]
  fused: bool = False  # called by a fusion (or as a reducer): its bytes are not HBM traffic


def parse(text: str) -> tuple[dict, str]:
  """{computation name: _Computation}, and the entry computation's name. Callees carry trip counts
  (see `trip_count`)."""
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
    root, name, type_text, opcode, rest = match.groups()
    instruction = _Instruction(name, opcode, type_text, _operand_names(rest), rest)
    current.instructions[name] = instruction
    if root:
      current.root = name
    if opcode == "parameter":
      current.parameters[int(re.match(r"(\d+)\)", rest).group(1))] = name
  for computation in computations.values():
    for instruction in computation.instructions.values():
      if instruction.opcode == "while":
        body = re.search(r"body=%([\w.\-]+)", instruction.rest).group(1)
        condition = re.search(r"condition=%([\w.\-]+)", instruction.rest).group(1)
        trips, _ = trip_count(computations, computation, instruction)
        computation.callees += [(body, trips or 1), (condition, (trips or 0) + 1)]
        continue
      for field, names in _CALLEE.findall(instruction.rest):
        for callee in (n.strip().lstrip("%") for n in names.split(",") if n.strip()):
          computation.callees.append((callee, 1))
          if callee in computations and (field == "to_apply" and instruction.opcode != "call"
                                         or instruction.opcode == "fusion"):
            computations[callee].fused = True
  return computations, entry


def _trace(computations: dict, computation: _Computation, name: str, depth: int = 0):
  """What a scalar in a loop's condition or body is: ("constant", value), ("element", k) for
  element k of the loop's tuple, ("add", x, c) for x + constant c, or None."""
  instruction = computation.instructions.get(name)
  if instruction is None or depth > 8:
    return None
  op, operands = instruction.opcode, instruction.operands
  if op == "constant":
    value = re.match(r"(-?\d+)\)", instruction.rest)
    return ("constant", int(value.group(1))) if value else None
  if op == "get-tuple-element" and operands:
    source = computation.instructions.get(operands[0])
    if source is not None and source.opcode == "parameter":
      return ("element", int(re.search(r"index=(\d+)", instruction.rest).group(1)))
  if op in ("bitcast", "copy", "convert", "reshape") and operands:
    return _trace(computations, computation, operands[0], depth + 1)
  if op == "add" and len(operands) == 2:
    a, b = (_trace(computations, computation, o, depth + 1) for o in operands)
    if b and b[0] == "constant":
      return ("add", a, b[1])
    if a and a[0] == "constant":
      return ("add", b, a[1])
  if op == "parameter":  # inside a fusion: the operand its caller passed
    return ("parameter", int(re.match(r"(\d+)\)", instruction.rest).group(1)))
  if op == "fusion":
    callee = re.search(r"calls=%([\w.\-]+)", instruction.rest)
    fused = computations.get(callee.group(1)) if callee else None
    if fused is None:
      return None
    inner = _trace(computations, fused, fused.root, depth + 1)
    return _through_fusion(computations, computation, instruction, inner, depth)
  return None


def _through_fusion(computations, computation, fusion, inner, depth):
  """`inner`, traced inside a fused computation, in the caller's terms."""
  if inner is None:
    return None
  if inner[0] == "parameter":
    return _trace(computations, computation, fusion.operands[inner[1]], depth + 1)
  if inner[0] == "add":
    return ("add", _through_fusion(computations, computation, fusion, inner[1], depth), inner[2])
  return inner


def _condition(computations: dict, condition: _Computation):
  """(direction, induction element, bound) of a condition's root `compare(i, N)`, or None."""
  root = condition.instructions.get(condition.root)
  while root is not None and root.opcode == "fusion":  # the compare fused with its constant
    fused = computations.get(re.search(r"calls=%([\w.\-]+)", root.rest).group(1))
    if fused is None:
      return None
    compare = fused.instructions.get(fused.root)
    if compare is None or compare.opcode != "compare":
      return None
    sides = [_through_fusion(computations, condition, root, _trace(computations, fused, o), 0)
             for o in compare.operands]
    return _compare(compare.rest, sides)
  if root is None or root.opcode != "compare":
    return None
  return _compare(root.rest, [_trace(computations, condition, o) for o in root.operands])


def _compare(rest: str, sides: list):
  direction = re.search(r"direction=(\w+)", rest)
  if len(sides) != 2 or direction is None:
    return None
  direction = direction.group(1)
  if sides[0] and sides[1] and sides[0][0] == "constant" and sides[1][0] == "element":
    sides.reverse()
    direction = {"LT": "GT", "GT": "LT", "LE": "GE", "GE": "LE"}.get(direction, direction)
  if not (sides[0] and sides[1] and sides[0][0] == "element" and sides[1][0] == "constant"):
    return None
  return direction, sides[0][1], sides[1][1]


def trip_count(computations: dict, caller: _Computation, loop: _Instruction):
  """(trips, how it was found: "backend_config" | "induction_variable") of a while loop, or
  (None, "unresolved")."""
  recorded = _TRIP_COUNT.search(loop.rest)
  if recorded:
    return int(recorded.group(1)), "backend_config"
  condition = computations.get(re.search(r"condition=%([\w.\-]+)", loop.rest).group(1))
  body = computations.get(re.search(r"body=%([\w.\-]+)", loop.rest).group(1))
  found = _condition(computations, condition) if condition else None
  if found is None or body is None:
    return None, "unresolved"
  direction, element, bound = found
  start, step = 0, 1
  init = caller.instructions.get(loop.operands[0]) if loop.operands else None
  if init is not None and init.opcode == "tuple" and element < len(init.operands):
    traced = _trace(computations, caller, init.operands[element])
    start = traced[1] if traced and traced[0] == "constant" else 0
  body_root = body.instructions.get(body.root)
  if body_root is not None and body_root.opcode == "tuple" and element < len(body_root.operands):
    traced = _trace(computations, body, body_root.operands[element])
    if traced and traced[0] == "add" and traced[1] == ("element", element) and traced[2]:
      step = traced[2]
  span = {"LT": bound - start, "LE": bound - start + 1, "GT": start - bound,
          "GE": start - bound + 1, "NE": bound - start}.get(direction)
  if span is None or step == 0 or (span > 0) != (step > 0) and span != 0:
    return None, "unresolved"
  return max(0, math.ceil(span / step)), "induction_variable"


def _fusion_bytes(computations: dict, computation: _Computation, fusion: _Instruction) -> float:
  """HBM bytes a fusion reads and writes. As XLA's cost analysis does: an operand only sliced
  (dynamic-slice: one layer of a scanned stack) is read as the slices; a buffer updated in place
  (dynamic-update-slice) is read not at all and written as the update; an operand handed through
  to the output untouched (TPU's async collective fusions) is neither."""
  callee = re.search(r"calls=%([\w.\-]+)", fusion.rest)
  fused = computations.get(callee.group(1)) if callee else None
  operand_bytes = [_operand_bytes(computation, o) for o in fusion.operands]
  if fused is None:
    return sum(operand_bytes) + fusion.bytes
  users = collections.defaultdict(list)
  for instruction in fused.instructions.values():
    for operand in instruction.operands:
      users[operand].append(instruction)
  root = fused.instructions.get(fused.root)
  outputs = root.operands if root is not None and root.opcode == "tuple" else [fused.root]
  read = 0.0
  for index, name in fused.parameters.items():
    full = operand_bytes[index] if index < len(operand_bytes) else 0.0
    uses = users.get(name, [])
    if uses and all(u.opcode == "dynamic-slice" and u.operands[0] == name for u in uses):
      read += min(full, sum(u.bytes for u in uses))
    elif uses and all(u.opcode == "dynamic-update-slice" and u.operands[0] == name
                      or u.opcode == "tuple" for u in uses):
      read += 0.0
    else:
      read += full
  written = 0.0
  for name in outputs:
    instruction = fused.instructions.get(name)
    if instruction is None or instruction.opcode == "parameter":
      continue
    if instruction.opcode == "dynamic-update-slice" and len(instruction.operands) > 1:
      written += _operand_bytes(fused, instruction.operands[1])
    else:
      written += instruction.bytes
  return read + written


def _operand_bytes(computation: _Computation, name: str) -> float:
  instruction = computation.instructions.get(name)
  return instruction.bytes if instruction is not None else 0.0


def _hbm_bytes(computations: dict, computation: _Computation) -> float:
  """HBM bytes one run of a (non-fused) computation reads and writes: its instructions' operands
  and results, fusions as `_fusion_bytes` says, and each async pair once (its start)."""
  total = 0.0
  for instruction in computation.instructions.values():
    op = instruction.opcode
    if op in _NO_TRAFFIC or op.endswith("-done") or op.endswith("-update"):
      continue
    if op == "fusion":
      total += _fusion_bytes(computations, computation, instruction)
    elif op == "dynamic-slice":
      total += 2 * instruction.bytes
    elif op == "dynamic-update-slice" and len(instruction.operands) > 1:
      total += 2 * _operand_bytes(computation, instruction.operands[1])
    else:
      total += sum(_operand_bytes(computation, o) for o in instruction.operands) + instruction.bytes
  return total


def _matmul_flops(computation: _Computation) -> float:
  """2 × multiply-adds of every dot and convolution. A TPU compiles matmuls to convolutions whose
  windows run over padding (a [B,F]·[F,O] product as a size-3 window padded by 2): only the taps
  that land on the input count, as in XLA's own cost analysis."""
  flops = 0.0
  for instruction in computation.instructions.values():
    out = _arrays(instruction.type_text)
    if instruction.opcode not in ("dot", "convolution") or not out or not instruction.operands:
      continue
    lhs = computation.instructions.get(instruction.operands[0])
    lhs_dims = _arrays(lhs.type_text)[0][1] if lhs is not None and _arrays(lhs.type_text) else ()
    if instruction.opcode == "dot":
      contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", instruction.rest)
      dims = [int(d) for d in contracting.group(1).split(",") if d] if contracting else []
      flops += 2.0 * math.prod(out[0][1]) * math.prod(lhs_dims[d] for d in dims if d < len(lhs_dims))
    else:
      flops += _convolution_flops(instruction.rest, lhs_dims, out[0][1])
  return flops


def _convolution_flops(rest: str, lhs_dims: tuple, out_dims: tuple) -> float:
  labels = re.search(r"dim_labels=(\w+)_\w+->(\w+)", rest)
  window = re.search(r"window=\{([^}]*)\}", rest)
  groups = re.search(r"feature_group_count=(\d+)", rest)
  if labels is None or len(labels.group(1)) != len(lhs_dims) or len(labels.group(2)) != len(out_dims):
    return 2.0 * math.prod(out_dims)
  lhs_labels, out_labels = labels.group(1), labels.group(2)
  features = lhs_dims[lhs_labels.index("f")] // (int(groups.group(1)) if groups else 1)
  spatial = sorted((c for c in lhs_labels if c.isdigit()), key=int)  # the window's order
  fields = dict(re.findall(r"(\w+)=([\w_\-]+)", window.group(1))) if window else {}
  sizes = [int(x) for x in fields.get("size", "").split("x") if x] or [1] * len(spatial)
  pads = [tuple(int(p) for p in x.split("_")) for x in fields.get("pad", "").split("x") if x] or \
      [(0, 0)] * len(spatial)
  strides = [int(x) for x in fields.get("stride", "").split("x") if x] or [1] * len(spatial)
  lhs_dilate = [int(x) for x in fields.get("lhs_dilate", "").split("x") if x] or [1] * len(spatial)
  rhs_dilate = [int(x) for x in fields.get("rhs_dilate", "").split("x") if x] or [1] * len(spatial)
  if not len(sizes) == len(pads) == len(strides) == len(lhs_dilate) == len(rhs_dilate) == len(spatial):
    return 2.0 * math.prod(out_dims) * features * math.prod(sizes)
  # Per spatial dimension, the (output position, tap) pairs that read an input element rather than
  # padding or the holes of a dilated input (XLA writes batched matmuls as dilated convolutions).
  pairs, out_positions = 1, 1
  for i, label in enumerate(spatial):
    size_in = (lhs_dims[lhs_labels.index(label)] - 1) * lhs_dilate[i] + 1
    size_out = out_dims[out_labels.index(label)]
    pairs *= _valid_taps(size_in, size_out, sizes[i], strides[i], pads[i][0], lhs_dilate[i],
                         rhs_dilate[i])
    out_positions *= size_out
  return 2.0 * math.prod(out_dims) / max(out_positions, 1) * features * pairs


def _valid_taps(size_in, size_out, window, stride, low, lhs_dilate, rhs_dilate) -> int:
  """(output position o, tap t) pairs of one spatial dimension whose input position
  p = o·stride + t·rhs_dilate − low falls on the (dilated) input and not on a hole."""
  if lhs_dilate > 1 and size_out * window <= 1 << 20:
    return sum(1 for o in range(size_out) for t in range(window)
               if 0 <= (p := o * stride + t * rhs_dilate - low) < size_in and p % lhs_dilate == 0)
  count = 0
  for t in range(window):  # o from ceil((low − t·rd) / s) to floor((size_in − 1 + low − t·rd) / s)
    first = max(0, -((t * rhs_dilate - low) // stride))
    last = min(size_out - 1, (size_in - 1 + low - t * rhs_dilate) // stride)
    count += max(0, last - first + 1)
  return count // lhs_dilate if lhs_dilate > 1 else count


def _kernel_flops(computation: _Computation) -> tuple[float, int]:
  """(FLOPs that Pallas kernels' cost estimates declare, kernels without one) in one run."""
  flops, blind = 0.0, 0
  for instruction in computation.instructions.values():
    if instruction.opcode == "custom-call" and '"tpu_custom_call"' in instruction.rest:
      estimate = _COST_ESTIMATE.search(instruction.rest)
      if estimate:
        flops += float(estimate.group(1))
      else:
        blind += 1
  return flops, blind


@dataclasses.dataclass(frozen=True)
class Summary:
  loops: dict  # trip count -> how many while loops run that many times
  collectives: dict  # kind -> {"count", "bytes", "operand_bytes", "groups"}, per device and step
  hbm_bytes: float  # per device and step, our count with every trip
  hbm_bytes_once: float  # the same with each loop body once, as XLA's cost analysis counts
  matmul_flops: float  # per device and step, the optimized program's dots and convolutions
  matmul_flops_once: float
  kernel_flops: float  # per device and step, Pallas kernels' own cost estimates, every trip
  kernel_flops_once: float  # the same with each loop body once: what XLA's cost analysis adds
  kernels_without_estimate: int  # Pallas custom calls with no cost estimate (FLOPs unseen)
  trip_counts: dict  # how each loop's trip count was found -> how many loops
  cross_slice: dict  # megascale (DCN) custom calls: {"count", "bytes"} per device and step
  ops: list  # every logical collective: (kind, runs per step, result bytes, operand bytes, groups)


def _runs(computations: dict, entry: str, with_trips: bool) -> collections.Counter:
  runs = collections.Counter()
  stack = [(entry, 1)]
  while stack:
    name, times = stack.pop()
    if name not in computations:
      continue
    runs[name] += times
    for callee, per_run in computations[name].callees:
      stack.append((callee, times * (per_run if with_trips else 1)))
  return runs


def summarize(text: str) -> Summary:
  computations, entry = parse(text)
  runs, runs_once = _runs(computations, entry, True), _runs(computations, entry, False)
  loops, found = _loops(computations, runs)
  collectives, cross_slice, ops = _collectives(computations, runs)
  control = [n for n in runs if not computations[n].fused]
  byte_counts = {n: _hbm_bytes(computations, computations[n]) for n in control}
  flop_counts = {n: _matmul_flops(computations[n]) for n in runs}
  kernels = {n: _kernel_flops(computations[n]) for n in runs}
  return Summary(
      loops=dict(sorted(loops.items())), collectives=collectives,
      hbm_bytes=sum(runs[n] * b for n, b in byte_counts.items()),
      hbm_bytes_once=sum(runs_once[n] * b for n, b in byte_counts.items()),
      matmul_flops=sum(runs[n] * f for n, f in flop_counts.items()),
      matmul_flops_once=sum(runs_once[n] * f for n, f in flop_counts.items()),
      kernel_flops=sum(runs[n] * f for n, (f, _) in kernels.items()),
      kernel_flops_once=sum(runs_once[n] * f for n, (f, _) in kernels.items()),
      kernels_without_estimate=sum(b for _, b in kernels.values()),
      trip_counts=dict(found), cross_slice=cross_slice, ops=ops)


def _loops(computations: dict, runs) -> tuple[collections.Counter, collections.Counter]:
  """(the loops of more than one trip, by trip count; how each while loop's trip count was
  found, by `trip_count`'s method): Summary's `loops` and `trip_counts`."""
  loops, found = collections.Counter(), collections.Counter()
  for name in runs:
    computation = computations[name]
    for instruction in computation.instructions.values():
      if instruction.opcode == "while":
        trips, how = trip_count(computations, computation, instruction)
        found[how] += 1
        if trips is not None and trips > 1:
          loops[trips] += 1
  return loops, found


def _collectives(computations: dict, runs) -> tuple[dict, dict, list]:
  """Summary's `collectives`, `cross_slice` and `ops`, each collective weighted by the times its
  computation runs."""
  # A logical collective once per channel id: TPU's async collective fusions copy it into their
  # start, continuation and done computations, all run as often as the start.
  seen, collectives = {}, {kind: {"count": 0, "bytes": 0, "operand_bytes": 0, "groups": {}}
                           for kind in COLLECTIVES}
  cross_slice, ops = {"count": 0, "bytes": 0}, []
  for name, times in runs.items():
    computation = computations[name]
    for instruction in computation.instructions.values():
      op = instruction.opcode
      if op in ("send", "custom-call") and "megascale" in instruction.rest.lower():
        _add_cross_slice(cross_slice, computation, instruction, times)
      kind = op.removesuffix("-start").removesuffix("-done")
      if kind not in COLLECTIVES or op.endswith("-done"):
        continue
      channel = _CHANNEL.search(instruction.rest)
      key = (kind, channel.group(1)) if channel else (kind, name, instruction.name)
      if key in seen:
        continue
      seen[key] = True
      size = _collective_bytes(op, instruction.type_text)
      operands = sum(_operand_bytes(computation, o) for o in instruction.operands)
      group = str(replica_group_size(instruction.rest))
      spec = _GROUPS.search(instruction.rest)
      ops.append((kind, times, size, operands, spec.group(1) if spec else ""))
      _tally(collectives[kind], times, size, operands)
      _tally(collectives[kind]["groups"].setdefault(
          group, {"count": 0, "bytes": 0, "operand_bytes": 0}), times, size, operands)
  return collectives, cross_slice, ops


def _add_cross_slice(cross_slice: dict, computation: _Computation, instruction: _Instruction,
                     times: int) -> None:
  """Across slices: host transfers to the megascale runtime (a send per transfer, its type named
  in an attribute), or, in other libtpu versions, megascale custom calls."""
  transfer = _MEGASCALE_TYPE.search(instruction.rest)
  size = _operand_bytes(computation, instruction.operands[0]) if instruction.operands else 0
  kind = transfer.group(1).lower() if transfer else "all_reduce"
  cross_slice["count"] += times
  cross_slice["bytes"] += int(size * times)
  cross_slice.setdefault("by_transfer", {}).setdefault(kind, 0)
  cross_slice["by_transfer"][kind] += int(size * times)


def _collective_bytes(op: str, type_text: str) -> float:
  """A collective's result bytes: an async start returns (operand, result, context scalars...),
  its result is the second."""
  arrays = _arrays(type_text)
  if op.endswith("-start") and len(arrays) >= 2:
    return BYTES_PER_ELEMENT.get(arrays[1][0], 0) * math.prod(arrays[1][1])
  return _bytes(type_text)


def _tally(stats: dict, times: int, size: float, operands: float) -> None:
  """Adds a collective run `times` times to a count / bytes / operand_bytes record."""
  stats["count"] += times
  stats["bytes"] += int(size * times)
  stats["operand_bytes"] += int(operands * times)


def replica_group_size(rest: str) -> int | None:
  """Devices per group of a collective, from any of HLO's spellings of `replica_groups`: explicit
  `{{0,1},{2,3}}`, iota `[2,4]<=[8]`, or mesh axes `mesh['x'=2,'y'=4] {'y'}`."""
  mesh = re.search(r"replica_groups=mesh\[([^\]]*)\]\s*\{([^}]*)\}", rest)
  if mesh:
    sizes = dict(re.findall(r"'([^']+)'=(\d+)", mesh.group(1)))
    return math.prod(int(sizes.get(a, 1)) for a in re.findall(r"'([^']+)'", mesh.group(2)))
  iota = re.search(r"replica_groups=\[(\d+),(\d+)\]<=", rest)
  if iota:
    return int(iota.group(2))
  explicit = re.search(r"replica_groups=\{\{([\d,]*)\}", rest)
  if explicit:
    return len([d for d in explicit.group(1).split(",") if d])
  pairs = re.search(r"source_target_pairs=\{(.*?)\}\}", rest)
  if pairs:
    return 2
  return None


def replica_groups(rest: str, n_devices: int) -> list[list[int]] | None:
  """The groups of logical device ids a collective runs over, or None if not spelled out."""
  mesh = re.search(r"replica_groups=mesh\[([^\]]*)\]\s*\{([^}]*)\}", rest)
  if mesh:
    axes = re.findall(r"'([^']+)'=(\d+)", mesh.group(1))
    shape = [int(s) for _, s in axes]
    if math.prod(shape) != n_devices:
      return None
    chosen = set(re.findall(r"'([^']+)'", mesh.group(2)))
    order = [i for i, (a, _) in enumerate(axes) if a not in chosen] + \
        [i for i, (a, _) in enumerate(axes) if a in chosen]
    return _iota_groups(shape, order, math.prod(int(s) for a, s in axes if a in chosen))
  iota = re.search(r"replica_groups=\[(\d+),(\d+)\]<=\[([\d,]+)\](?:T\(([\d,]+)\))?", rest)
  if iota:
    shape = [int(s) for s in iota.group(3).split(",")]
    order = [int(s) for s in iota.group(4).split(",")] if iota.group(4) else list(range(len(shape)))
    return _iota_groups(shape, order, int(iota.group(2)))
  explicit = re.search(r"replica_groups=\{(\{[\d,{}]*\})\}", rest)
  if explicit:
    return [[int(d) for d in g.split(",") if d] for g in re.findall(r"\{([\d,]*)\}", explicit.group(1))]
  return None


def _iota_groups(shape: list[int], order: list[int], size: int) -> list[list[int]]:
  import numpy as np

  ids = np.arange(math.prod(shape)).reshape(shape).transpose(order).reshape(-1, size)
  return ids.tolist()


_FUNCTION = re.compile(r"func\.func \w* ?@([\w.\-]+)")
_CALL = re.compile(r"func\.call @([\w.\-]+)")
_DOT = re.compile(r"stablehlo\.dot_general .*contracting_dims = \[([\d, ]*)\] x .*: \(tensor<([\dx]*)x?\w+>, "
                  r"tensor<[^>]*>\) -> tensor<([\dx]*)x?\w+>")
_BOUND = re.compile(r"stablehlo\.constant dense<(\d+)> : tensor<i(?:32|64)>")


def _dims(text: str) -> list[int]:
  return [int(d) for d in text.split("x") if d]


def matmul_flops(stablehlo: str) -> tuple[float, float]:
  """(FLOPs of the program's matmuls with every loop trip counted, the same with each loop body
  counted once), over all devices. Loops here are the program's own (scans); XLA's split loops
  come later and only `summarize` sees them."""
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

"""The layout copies in an optimized XLA module: transposes written to memory, forward and backward.

  XLA_FLAGS=--xla_dump_to=DIR scaling bench --config FILE --no-torch --steps 1 --warmup 0
  python -m scaling.bench.layout_copies DIR [--min-elements N]

On XLA:CPU a transpose that survives optimization is a pass over memory that does no arithmetic (a
`copy`, or a fusion whose body transposes or copies), and a dot whose operand is laid out the wrong
way gets one. The backward pass's are the ones that autodiff's choice of dot operands creates
(JAX names them `transpose(jvp(...))`), so they are counted apart.
"""

import argparse
import dataclasses
import glob
import math
import os
import re

_INSTRUCTION = re.compile(r"\s+(?:ROOT )?%(\S+) = f32\[([0-9,]*)\]\S* (fusion|copy|transpose)\((.*)")
_COMPUTATION = re.compile(r"^(ENTRY|%\S+) .*\{$")


@dataclasses.dataclass(frozen=True)
class Copy:
  name: str
  shape: tuple[int, ...]
  op_name: str  # JAX's name for the operation it came from

  @property
  def elements(self) -> int:
    return math.prod(self.shape)

  @property
  def backward(self) -> bool:
    return "transpose(jvp" in self.op_name


def layout_copies(hlo_text: str, min_elements: int = 1) -> list[Copy]:
  """The top-level copies, transposes and copying fusions of the ENTRY computation."""
  bodies, current = {}, None
  for line in hlo_text.splitlines():
    match = _COMPUTATION.match(line)
    if match and not line.startswith(" "):
      current = match.group(1).lstrip("%")
      bodies[current] = []
    elif current:
      bodies[current].append(line)
  copies = []
  for line in bodies.get("ENTRY", []):
    match = _INSTRUCTION.match(line)
    if not match:
      continue
    name, dims, op, rest = match.groups()
    if op == "fusion":
      called = re.search(r"calls=%([^,\s]+)", rest).group(1)
      body = "\n".join(bodies.get(called, []))
      if " transpose(" not in body and " copy(" not in body:
        continue
    shape = tuple(int(d) for d in dims.split(",") if d)
    op_name = re.search(r'op_name="([^"]*)"', rest)
    copy = Copy(name, shape, op_name.group(1) if op_name else "")
    if copy.elements >= min_elements:
      copies.append(copy)
  return copies


def _train_step_module(dump_dir: str) -> str:
  found = sorted(glob.glob(os.path.join(dump_dir, "*jit_train.cpu_after_optimizations.txt")))
  if not found:
    raise SystemExit(f"no optimized train-step module (*jit_train.cpu_after_optimizations.txt) in {dump_dir}")
  return found[-1]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m scaling.bench.layout_copies", description=__doc__)
  parser.add_argument("dump_dir")
  parser.add_argument("--min-elements", type=int, default=1 << 16)
  args = parser.parse_args(argv)
  path = _train_step_module(args.dump_dir)
  with open(path, encoding="utf-8") as f:
    copies = layout_copies(f.read(), args.min_elements)
  for part, chosen in (("forward", [c for c in copies if not c.backward]),
                       ("backward", [c for c in copies if c.backward])):
    print(f"{part}: {len(chosen)} copies of ≥ {args.min_elements:,} elements, "
          f"{sum(c.elements for c in chosen):,} elements in all")
    for c in sorted(chosen, key=lambda c: -c.elements)[:5]:
      print(f"  {c.elements:>12,}  f32{list(c.shape)}  {c.op_name}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

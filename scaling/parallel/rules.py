"""The one place that decides how arrays are split over the mesh.

Layers name *logical* axes (`embed`, `mlp`, `heads`, `vocab`, ...); `RULES` maps each to mesh axes
(`data`, `fsdp`, `tensor`) by default (MaxText's `logical_axis_rules`). Parameters are FSDP-sharded
over their `embed` dimension and tensor-sharded over heads, MLP hidden units, recurrent units and
the vocabulary; activations are split over the batch only. A run changes the parallelism without
an edit: `mesh.rules` ("embed=tensor,mlp=fsdp") overrides entries (`parse`, `table`), and the
jitted steps trace inside `axis_rules(table)`, where Flax and every helper here (`constrain`,
`mesh_axes`, `split_size`) read the run's table. What a mesh requires of the sizes (`unsplittable`)
is read off the table and the parameters a model builds, so remapping an axis moves the checks too.
"""

import math
from typing import Callable


import jax
from flax import nnx
from flax.core import spmd as flax_spmd
from jax.sharding import AxisType, PartitionSpec

from scaling.errors import InputError

MESH_AXES = ("data", "fsdp", "tensor")

RULES = (
    # Activations.
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("act_embed", None),
    # Parameters.
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("head_dim", None),
    ("qkv", None),  # a fused attention weight's q, k, v: each device holds all three of its heads
    ("mlp", "tensor"),
    ("norm", None),
    ("position", None),
    ("layers", None),  # the stacked-blocks axis of a scanned model
    ("recurrent", "tensor"),  # LSTM/RNN hidden units: a device holds every gate of its units
    ("gate", None),  # an LSTM's 4 gates (i, f, g, o), SwiGLU's gate and up: kept whole, math stays local
    ("gates", None),  # an LSTM's flat [4·D] bias: small, replicated
)

# The layouts the models pin activations to (`constrain`, attention's kernels) and the embedding's
# gradient takes, each as wide as it gets: a table must not split two of a layout's dimensions over
# one mesh axis. Parameters' layouts are read off the model (`param_layouts`).
ACTIVATION_LAYOUTS = (
    ("batch", "length", "act_embed"),
    ("batch", "length", "heads"),
    ("vocab", "act_embed"),
    ("vocab", "embed"),
)


def table(overrides=()) -> tuple:
  """`RULES` with a run's overrides (`parse`d from `mesh.rules`) in place of their defaults."""
  changed = dict(overrides)
  return tuple((name, changed.get(name, target)) for name, target in RULES)


def current() -> tuple:
  """The table in scope: the run's, inside its `axis_rules(table)`; `RULES` outside one."""
  return tuple(flax_spmd.get_logical_axis_rules()) or RULES


def axis_rules(rules_table=None):
  """Context in which Flax resolves the logical names on variables, and `constrain`, `mesh_axes`,
  `split_size` resolve theirs, through `rules_table` (default `RULES`): the jitted steps trace in it."""
  return nnx.logical_axis_rules(RULES if rules_table is None else rules_table)


def logical_to_spec(logical_axes, rules_table=None) -> PartitionSpec:
  """('batch', 'length', 'act_embed') -> PartitionSpec(('data', 'fsdp'), None, None)."""
  targets = dict(current() if rules_table is None else rules_table)
  return PartitionSpec(*(targets[name] if name is not None else None for name in logical_axes))


def constrain(x, logical_axes):
  """Pins an activation's layout inside jit; a no-op outside a mesh (e.g. plain eager tests)."""
  if jax.sharding.get_abstract_mesh().empty:
    return x
  return jax.lax.with_sharding_constraint(x, logical_to_spec(logical_axes))


def mesh_axes(logical_axis: str, rules_table=None) -> tuple[str, ...]:
  """The mesh axes `logical_axis` is split over; () when it is replicated or has no rule."""
  target = dict(current() if rules_table is None else rules_table).get(logical_axis)
  return () if target is None else (target,) if isinstance(target, str) else tuple(target)


def split_size(logical_axis: str, mesh_sizes=None, rules_table=None) -> int:
  """How many ways `mesh_sizes` ({mesh axis: size}; default the current mesh's, 1 outside one)
  split `logical_axis`."""
  if mesh_sizes is None:
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
      return 1
    mesh_sizes = mesh.shape
  return math.prod(mesh_sizes[axis] for axis in mesh_axes(logical_axis, rules_table))


def parse(text: str) -> tuple:
  """`mesh.rules` ("embed=tensor,batch=data+fsdp,heads=none") -> ((logical axis, target), ...):
  `+` joins the mesh axes one logical axis is split over, `none` replicates it; "" keeps `RULES`.
  Raises one InputError naming the entry: bad syntax, an unknown logical or mesh axis, a logical
  axis named twice, a mesh axis twice in one target."""
  if not isinstance(text, str):
    raise InputError(f"mesh.rules must be a string like 'embed=tensor,mlp=fsdp', got {text!r}")
  overrides = {}
  for entry in filter(None, (part.strip() for part in text.split(","))):
    name, _, target = (part.strip() for part in entry.partition("="))
    if not name or not target:
      raise InputError(f"mesh.rules: {entry!r} is not LOGICAL_AXIS=MESH_AXES (e.g. embed=tensor, "
                       "batch=data+fsdp, heads=none)")
    if name not in dict(RULES):
      raise InputError(f"mesh.rules: {name!r} is not a logical axis (known: "
                       f"{', '.join(known for known, _ in RULES)})")
    if name in overrides:
      raise InputError(f"mesh.rules names {name} twice")
    axes = () if target == "none" else tuple(axis.strip() for axis in target.split("+"))
    for axis in axes:
      if axis not in MESH_AXES:
        raise InputError(f"mesh.rules: {entry}: {axis!r} is not a mesh axis (mesh axes: "
                         f"{', '.join(MESH_AXES)}; none replicates)")
    if len(set(axes)) < len(axes):
      raise InputError(f"mesh.rules: {entry} names a mesh axis twice")
    overrides[name] = None if not axes else axes[0] if len(axes) == 1 else axes
  return tuple(overrides.items())


def repeated_mesh_axis(logical_axes, rules_table) -> str | None:
  """The first mesh axis that would split two dimensions of a tensor laid out as `logical_axes`
  (a layout JAX cannot express), or None."""
  seen = set()
  for name in logical_axes:
    for axis in mesh_axes(name, rules_table) if name is not None else ():
      if axis in seen:
        return axis
      seen.add(axis)
  return None


def check_layouts(layouts, rules_table) -> None:
  """InputError naming the first of `layouts` (tuples of logical axes) in which one mesh axis of
  `rules_table` would split two dimensions."""
  for logical_axes in layouts:
    axis = repeated_mesh_axis(logical_axes, rules_table)
    if axis is not None:
      named = ", ".join(f"{name}={'+'.join(mesh_axes(name, rules_table))}"
                        for name in logical_axes if axis in mesh_axes(name, rules_table))
      raise InputError(f"mesh.rules: {named} would split one tensor "
                       f"[{', '.join(str(name) for name in logical_axes)}] twice over mesh.{axis}")


def param_split_keys(overrides=()) -> str:
  """The config keys whose mesh axes shard the parameters (their `embed` dimension) under `RULES`
  with a run's `overrides`: what advice to shard a model over more devices names."""
  axes = mesh_axes("embed", table(overrides))
  return " × ".join(f"mesh.{axis}" for axis in axes) or "mesh.rules with embed on a mesh axis"


def param_layouts(create: Callable) -> set[tuple[tuple, tuple]]:
  """{(logical axes, shape)} of the parameters of the nnx.Module `create()` builds, traced on one
  device without allocating anything."""
  one_device = jax.make_mesh((1,) * len(MESH_AXES), MESH_AXES, devices=jax.devices()[:1],
                             axis_types=(AxisType.Auto,) * len(MESH_AXES))
  with jax.set_mesh(one_device), axis_rules():
    params = nnx.state(nnx.eval_shape(create), nnx.Param)
  return {(tuple(variable.get_metadata().get("out_sharding") or (None,) * len(variable.shape)),
           tuple(variable.shape))
          for variable in jax.tree.leaves(params, is_leaf=lambda x: isinstance(x, nnx.Variable))}


def unsplittable(layouts, mesh_sizes: dict[str, int], rules_table=None):
  """(logical axis, size, its mesh axes, how many ways they split it) for each parameter size
  (`layouts` as `param_layouts` gives them) the mesh cannot split evenly, in the order of `RULES`."""
  sizes: dict[str, set[int]] = {}
  for logical_axes, shape in layouts:
    for name, size in zip(logical_axes, shape):
      if name is not None:
        sizes.setdefault(name, set()).add(size)
  rules_table = current() if rules_table is None else rules_table
  out = []
  for name, _ in RULES:
    ways = split_size(name, mesh_sizes, rules_table)
    axes = mesh_axes(name, rules_table)
    out += [(name, size, axes, ways) for size in sorted(sizes.get(name, ())) if size % ways]
  return out

"""The one place that decides how arrays are split over the mesh.

Layers name *logical* axes (`embed`, `mlp`, `heads`, `vocab`, ...); `RULES` maps each to mesh axes
(`data`, `fsdp`, `tensor`). Changing the parallelism is editing this table, not the model (MaxText's
logical-axis rules). Parameters are FSDP-sharded over their `embed` dimension and tensor-sharded over
heads, MLP hidden units, recurrent units and the vocabulary; activations are split over the batch
only. What a mesh requires of the sizes (`unsplittable`) is read off this table and the parameters a
model builds, so remapping an axis here moves the checks with it.
"""

import math
from typing import Callable


import jax
from flax import nnx
from jax.sharding import AxisType, PartitionSpec

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


def axis_rules():
  """Context in which Flax resolves the logical names on variables through `RULES`."""
  return nnx.logical_axis_rules(RULES)


def logical_to_spec(logical_axes) -> PartitionSpec:
  """('batch', 'length', 'act_embed') -> PartitionSpec(('data', 'fsdp'), None, None)."""
  table = dict(RULES)
  return PartitionSpec(*(table[name] if name is not None else None for name in logical_axes))


def constrain(x, logical_axes):
  """Pins an activation's layout inside jit; a no-op outside a mesh (e.g. plain eager tests)."""
  if jax.sharding.get_abstract_mesh().empty:
    return x
  return jax.lax.with_sharding_constraint(x, logical_to_spec(logical_axes))


def mesh_axes(logical_axis: str) -> tuple[str, ...]:
  """The mesh axes `logical_axis` is split over; () when it is replicated or has no rule."""
  target = dict(RULES).get(logical_axis)
  return () if target is None else (target,) if isinstance(target, str) else tuple(target)


def split_size(logical_axis: str) -> int:
  """How many ways the current mesh splits `logical_axis` (1 outside a mesh)."""
  mesh = jax.sharding.get_abstract_mesh()
  return 1 if mesh.empty else math.prod(mesh.shape[axis] for axis in mesh_axes(logical_axis))


def param_axis_sizes(create: Callable) -> dict[str, set[int]]:
  """{logical axis: sizes of the parameter dimensions naming it} of the nnx.Module `create()`
  builds, traced on one device without allocating anything."""
  one_device = jax.make_mesh((1,) * len(MESH_AXES), MESH_AXES, devices=jax.devices()[:1],
                             axis_types=(AxisType.Auto,) * len(MESH_AXES))
  with jax.set_mesh(one_device), axis_rules():
    params = nnx.state(nnx.eval_shape(create), nnx.Param)
  sizes: dict[str, set[int]] = {}
  for variable in jax.tree.leaves(params, is_leaf=lambda x: isinstance(x, nnx.Variable)):
    for name, size in zip(variable.get_metadata().get("out_sharding") or (), variable.shape):
      if name is not None:
        sizes.setdefault(name, set()).add(size)
  return sizes


def unsplittable(axis_sizes: dict[str, set[int]], mesh_sizes: dict[str, int]):
  """(logical axis, size, its mesh axes, how many ways they split it) for each size the mesh cannot
  split evenly, in the order of `RULES`."""
  out = []
  for name, _ in RULES:
    axes = mesh_axes(name)
    ways = math.prod(mesh_sizes[axis] for axis in axes)
    out += [(name, size, axes, ways) for size in sorted(axis_sizes.get(name, ())) if size % ways]
  return out

"""The one place that decides how arrays are split over the mesh.

Layers name *logical* axes (`embed`, `mlp`, `heads`, `vocab`, ...); `RULES` maps each to mesh axes
(`data`, `fsdp`, `tensor`). Changing the parallelism is editing this table, not the model (MaxText's
logical-axis rules). Parameters are FSDP-sharded over their `embed` dimension and tensor-sharded over
heads, MLP hidden units and the vocabulary; activations are split over the batch only.
"""

import jax
from flax import nnx
from jax.sharding import PartitionSpec

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

"""Size ladders: the model of a family whose non-embedding count hits a target N.

Sweep planning asks for models of N = 1e4 .. 1e10 non-embedding parameters (Kaplan et al. 2020
sec. 2.1), each family counting its own (`registry.Architecture.param_counts`) and resizing by its
own rule (`Architecture.resize`). The Transformer's is `shape_for`: a named rule says how deep a
model of a given width should be, followed to the target on a grid of valid widths; everything else
(norm, MLP kind and ratio, vocab, positions) comes from a base config.
"""

import dataclasses
import itertools
import math
import numbers
from typing import Callable, Iterator, Sequence

from scaling.errors import InputError
from scaling.models import registry
from scaling.models.config import ModelConfig

# Width grid: d_model starts at 16 (the tiny CPU models) and steps by a sixteenth of its octave, at
# least 2 (head dims stay even, as rotary needs) and at most 64 (from 1024 on, every width is a
# multiple of 64). Neighbouring widths differ by <= 1/16 (<= 1/8 below 32), so at fixed depth N
# steps by <= 13 % (27 %) and the nearest width misses a target by <= 6.5 % (12.5 %).
MIN_D_MODEL = 16
MAX_WIDTH_STEP = 64
# Head dim 64 (GPT-2; Chinchilla Table A9 up to d_model 1024) wherever the width allows.
MAX_HEAD_DIM = 64
# Kaplan et al. 2020 sec. 3.1, Fig. 5: at fixed N, loss changes by only a few percent over a wide
# range of d_model / n_layers; 64 lies inside that flat range and is GPT-2 small's (768 / 12) ratio.
KAPLAN_ASPECT = 64.0
# Hoffmann et al. 2022 Table A9 (all 50 models, 44M to 16B): a least-squares fit of log n_layers on
# log d_model gives n_layers = 0.16 · d_model^0.67, so d_model / n_layers grows from ~50 at d_model
# 512 to ~105 at 5120 (Chinchilla itself: 8192 / 80 = 102).
CHINCHILLA_DEPTH_COEF = 0.16
CHINCHILLA_DEPTH_EXP = 0.67
ASPECT_PREFIX = "aspect:"
# "heads:<h>", the ladder for tiny scale: every head h wide (d_model = n_heads·h, so widths step by
# h and neighbouring sizes never trade a head count for a head width, as the default grid's fewest
# even-dim heads do), at least two layers (the smallest depth at which attention heads compose, as
# induction heads need: Olsson et al. 2022), deeper as Hoffmann et al. 2022's Table A9 fit above.
# Its narrowest width is 8: with two layers of width 8 to 16 the ladder reaches N of 2e3 to 8e3,
# where the demo's smallest budgets put their smallest sizes.
HEADS_PREFIX = "heads:"
HEADS_MIN_LAYERS = 2
HEADS_MIN_D_MODEL = 8

# "tpu": the ladder for TPU meshes. A TPU's matrix units are 128×128 (256×256 on v6e) and it tiles
# arrays by 128 along their minor dimension, so every head is 128 wide and widths step by 128 (a
# width of 128·k splits evenly over any fsdp axis up to 128 ways; the chinchilla rule's 400 or 544
# does not, and head dims of 34-58 leave most of each tile padding). Depth follows Hoffmann et al.
# 2022's Table A9 fit as under "heads:<h>", snapped to an even number of layers (at least 2), so
# neighbouring sizes share depths and differ in width: one 128-step of width is a bigger move in N
# than one layer, and a ladder that alternated depth and width would zigzag in aspect ratio.
TPU_RULE = "tpu"
TPU_HEAD_DIM = 128

DepthRule = Callable[[int], float]  # d_model -> the rule's ideal (real-valued) n_layers


def _fixed_aspect(ratio: float) -> DepthRule:
  return lambda d_model: d_model / ratio


def _chinchilla_depth(d_model: int) -> float:
  return CHINCHILLA_DEPTH_COEF * d_model**CHINCHILLA_DEPTH_EXP


# The named depth rules; the parametrized families "aspect:<r>" (d_model / n_layers = r) and
# "heads:<h>" (head dim h) are parsed by `depth_rule` and `fixed_head_dim`.
DEPTH_RULES: dict[str, DepthRule] = {
    "kaplan": _fixed_aspect(KAPLAN_ASPECT),
    "chinchilla": _chinchilla_depth,
}


@dataclasses.dataclass(frozen=True)
class Shape:
  """The fields a ladder sets; `dataclasses.asdict(shape)` are the `model.*` overrides."""

  d_model: int
  n_layers: int
  n_heads: int


def fixed_head_dim(rule: str) -> int | None:
  """h of a "heads:<h>" rule (an even integer >= 2, as rotary needs), 128 for "tpu", else None."""
  if rule == TPU_RULE:
    return TPU_HEAD_DIM
  if not (isinstance(rule, str) and rule.startswith(HEADS_PREFIX)):
    return None
  text = rule[len(HEADS_PREFIX):]
  if not (text.isdigit() and int(text) >= 2 and int(text) % 2 == 0):
    raise InputError(f"ladder rule {HEADS_PREFIX}<h> needs an even integer head dim h >= 2, "
                     f"got {rule!r}")
  return int(text)


def depth_rule(rule: str) -> DepthRule:
  """The rule's ideal depth as a function of width: a name in `DEPTH_RULES`, "aspect:<r>" with r > 0,
  or "heads:<h>" (Chinchilla's depth, at least `HEADS_MIN_LAYERS`)."""
  if isinstance(rule, str) and rule in DEPTH_RULES:
    return DEPTH_RULES[rule]
  if rule == TPU_RULE:
    return lambda d_model: 2 * max(1, math.floor(_chinchilla_depth(d_model) / 2 + 0.5))
  if fixed_head_dim(rule) is not None:
    return lambda d_model: max(HEADS_MIN_LAYERS, _chinchilla_depth(d_model))
  if isinstance(rule, str) and rule.startswith(ASPECT_PREFIX):
    try:
      ratio = float(rule[len(ASPECT_PREFIX):])
    except ValueError:
      ratio = math.nan
    if math.isfinite(ratio) and ratio > 0:
      return _fixed_aspect(ratio)
  known = ", ".join([*DEPTH_RULES, TPU_RULE])
  raise InputError(f"ladder rule must be {known}, {ASPECT_PREFIX}<r> with r > 0 or "
                   f"{HEADS_PREFIX}<h>, got {rule!r}")


def _widths(head_dim: int | None = None) -> Iterator[int]:
  """The width grid: multiples of a fixed head dim from HEADS_MIN_D_MODEL on, else the default."""
  if head_dim:
    yield from itertools.count(head_dim * math.ceil(HEADS_MIN_D_MODEL / head_dim), head_dim)
  d_model = MIN_D_MODEL
  while True:
    yield d_model
    octave = 1 << (d_model.bit_length() - 1)
    d_model += min(MAX_WIDTH_STEP, max(2, octave // 16))


def _n_heads(d_model: int, max_head_dim: int) -> int:
  """The fewest heads whose head dim is even, divides d_model and is at most max_head_dim."""
  head_dims = range(min(max_head_dim, d_model), 1, -1)
  return d_model // next(h for h in head_dims if h % 2 == 0 and d_model % h == 0)


def _non_embedding(base_cfg: ModelConfig, shape: Shape) -> int:
  cfg = dataclasses.replace(base_cfg, **dataclasses.asdict(shape))
  return registry.get(cfg.arch).param_counts(cfg)["non_embedding"]


def check_target(target) -> None:
  if isinstance(target, bool) or not isinstance(target, numbers.Real) or not 0 < target < math.inf:
    raise InputError(f"ladder target must be a positive, finite parameter count, got {target!r}")


def closest_width(target: float, n_non_embedding: Callable[[int], int],
                  head_dim: int | None = None) -> int:
  """The grid width whose count is closest to target (ratio-wise); counts grow with width."""
  below = None
  for d_model in _widths(head_dim):
    n = n_non_embedding(d_model)
    if n >= target:
      if below is not None and math.log(target / below[1]) <= math.log(n / target):
        return below[0]
      return d_model
    below = (d_model, n)


def shape_for(target: float, rule: str, base_cfg: ModelConfig, *,
              max_head_dim: int = MAX_HEAD_DIM) -> Shape:
  """The shape under `rule` whose non_embedding count is closest to `target` (ratio-wise).

  Two steps, so that depth follows the rule and never goes down as the target grows: walk the rule's
  curve (each grid width with the rule's depth rounded, at least 1) to the point nearest the target
  and keep its depth; then, at that depth, take the grid width nearest the target, which absorbs the
  rounding of the depth. For n_layers >= 2 that leaves the rule's depth at the chosen width within
  a factor (1 ± 1/(2·n_layers))^1.5 of n_layers (as N ∝ n_layers·d_model², up to the grid step);
  one-layer models are as wide as the target needs. Targets below the smallest model (d_model 16, one layer;
  under "heads:<h>", the narrowest multiple of h from 8 on, two layers) get that model. Under
  "heads:<h>" every head is h wide and `max_head_dim` does not apply.
  """
  depth = depth_rule(rule)
  head_dim = fixed_head_dim(rule)
  check_target(target)
  if base_cfg.d_ff:
    raise InputError(
        f"model.d_ff={base_cfg.d_ff} is fixed; a ladder scales the MLP with d_model through "
        "model.mlp_ratio, so set model.d_ff = 0")
  if isinstance(max_head_dim, bool) or not isinstance(max_head_dim, int) or max_head_dim < 2:
    raise InputError(f"ladder max_head_dim must be an integer >= 2, got {max_head_dim!r}")

  def rule_depth(d_model: int) -> int:
    return max(1, math.floor(depth(d_model) + 0.5))

  def shape(d_model: int, n_layers: int) -> Shape:
    n_heads = d_model // head_dim if head_dim else _n_heads(d_model, max_head_dim)
    return Shape(d_model=d_model, n_layers=n_layers, n_heads=n_heads)

  on_rule = closest_width(target, lambda d: _non_embedding(base_cfg, shape(d, rule_depth(d))),
                          head_dim)
  n_layers = rule_depth(on_rule)
  d_model = closest_width(target, lambda d: _non_embedding(base_cfg, shape(d, n_layers)), head_dim)
  return shape(d_model, n_layers)


def ladder(targets: Sequence[float], rule: str, base_cfg: ModelConfig) -> list[ModelConfig]:
  """`base_cfg` resized by its family to each target, in the order given (equal shapes kept)."""
  resize = registry.get(base_cfg.arch).resize
  return [resize(target, rule, base_cfg) for target in targets]

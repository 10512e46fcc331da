"""A sweep config becomes a plan: named runs, each a full train config, before anything runs.

Three kinds (configs/sweeps/base.py documents every key):
- isoflop: Hoffmann et al. 2022 Approach 2. For each budget C, K sizes evenly spaced in log N around
  the expected optimum N*(C), each trained for D = C / flops_per_token(N) tokens.
- ladder: Kaplan et al. 2020's L(N): sizes at one horizon (fixed tokens or tokens per parameter).
- curves: Hoffmann et al. 2022 Approach 1: each size trained to several horizons, one run per
  horizon, so each run's cosine schedule ends where it stops.
Sizes are non-embedding counts N, turned into shapes by the size ladder; runs last a whole number of
steps, so each run's real FLOPs (what is logged and fitted) differ from the nominal budget by less
than half a step.
"""

import dataclasses
import math
import numbers
import os

import ml_collections

from scaling import models, rundir
from scaling.data.corpus import DataConfig
from scaling.data.tokenizer import load_tokenizer
from scaling.errors import InputError
from scaling.models import ladder, registry
from scaling.models.config import ModelConfig
from scaling.sweep import config as sweep_config
from scaling.sweep import recipe as recipe_lib
from scaling.sweep import resources
from scaling.train import config as train_config

@dataclasses.dataclass(frozen=True)
class Run:
  """One training run of a sweep; `config` is the full train config handed to `trainer.train`."""

  name: str  # stable and filesystem-safe, encodes budget and/or size and horizon
  workdir: str
  config: ml_collections.ConfigDict
  budget: float  # nominal compute in the plan's convention: the IsoFLOP budget, or the horizon's
  target_params: float  # the non-embedding N asked of the ladder
  params: int
  params_non_embedding: int
  steps: int
  tokens: int
  flops: float  # real: tokens × flops per token, in the plan's convention

  @property
  def model(self) -> ModelConfig:
    return ModelConfig.from_dict(self.config.model.to_dict())

  def summary(self) -> dict:
    """What plan.json records about the run, besides its config."""
    model = self.model
    n_heads = getattr(model, "n_heads", None)  # None: a family without attention heads
    return {
        "name": self.name, "budget": self.budget, "target_params": self.target_params,
        "d_model": model.d_model, "n_layers": model.n_layers, "n_heads": n_heads,
        "params": self.params, "params_non_embedding": self.params_non_embedding,
        "steps": self.steps, "tokens": self.tokens,
        "tokens_per_param": self.tokens / self.params_non_embedding, "flops": self.flops,
        "batch_size": self.config.batch_size, "learning_rate": self.config.learning_rate,
        "warmup_steps": self.config.warmup_steps,
    }


@dataclasses.dataclass(frozen=True)
class Plan:
  kind: str
  recipe: recipe_lib.Recipe
  rule: str
  flops_convention: str
  workdir: str
  sweep: dict  # the validated `config.sweep` keys
  runs: tuple[Run, ...]

  def to_json(self) -> dict:
    return {
        "kind": self.kind, "recipe": dataclasses.asdict(self.recipe), "rule": self.rule,
        "flops_convention": self.flops_convention, "sweep": self.sweep,
        "runs": [{**run.summary(), "workdir": os.path.relpath(run.workdir, self.workdir),
                  "config": run.config.to_dict()} for run in self.runs],
    }

  def table(self) -> str:
    """The plan as a fixed-width table, one run per line (what `--dry-run` prints)."""
    header = ("name", "d_model", "n_layers", "n_heads", "params", "N", "batch", "lr", "warmup",
              "steps", "tokens", "tokens/N", "FLOPs", "budget")
    lines = [header]
    for run in self.runs:
      s = run.summary()
      heads = "-" if s["n_heads"] is None else str(s["n_heads"])
      lines.append((run.name, str(s["d_model"]), str(s["n_layers"]), heads,
                    f"{run.params:,}", f"{run.params_non_embedding:,}", str(s["batch_size"]),
                    f"{s['learning_rate']:.3g}", f"{s['warmup_steps']:,}", f"{run.steps:,}",
                    f"{run.tokens:,}", f"{s['tokens_per_param']:.3g}", f"{run.flops:.3e}",
                    f"{run.budget:.3e}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rows = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(line, widths))) for line in lines]
    total = sum(run.flops for run in self.runs)
    rows.append(f"{len(self.runs)} runs, {total:.3e} FLOPs in all; N = non-embedding parameters; "
                f"FLOPs and budget in the {self.flops_convention} convention "
                f"(kind {self.kind}, recipe {self.recipe.name}, rule {self.rule})")
    return "\n".join(rows)


def short_number(x: float) -> str:
  """3 significant digits, no '+' or padding: 32896 -> '3.29e4', 1e12 -> '1e12'."""
  mantissa, exponent = f"{x:.2e}".split("e")
  mantissa = mantissa.rstrip("0").rstrip(".")
  return f"{mantissa}e{int(exponent)}"


def _check_number(value, key: str, *, integer=False, minimum=0.0, strict=True):
  kind = numbers.Integral if integer else numbers.Real
  ok = isinstance(value, kind) and not isinstance(value, bool)
  if not ok or not math.isfinite(value) or value < minimum or (strict and value == minimum):
    relation = ">" if strict else "≥"
    noun = "an integer" if integer else "a number"
    raise InputError(f"{key} must be {noun} {relation} {minimum:g}, got {value!r}")
  return value


def _positive_numbers(values, key: str) -> tuple[float, ...]:
  if not isinstance(values, (tuple, list)) or not values:
    raise InputError(f"{key} must be a non-empty tuple of positive numbers, got {values!r}")
  for value in values:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
      raise InputError(f"{key} must hold positive, finite numbers, got {value!r}")
  return tuple(float(v) for v in values)


def _check_keys(config: ml_collections.ConfigDict) -> None:
  reference = sweep_config.defaults()
  for key in config.keys():
    if key not in reference:
      raise InputError(f"{key} is not a known sweep config key (known: base, sweep)")
  for key in reference.keys():
    if key not in config:
      raise InputError(f"config.{key} is missing (start from scaling.sweep.config.defaults())")
  if not isinstance(config.sweep, (ml_collections.ConfigDict, dict)):
    raise InputError(f"sweep must be a group of keys, got {config.sweep!r}")
  for key in config.sweep.keys():
    if key not in reference.sweep:
      raise InputError(f"sweep.{key} is not a known sweep key (see configs/sweeps/base.py)")


def _check_other_kinds_unset(sweep, kind: str) -> None:
  """A key of another kind that differs from its default would be silently ignored: name it."""
  reference = sweep_config.defaults().sweep
  for keys in sweep_config.KIND_KEYS.values():
    for key in keys:
      if key not in sweep_config.KIND_KEYS[kind] and sweep[key] != reference[key]:
        raise InputError(f"sweep.{key} is set, but kind={kind} does not read it")


class _Sizer:
  """Shapes, counts and FLOPs per token of ladder sizes, all from the same base model and all
  asked of its family (`registry.Architecture`)."""

  # The ladder's nearest width misses a target by at most 12.5 % below d_model 32
  # (scaling/models/ladder.py); further below the smallest model, sizes stop following targets.
  SMALLEST_MISS = 1.125

  def __init__(self, base_model: ModelConfig, rule: str, convention: str):
    self.base_model, self.rule, self.convention = base_model, rule, convention
    self.architecture = models.get(base_model.arch)
    self.smallest_model = self.shape(1.0)
    self.smallest = self.counts(self.smallest_model)["non_embedding"]

  def shape(self, target: float) -> ModelConfig:
    return self.architecture.resize(target, self.rule, self.base_model)

  def model(self, target: float, key: str) -> ModelConfig:
    if target * self.SMALLEST_MISS < self.smallest:
      smallest = self.smallest_model
      depth = "one layer" if smallest.n_layers == 1 else f"{smallest.n_layers} layers"
      raise InputError(f"{key}: size N={target:.3g} is below the smallest model of the ladder "
                       f"(N={self.smallest:,}, d_model {smallest.d_model}, {depth})")
    return self.shape(target)

  def counts(self, model: ModelConfig) -> dict[str, int]:
    return self.architecture.param_counts(model)

  def flops_per_token(self, model: ModelConfig) -> float:
    return self.architecture.flops_per_token(model)[self.convention]


def _tokens_per_param_centre(budget: float, ratio: float, sizer: _Sizer) -> float:
  """N* with C / (flops_per_token(N*) · N*) = ratio: bisection in log N along the ladder.

  Every convention counts at least the 6N of the matmuls, so C ≥ 6·N*²·ratio bounds the search.
  """
  low, high = 0.0, math.log(2 * math.sqrt(budget / (6 * ratio)) + 2)
  for _ in range(30):  # halves a bracket of at most ~e^35 (C < 1e30): N* to ~1e-7 relative
    middle = (low + high) / 2
    n = math.exp(middle)
    if budget / (sizer.flops_per_token(sizer.shape(n)) * n) > ratio:
      low = middle
    else:
      high = middle
  return math.exp((low + high) / 2)


def _centres(sweep, budgets: tuple[float, ...], sizer: _Sizer) -> list[float]:
  """The expected optimum N*(C) of each budget, which its size grid is centred on."""
  optimum = sweep.optimum
  if optimum == "tokens_per_param":
    ratio = _check_number(sweep.optimum_tokens_per_param, "sweep.optimum_tokens_per_param")
    return [_tokens_per_param_centre(c, ratio, sizer) for c in budgets]
  if optimum == "power_law":
    coefficient = _check_number(sweep.optimum_coefficient, "sweep.optimum_coefficient")
    exponent = _check_number(sweep.optimum_exponent, "sweep.optimum_exponent", strict=False)
    return [coefficient * c**exponent for c in budgets]
  if optimum == "sizes":
    sizes = _positive_numbers(sweep.optimum_sizes, "sweep.optimum_sizes")
    if len(sizes) != len(budgets):
      raise InputError(f"sweep.optimum_sizes needs one size per budget ({len(budgets)}), "
                       f"got {len(sizes)}")
    return list(sizes)
  raise InputError(
      f"sweep.optimum must be one of {', '.join(sweep_config.OPTIMA)}, got {optimum!r}")


@dataclasses.dataclass(frozen=True)
class _Point:
  """One (size, horizon) of a plan before it becomes a Run."""

  model: ModelConfig
  target_params: float
  tokens: float  # the horizon asked for, before rounding to whole steps
  budget: float
  key: str  # the sweep key to blame when this point cannot become a run


def _isoflop_points(sweep, sizer: _Sizer) -> list[_Point]:
  budgets = _positive_numbers(sweep.budgets, "sweep.budgets")
  k = _check_number(sweep.sizes_per_budget, "sweep.sizes_per_budget", integer=True, minimum=3,
                    strict=False)
  span = _check_number(sweep.size_span, "sweep.size_span", minimum=1.0)
  points = []
  for budget, centre in zip(budgets, _centres(sweep, budgets, sizer)):
    shapes = {}
    for i in range(k):
      target = centre * span ** (i / (k - 1) - 0.5)
      model = sizer.model(target, f"sweep.budgets (at C={budget:.3g}, around N*={centre:.3g})")
      if model in shapes:
        raise InputError(
            f"sweep.size_span: at budget {budget:.3g} the targets N={shapes[model]:.3g} and "
            f"N={target:.3g} give the same shape (d_model {model.d_model}, n_layers "
            f"{model.n_layers}); widen sweep.size_span, lower sweep.sizes_per_budget or raise "
            "the budget")
      shapes[model] = target
      points.append(_Point(model, target, budget / sizer.flops_per_token(model), budget,
                           "sweep.budgets"))
  return points


def _horizon_points(sweep, sizer: _Sizer, kind: str) -> list[_Point]:
  sizes = _positive_numbers(sweep.sizes, "sweep.sizes")
  if bool(sweep.tokens) == bool(sweep.tokens_per_param):
    raise InputError(f"kind={kind} needs exactly one of sweep.tokens and sweep.tokens_per_param")
  key = "sweep.tokens" if sweep.tokens else "sweep.tokens_per_param"
  horizons = _positive_numbers(sweep[key.split(".")[1]], key)
  if kind == "ladder" and len(horizons) != 1:
    raise InputError(f"{key}: a ladder trains every size to one horizon, got {len(horizons)} "
                     "(several horizons: kind=curves)")
  if kind == "curves" and len(horizons) < 2:
    raise InputError(f"{key}: curves train every size to several horizons, got one "
                     "(one horizon: kind=ladder)")
  points, seen = [], {}
  for target in sizes:
    model = sizer.model(target, "sweep.sizes")
    if model in seen:
      raise InputError(f"sweep.sizes: N={seen[model]:.3g} and N={target:.3g} give the same shape "
                       f"(d_model {model.d_model}, n_layers {model.n_layers})")
    seen[model] = target
    n = sizer.counts(model)["non_embedding"]
    for horizon in horizons:
      tokens = horizon if key == "sweep.tokens" else horizon * n
      points.append(_Point(model, target, tokens, sizer.flops_per_token(model) * tokens, key))
  return points


def _replicated(sweep, base_seed: int):
  """point -> the replicate seeds it is also trained with (`sweep.replicate_seeds`)."""
  seeds = sweep.replicate_seeds
  if not isinstance(seeds, (tuple, list)) or any(
      isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in seeds):
    raise InputError(f"sweep.replicate_seeds must be a tuple of integer seeds >= 0, got {seeds!r}")
  if len(set(seeds)) != len(seeds) or base_seed in seeds:
    raise InputError(f"sweep.replicate_seeds must be distinct and differ from base.seed "
                     f"({base_seed}), got {tuple(seeds)!r}")
  budgets = sweep.replicate_budgets
  if budgets:
    budgets = _positive_numbers(budgets, "sweep.replicate_budgets")
    unknown = [b for b in budgets if b not in tuple(float(c) for c in sweep.budgets)]
    if unknown:
      raise InputError(f"sweep.replicate_budgets: {unknown[0]:.4g} is not one of sweep.budgets")
  return lambda point: tuple(seeds) if not budgets or point.budget in budgets else ()


def build(config: ml_collections.ConfigDict, workdir: str) -> Plan:
  """Validates a sweep config and returns its runs, in order; runs nothing, writes nothing."""
  _check_keys(config)
  sweep = config.sweep
  base = config.base.copy_and_resolve_references()
  # The sweep sets the run length and warmup itself; validate the rest of the base as it stands.
  base.train_steps, base.train_tokens, base.warmup_steps = 1, 0, 0
  try:
    tokenizer = load_tokenizer(DataConfig.from_dict(base.data).tokenizer)
    base_cfg = train_config.validate(base, vocab_size=tokenizer.vocab_size)
  except InputError as e:
    raise InputError(f"base.{e}") from None
  recipe = recipe_lib.get(sweep.recipe)
  try:
    ladder.depth_rule(sweep.rule)
  except InputError as e:
    raise InputError(f"sweep.rule: {e}") from None
  if sweep.flops_convention not in registry.CONVENTIONS:
    raise InputError(f"sweep.flops_convention must be one of {', '.join(registry.CONVENTIONS)}, "
                     f"got {sweep.flops_convention!r}")
  if sweep.kind not in sweep_config.KINDS:
    raise InputError(
        f"sweep.kind must be one of {', '.join(sweep_config.KINDS)}, got {sweep.kind!r}")
  _check_other_kinds_unset(sweep, sweep.kind)
  try:  # the family refuses a base it cannot resize (e.g. a Transformer's fixed d_ff)
    sizer = _Sizer(base_cfg.model, sweep.rule, sweep.flops_convention)
  except InputError as e:
    raise InputError(f"base.{e}") from None
  points = (_isoflop_points(sweep, sizer) if sweep.kind == "isoflop"
            else _horizon_points(sweep, sizer, sweep.kind))

  tokens_per_step = recipe.batch_size * base_cfg.model.seq_len
  replicated = _replicated(sweep, base.seed)
  runs, names = [], set()
  for point, seed in ((p, s) for p in points for s in (base.seed, *replicated(p))):
    steps = round(point.tokens / tokens_per_step)
    if steps < 1:
      raise InputError(
          f"{point.key}: {point.tokens:.3g} tokens for N={point.target_params:.3g} is less than "
          f"half a step ({tokens_per_step} tokens = batch {recipe.batch_size} × seq_len "
          f"{base_cfg.model.seq_len}); raise it")
    counts = sizer.counts(point.model)
    tokens = steps * tokens_per_step
    size = f"N{short_number(counts['non_embedding'])}"
    name = (f"C{short_number(point.budget)}_{size}" if sweep.kind == "isoflop"
            else f"{size}_D{short_number(tokens)}") + (f"_s{seed}" if seed != base.seed else "")
    if name in names:
      raise InputError(f"{point.key}: two runs round to the same name {name}; space the values out")
    names.add(name)
    run_config = base.copy_and_resolve_references()
    for key, value in dataclasses.asdict(point.model).items():  # the shape, the resolved vocab
      if key == "vocab_size" or value != getattr(base_cfg.model, key):
        run_config.model[key] = value
    run_config.batch_size = recipe.batch_size
    run_config.seed = seed
    run_config.train_steps = steps
    run_config.train_tokens = 0
    run_config.wandb_name = name  # W&B: one run per name, grouped by the sweep directory's name
    run_config.wandb_group = base.wandb_group or rundir.RunDir(rundir.absolute(workdir)).name
    for key, value in recipe.overrides(point.model, steps).items():
      run_config[key] = value
    runs.append(Run(
        name=name, workdir=rundir.SweepDir(workdir).run(name).root, config=run_config,
        budget=point.budget, target_params=point.target_params, params=counts["total"],
        params_non_embedding=counts["non_embedding"], steps=steps, tokens=tokens,
        flops=tokens * sizer.flops_per_token(point.model)))
  resources.check(sweep, [run.params_non_embedding for run in runs])
  return Plan(kind=sweep.kind, recipe=recipe, rule=sweep.rule,
              flops_convention=sweep.flops_convention, workdir=workdir, sweep=sweep.to_dict(),
              runs=tuple(runs))

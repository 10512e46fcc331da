"""A sweep config becomes a plan: named runs, each a full train config, before anything runs.

Five kinds (scaling/sweep/config.py documents every key):
- isoflop: Hoffmann et al. 2022 Approach 2. For each budget C, K sizes evenly spaced in log N around
  the expected optimum N*(C), each trained for D = C / flops_per_token(N) tokens.
- ladder: Kaplan et al. 2020's L(N): sizes at one horizon (fixed tokens or tokens per parameter).
- curves: Hoffmann et al. 2022 Approach 1: each size trained to several horizons, one run per
  horizon, so each run's cosine schedule ends where it stops.
- shapes: explicit models ("lstm:80:2", "transformer:64:2:position=rotary"), each trained to every
  horizon: architectures or variants compared at the same sizes and tokens (Kaplan et al. Fig. 7).
- hparams: each size at each horizon trained at every learning rate (multipliers of the recipe's)
  and batch size asked, the grid `scaling fit --approach hparams` finds each point's best LR in
  (Bjorck et al. 2024; DeepSeek LLM 2024). Runs are NAME_lr<multiplier>[_b<batch>].
Sizes are non-embedding counts N, turned into shapes by the size ladder (counted, like explicit
shapes, by each model's registered architecture); runs last a whole number of
steps, so each run's real FLOPs (what is logged and fitted) differ from the nominal budget by less
than half a step.
"""

import ast
import dataclasses
import math
import os

import ml_collections

from scaling import checks, models, rundir, storage
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
  shape: str = ""  # kind shapes: the sweep.shapes entry this run trains
  trunk: str = ""  # sweep.branches=cooldown: the trunk this run forks off ("" = trained alone)
  fork_step: int = 0  # ... at this step, its decay start; it trains steps fork_step..steps itself
  lr_source: str = ""  # what set its learning rate and batch: a recipe's rule or a fitted law
  batch_source: str = ""
  # a fitted law -> {N, D or C: value / the nearest end of the law's fitted range}, where outside
  extrapolation: dict = dataclasses.field(default_factory=dict)

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
        **({"lr_source": self.lr_source, "batch_source": self.batch_source,
            "extrapolated": bool(self.extrapolation), "extrapolation": self.extrapolation}
           if self.lr_source else {}),
        **({"arch": model.arch, "shape": self.shape} if self.shape else {}),
        **({"trunk": self.trunk, "fork_step": self.fork_step} if self.trunk else {}),
    }

  @property
  def flops_trained(self) -> float:
    """What training this run costs itself: a branch only its cooldown (its trunk pays the rest)."""
    return self.flops * (self.steps - self.fork_step) / self.steps


@dataclasses.dataclass(frozen=True)
class Plan:
  kind: str
  recipe: recipe_lib.Recipe
  rule: str
  flops_convention: str
  workdir: str
  sweep: dict  # the validated `config.sweep` keys
  runs: tuple[Run, ...]
  # sweep.branches=cooldown: the constant-LR runs that branches fork off; they yield no results row
  trunks: tuple[Run, ...] = ()

  @property
  def flops_independent(self) -> float:
    """What the plan's points cost trained as separate runs."""
    return sum(run.flops for run in self.runs)

  @property
  def flops_trained(self) -> float:
    """What the plan really trains: each trunk once, each branch its cooldown."""
    return sum(run.flops for run in self.trunks) + sum(run.flops_trained for run in self.runs)

  def to_json(self) -> dict:
    def entry(run):
      return {**run.summary(), "workdir": os.path.relpath(run.workdir, self.workdir),
              "config": run.config.to_dict()}

    return {
        "kind": self.kind, "recipe": dataclasses.asdict(self.recipe), "rule": self.rule,
        "flops_convention": self.flops_convention, "sweep": self.sweep,
        "runs": [entry(run) for run in self.runs],
        **({"trunks": [entry(trunk) for trunk in self.trunks]} if self.trunks else {}),
        "flops_trained": self.flops_trained, "flops_independent": self.flops_independent,
        "flops_ratio": self.flops_trained / self.flops_independent,
    }

  def table(self) -> str:
    """The plan as a fixed-width table, one run per line (what `--dry-run` prints)."""
    header = ("name", "d_model", "n_layers", "n_heads", "params", "N", "batch", "lr", "warmup",
              "steps", "tokens", "tokens/N", "FLOPs", "budget")
    if self.trunks:
      header += ("trunk", "fork")
    fitted = isinstance(self.recipe, recipe_lib.FittedRecipe)
    if fitted:
      header += ("lr set by", "batch set by")
    lines = [header]
    for run in (*self.trunks, *self.runs):
      s = run.summary()
      heads = "-" if s["n_heads"] is None else str(s["n_heads"])
      line = (run.name, str(s["d_model"]), str(s["n_layers"]), heads,
              f"{run.params:,}", f"{run.params_non_embedding:,}", str(s["batch_size"]),
              f"{s['learning_rate']:.3g}", f"{s['warmup_steps']:,}", f"{run.steps:,}",
              f"{run.tokens:,}", f"{s['tokens_per_param']:.3g}", f"{run.flops:.3e}",
              "trunk" if run.budget == 0 else f"{run.budget:.3e}")
      if self.trunks:
        line += (run.trunk or "-", f"{run.fork_step:,}" if run.trunk else "-")
      if fitted:
        line += (run.lr_source, run.batch_source)
      lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rows = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(line, widths))) for line in lines]
    total = sum(run.flops for run in self.runs)
    if self.trunks:
      rows.append(f"branches: {len(self.trunks)} trunks; flops_trained {self.flops_trained:.3e} / "
                  f"flops_independent {self.flops_independent:.3e} = "
                  f"{self.flops_trained / self.flops_independent:.3f}")
    if fitted:
      rows.extend(self._extrapolation_lines())
    rows.append(f"{len(self.runs)} runs, {total:.3e} FLOPs in all; N = non-embedding parameters; "
                f"FLOPs and budget in the {self.flops_convention} convention "
                f"(kind {self.kind}, recipe {self.recipe.name}"
                f"{'' if self.kind == 'shapes' else f', rule {self.rule}'})")
    return "\n".join(rows)


  def _extrapolation_lines(self) -> list[str]:
    """A fitted recipe's warning: the runs whose settings its laws extrapolate to, and how far."""
    if not self.recipe.ranges:
      return ["warning: the fit report records no range its laws were fitted on (an older "
              "`scaling fit`); extrapolation is not checked"]
    out = [run for run in self.runs if run.extrapolation]
    if not out:
      return []
    def far(factor):
      return f"{factor:.3g}x above" if factor > 1 else f"{1 / factor:.3g}x below"
    described = "; ".join(
        f"{run.name} (" + ", ".join(f"{law} {name} {far(factor)}"
                                    for law, outside in run.extrapolation.items()
                                    for name, factor in outside.items()) + ")" for run in out)
    return [f"warning: {len(out)} of {len(self.runs)} runs lie outside the range the laws were "
            f"fitted on (by more than {recipe_lib.RANGE_RTOL:.0%}): {described}"]


def short_number(x: float) -> str:
  """3 significant digits, no '+' or padding: 32896 -> '3.29e4', 1e12 -> '1e12'."""
  mantissa, exponent = f"{x:.2e}".split("e")
  mantissa = mantissa.rstrip("0").rstrip(".")
  return f"{mantissa}e{int(exponent)}"


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
      raise InputError(f"sweep.{key} is not a known sweep key (see scaling/sweep/config.py)")


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
    ratio = checks.number(sweep.optimum_tokens_per_param, "sweep.optimum_tokens_per_param",
                            above=0)
    return [_tokens_per_param_centre(c, ratio, sizer) for c in budgets]
  if optimum == "power_law":
    coefficient = checks.number(sweep.optimum_coefficient, "sweep.optimum_coefficient", above=0)
    exponent = checks.number(sweep.optimum_exponent, "sweep.optimum_exponent", at_least=0)
    return [coefficient * c**exponent for c in budgets]
  if optimum == "sizes":
    sizes = checks.positive_numbers(sweep.optimum_sizes, "sweep.optimum_sizes")
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
  flops_per_token: float  # in the plan's convention
  shape: str = ""  # kind shapes: its sweep.shapes entry, whose model keys the run sets


def _isoflop_points(sweep, sizer: _Sizer) -> list[_Point]:
  budgets = checks.positive_numbers(sweep.budgets, "sweep.budgets")
  k = checks.number(sweep.sizes_per_budget, "sweep.sizes_per_budget", integer=True, at_least=3)
  span = checks.number(sweep.size_span, "sweep.size_span", above=1)
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
      flops_per_token = sizer.flops_per_token(model)
      points.append(_Point(model, target, budget / flops_per_token, budget, "sweep.budgets",
                           flops_per_token))
  return points


def _horizons(sweep, kind: str) -> tuple[str, tuple[float, ...]]:
  """(the key the horizons come from, the horizons): sweep.tokens or sweep.tokens_per_param."""
  if bool(sweep.tokens) == bool(sweep.tokens_per_param):
    raise InputError(f"kind={kind} needs exactly one of sweep.tokens and sweep.tokens_per_param")
  key = "sweep.tokens" if sweep.tokens else "sweep.tokens_per_param"
  return key, checks.positive_numbers(sweep[key.split(".")[1]], key)


def _horizon_points(sweep, sizer: _Sizer, kind: str) -> list[_Point]:
  sizes = checks.positive_numbers(sweep.sizes, "sweep.sizes")
  key, horizons = _horizons(sweep, kind)
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
      flops_per_token = sizer.flops_per_token(model)
      points.append(_Point(model, target, tokens, flops_per_token * tokens, key, flops_per_token))
  return points


def parse_shape(spec) -> tuple[str, dict]:
  """'transformer:32:2:position=rotary' -> ('transformer_d32_l2_rotary', its model keys)."""
  fields = spec.split(":") if isinstance(spec, str) else []
  try:
    arch, d_model, n_layers, *extra = fields
    keys = {"arch": arch, "d_model": int(d_model), "n_layers": int(n_layers)}
    for field in extra:
      key, value = field.split("=", 1)
      try:
        keys[key] = ast.literal_eval(value)  # '2' -> 2, '0.5' -> 0.5, 'True' -> True
      except (ValueError, SyntaxError):
        keys[key] = value  # 'rotary'
  except ValueError:
    raise InputError(f"sweep.shapes: {spec!r} is not ARCH:D_MODEL:N_LAYERS[:MODEL_KEY=VALUE...]"
                     ) from None
  name = "_".join([arch, f"d{d_model}", f"l{n_layers}", *(str(v) for v in list(keys.values())[3:])])
  if not all(c.isalnum() or c in "._-" for c in name):
    raise InputError(f"sweep.shapes: {spec!r} gives the run name {name!r}; use values made of "
                     "letters, digits, '.', '_' and '-'")
  return name, keys


def _shape_points(sweep, base_model: ModelConfig, convention: str) -> list[_Point]:
  """Each explicit shape at every horizon, counted by its own architecture."""
  if not isinstance(sweep.shapes, (tuple, list)) or not sweep.shapes:
    raise InputError(f"sweep.shapes must be a non-empty tuple of ARCH:D_MODEL:N_LAYERS[:KEY=VALUE"
                     f"...] strings, got {sweep.shapes!r}")
  key, horizons = _horizons(sweep, "shapes")
  points, seen = [], {}
  for spec in sweep.shapes:
    _, keys = parse_shape(spec)
    try:
      architecture = models.get(keys["arch"])
      shared = {key: value for key, value in dataclasses.asdict(base_model).items()
                if key in architecture.config.key_names()}  # the base keys this family reads
      model = ModelConfig.from_dict({**shared, **keys})
    except InputError as e:
      raise InputError(f"sweep.shapes: {spec!r}: {e}") from None
    if model in seen:
      raise InputError(f"sweep.shapes: {seen[model]!r} and {spec!r} are the same model")
    seen[model] = spec
    n = architecture.param_counts(model)["non_embedding"]
    flops_per_token = architecture.flops_per_token(model)[convention]
    for horizon in horizons:
      tokens = horizon if key == "sweep.tokens" else horizon * n
      points.append(_Point(model, n, tokens, flops_per_token * tokens, key, flops_per_token, spec))
  return points


def _hparams_grid(sweep) -> list[tuple[float, int]]:
  """(LR multiplier, batch size or 0 for the recipe's) of each run of a point: kind hparams the
  grid of sweep.learning_rates × sweep.batch_sizes, any other kind one setting, the recipe's."""
  if sweep.kind != "hparams":
    return [(1.0, 0)]
  multipliers = checks.positive_numbers(sweep.learning_rates, "sweep.learning_rates")
  if len(multipliers) < 3 or len(set(multipliers)) != len(multipliers):
    raise InputError(f"sweep.learning_rates: kind=hparams needs at least 3 distinct multipliers "
                     f"of the recipe's LR (a parabola in log LR), got {tuple(multipliers)!r}")
  if len(multipliers) < 4 and not sweep.replicate_seeds:
    # parabolas through exactly 3 LRs leave no residual, and the fit then has nothing to measure
    # the runs' noise by (scaling fit --approach hparams refuses it): catch it before training
    raise InputError(f"sweep.learning_rates: {len(multipliers)} learning rates and no "
                     "sweep.replicate_seeds leave the hparams fit no measure of run noise (a "
                     "parabola through 3 LRs fits exactly); give 4 or more, or replicate_seeds")
  batches = sweep.batch_sizes
  if not isinstance(batches, (tuple, list)):
    raise InputError(f"sweep.batch_sizes must be a tuple of batch sizes in sequences, got "
                     f"{batches!r}")
  for i, batch in enumerate(batches):
    checks.number(batch, f"sweep.batch_sizes[{i}]", integer=True, at_least=1)
  if len(set(batches)) != len(batches):
    raise InputError(f"sweep.batch_sizes must be distinct, got {tuple(batches)!r}")
  return [(m, int(b)) for b in (batches or (0,)) for m in sorted(multipliers)]


def _replicated(sweep, base_seed: int):
  """point -> the replicate seeds it is also trained with (`sweep.replicate_seeds`)."""
  seeds = sweep.replicate_seeds
  if not isinstance(seeds, (tuple, list)):
    raise InputError(f"sweep.replicate_seeds must be a tuple of integer seeds >= 0, got {seeds!r}")
  for i, seed in enumerate(seeds):
    checks.number(seed, f"sweep.replicate_seeds[{i}]", integer=True, at_least=0)
  if len(set(seeds)) != len(seeds) or base_seed in seeds:
    raise InputError(f"sweep.replicate_seeds must be distinct and differ from base.seed "
                     f"({base_seed}), got {tuple(seeds)!r}")
  budgets = sweep.replicate_budgets
  if budgets:
    budgets = checks.positive_numbers(budgets, "sweep.replicate_budgets")
    unknown = [b for b in budgets if b not in tuple(float(c) for c in sweep.budgets)]
    if unknown:
      raise InputError(f"sweep.replicate_budgets: {unknown[0]:.4g} is not one of sweep.budgets")
  return lambda point: tuple(seeds) if not budgets or point.budget in budgets else ()


def build(config: ml_collections.ConfigDict, workdir: str) -> Plan:
  """Validates a sweep config and returns its runs, in order; runs nothing, writes nothing."""
  _check_keys(config)
  sweep = config.sweep
  base, base_cfg = _validated_base(config.base)
  recipe, batch_given = _recipe(sweep)
  try:
    ladder.depth_rule(sweep.rule)
  except InputError as e:
    raise InputError(f"sweep.rule: {e}") from None
  checks.one_of(sweep.flops_convention, "sweep.flops_convention", registry.CONVENTIONS)
  checks.one_of(sweep.kind, "sweep.kind", sweep_config.KINDS)
  _check_other_kinds_unset(sweep, sweep.kind)
  points = _points(sweep, base_cfg.model)

  replicated = _replicated(sweep, base.seed)
  branches = checks.one_of(sweep.branches, "sweep.branches", sweep_config.BRANCHES)
  grid = _hparams_grid(sweep)
  maker = _RunMaker(sweep, base, base_cfg, recipe, batch_given, branches, workdir)
  runs, names, trunk_names = [], set(), {}
  for point, seed, (multiplier, grid_batch) in (
      (p, s, g) for p in points for s in (base.seed, *replicated(p)) for g in grid):
    run, trunk_name = maker.run(point, seed, multiplier, grid_batch)
    if run.name in names:
      raise InputError(f"{point.key}: two runs round to the same name {run.name}; space the "
                       "values out")
    names.add(run.name)
    trunk_names[run.name] = trunk_name
    runs.append(run)
  trunks = []
  if branches == "cooldown":
    runs, trunks = _branch(runs, trunk_names, recipe, base_cfg.decay_fraction, workdir, names)
  resources.check(sweep, [run.params_non_embedding for run in runs])
  return Plan(kind=sweep.kind, recipe=recipe, rule=sweep.rule,
              flops_convention=sweep.flops_convention, workdir=workdir, sweep=sweep.to_dict(),
              runs=tuple(runs), trunks=tuple(trunks))


def _validated_base(given: ml_collections.ConfigDict) -> tuple[ml_collections.ConfigDict,
                                                              train_config.TrainConfig]:
  """(the base config, resolved; the same validated). The sweep sets each run's length and warmup
  itself; the rest of the base is validated as it stands."""
  base = given.copy_and_resolve_references()
  base.train_steps, base.train_tokens, base.warmup_steps = 1, 0, 0
  try:
    tokenizer = load_tokenizer(DataConfig.from_dict(base.data).tokenizer)
    return base, train_config.validate(base, vocab_size=tokenizer.vocab_size)
  except InputError as e:
    raise InputError(f"base.{e}") from None


def _recipe(sweep) -> tuple[recipe_lib.Recipe | recipe_lib.FittedRecipe, bool]:
  """(sweep.recipe, with sweep.batch_size where given; whether it was given)."""
  recipe = recipe_lib.get(sweep.recipe)
  batch_given = bool(checks.number(sweep.batch_size, "sweep.batch_size", integer=True, at_least=0))
  if batch_given and isinstance(recipe, recipe_lib.FittedRecipe):
    recipe = dataclasses.replace(recipe, base=dataclasses.replace(recipe.base,
                                                                  batch_size=sweep.batch_size))
  elif batch_given:
    recipe = dataclasses.replace(recipe, batch_size=sweep.batch_size)
  return recipe, batch_given


def _points(sweep, base_model: ModelConfig) -> list[_Point]:
  """The (size, horizon) points of the sweep's kind."""
  if sweep.kind == "shapes":
    return _shape_points(sweep, base_model, sweep.flops_convention)
  try:  # the family refuses a base it cannot resize (e.g. a Transformer's fixed d_ff)
    sizer = _Sizer(base_model, sweep.rule, sweep.flops_convention)
  except InputError as e:
    raise InputError(f"base.{e}") from None
  return (_isoflop_points(sweep, sizer) if sweep.kind == "isoflop"
          else _horizon_points(sweep, sizer, sweep.kind))


class _RunMaker:
  """Turns a plan's points into runs, from what every run shares: the sweep keys, the base config
  (as given and validated) and the recipe that sets each run's learning rate and batch."""

  def __init__(self, sweep, base: ml_collections.ConfigDict, base_cfg: train_config.TrainConfig,
               recipe, batch_given: bool, branches: str, workdir: str):
    self.sweep, self.base, self.base_cfg, self.recipe = sweep, base, base_cfg, recipe
    self.batch_given, self.branches, self.workdir = batch_given, branches, workdir
    self.reference = train_config.defaults().model  # where a key a family does not read goes

  def run(self, point: _Point, seed: int, multiplier: float, grid_batch: int) -> tuple[Run, str]:
    """(the run of `point` at `seed`, its LR times `multiplier` and batch `grid_batch` (0: the
    recipe's); the name of the trunk it would fork off)."""
    sweep, recipe = self.sweep, self.recipe
    architecture = models.get(point.model.arch)
    counts = architecture.param_counts(point.model)
    # A fitted recipe's laws of C take C as their fit counted it (their sweep's convention)
    law_convention = getattr(recipe, "c_convention", None) or sweep.flops_convention
    budget = (point.budget if law_convention == sweep.flops_convention
              else architecture.flops_per_token(point.model)[law_convention] * point.tokens)
    setting = recipe.setting(point.model, counts, point.tokens, budget, self.batch_given)
    batch_size = grid_batch or setting.batch_size
    tokens_per_step = batch_size * self.base_cfg.model.seq_len
    steps = round(point.tokens / tokens_per_step)
    if steps < 1:
      raise InputError(
          f"{point.key}: {point.tokens:.3g} tokens for N={point.target_params:.3g} is less than "
          f"half a step ({tokens_per_step} tokens = batch {batch_size} × seq_len "
          f"{self.base_cfg.model.seq_len}); raise it")
    tokens = steps * tokens_per_step
    size = parse_shape(point.shape)[0] if point.shape else f"N{short_number(counts['non_embedding'])}"
    setting_tag = ((f"_lr{multiplier:g}" + (f"_b{grid_batch}" if grid_batch else ""))
                   if sweep.kind == "hparams" else "")
    seed_tag = f"_s{seed}" if seed != self.base.seed else ""
    name = (f"C{short_number(point.budget)}_{size}" if sweep.kind == "isoflop"
            else f"{size}_D{short_number(tokens)}") + setting_tag + seed_tag
    run_config = self._config(point.model, name, batch_size, seed, steps,
                              setting.learning_rate * multiplier)
    fitted = isinstance(recipe, recipe_lib.FittedRecipe)
    run = Run(
        name=name, workdir=rundir.SweepDir(self.workdir).run(name).root, config=run_config,
        budget=point.budget, target_params=point.target_params, params=counts["total"],
        params_non_embedding=counts["non_embedding"], steps=steps, tokens=tokens,
        flops=tokens * point.flops_per_token, shape=point.shape,
        lr_source=(setting.lr_source + (f" × {multiplier:g}" if sweep.kind == "hparams" else "")
                   if fitted else ""),
        batch_source=("sweep.batch_sizes" if grid_batch else setting.batch_source) if fitted else "",
        extrapolation=_extrapolation(setting, grid_batch))
    return run, f"{size}{setting_tag}_trunk{seed_tag}"

  def _config(self, model: ModelConfig, name: str, batch_size: int, seed: int, steps: int,
              learning_rate: float) -> ml_collections.ConfigDict:
    """The run's full train config: the base's, with the run's model, length and settings."""
    base = self.base
    run_config = base.copy_and_resolve_references()
    for key in run_config.model.keys():  # a key the run's family does not read: at its default
      if key not in model.key_names():
        run_config.model[key] = self.reference[key]
    for key, value in dataclasses.asdict(model).items():  # the shape, the resolved vocab
      if key == "vocab_size" or value != getattr(self.base_cfg.model, key, None):
        run_config.model[key] = value
    run_config.batch_size = batch_size
    run_config.seed = seed
    run_config.train_steps = steps
    run_config.train_tokens = 0
    if self.branches == "cooldown":
      run_config.schedule = "wsd"
    run_config.wandb_name = name  # W&B: one run per name, grouped by the sweep directory's name
    run_config.wandb_group = base.wandb_group or rundir.RunDir(storage.absolute(self.workdir)).name
    run_config.learning_rate = learning_rate
    run_config.warmup_steps = self.recipe.warmup_steps(steps)
    return run_config


def _extrapolation(setting, grid_batch: int) -> dict:
  """The setting's extrapolated laws, less the batch law where the sweep's grid set the batch."""
  return {law: outside for law, outside in setting.extrapolation.items()
          if not (grid_batch and law in recipe_lib.BATCH_LAWS)}


# What runs of one trunk may differ in: their length, and what follows from it (W&B's name).
_HORIZON_KEYS = ("train_steps", "warmup_steps", "wandb_name")


def _branch(runs: list[Run], trunk_names: dict, recipe, decay_fraction: float, workdir: str,
            names: set) -> tuple[list[Run], list[Run]]:
  """(the runs, each forking off its trunk where it has one; the trunks): runs whose configs differ
  only in their length share a trunk, trained at constant LR to the longest run's decay start.

  Every run of a trunk warms up as its shortest run would (the recipe's warmup of that length),
  so the trunk's steps are bitwise each run's own up to its fork. A run alone trains by itself.
  """
  from scaling.train import schedule  # optax: imported by the plan only when it branches

  groups = {}
  for run in runs:
    shared = {key: value for key, value in run.config.to_dict().items() if key not in _HORIZON_KEYS}
    groups.setdefault(repr(sorted(shared.items())), []).append(run)
  by_name, trunks = {}, []
  for group in groups.values():
    if len(group) == 1:
      continue
    warmup = recipe.warmup_steps(min(run.steps for run in group))
    longest = max(group, key=lambda run: run.steps)
    forks = {run.name: schedule.decay_start(run.steps, decay_fraction) for run in group}
    for run in group:
      if not warmup < forks[run.name]:
        raise InputError(f"sweep.branches: run {run.name} would fork at step {forks[run.name]}, "
                         f"not after its trunk's {warmup} warmup steps; lengthen the run or lower "
                         "base.decay_fraction")
    trunk_name = trunk_names[longest.name]
    if trunk_name in names:
      raise InputError(f"sweep.branches: the trunk {trunk_name} has the name of a run or trunk")
    names.add(trunk_name)
    trunk_steps = forks[longest.name]
    trunk_config = longest.config.copy_and_resolve_references()
    trunk_config.train_steps = trunk_steps
    trunk_config.warmup_steps = warmup
    trunk_config.decay_fraction = 0.0  # constant to its end: never cooled down itself
    trunk_config.checkpoint_steps = tuple(sorted(set(forks.values())))
    trunk_config.wandb_name = trunk_name
    tokens = longest.tokens // longest.steps * trunk_steps
    trunks.append(dataclasses.replace(
        longest, name=trunk_name, workdir=rundir.SweepDir(workdir).run(trunk_name).root,
        config=trunk_config, budget=0.0, steps=trunk_steps, tokens=tokens,
        flops=longest.flops / longest.tokens * tokens))
    for run in group:
      run.config.warmup_steps = warmup
      by_name[run.name] = dataclasses.replace(run, trunk=trunk_name, fork_step=forks[run.name])
  return [by_name.get(run.name, run) for run in runs], trunks

"""Hyperparameters that change with scale, in one named, frozen object per recipe.

A sweep must not hide its tuning in magic numbers scattered over runs (Levanter/Marin's "recipe"):
the peak learning rate follows the width, warmup is a fraction of the run, and the batch is fixed
per recipe so that every size of a sweep sees the same number of tokens per step. A recipe can also
be measured: `fitted:PATH` (`FittedRecipe`) takes each run's LR (and batch) from the laws an hparams
sweep fitted (`scaling fit --approach hparams`; docs/sweeps.md "Tuning a recipe").
"""

import dataclasses
import math

from scaling import checks, storage
from scaling.errors import InputError
from scaling.models import registry
from scaling.models.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class Recipe:
  """Turns (model, planned steps) into the train keys a sweep sets for each run."""

  name: str
  batch_size: int  # global batch in sequences, the same for every run of a sweep
  base_learning_rate: float  # peak learning rate at width `base_width`
  base_width: int
  width_exponent: float  # peak LR ∝ (base_width / d_model)^width_exponent
  warmup_fraction: float  # warmup steps as a fraction of the run's steps ...
  max_warmup_steps: int  # ... capped, so long runs do not warm up for thousands of steps

  def learning_rate(self, d_model: int) -> float:
    """Wider models want smaller steps; a power law in width (fit to GPT-3, see RECIPES)."""
    return self.base_learning_rate * (self.base_width / d_model) ** self.width_exponent

  def warmup_steps(self, train_steps: int) -> int:
    """A fraction of the run, not a fixed count: Kaplan et al. 2020 warmed every model up for 3000
    steps, a large share of a small model's short run, and Porian et al. 2024 (sec. 3) show that
    this long warmup hurts small models and biases the compute-optimal exponent. The trainer needs
    warmup < steps."""
    return min(round(self.warmup_fraction * train_steps), self.max_warmup_steps, train_steps - 1)

  def setting(self, model: ModelConfig, counts: dict, tokens: float, budget: float,
              batch_given: bool) -> "Setting":
    """The run's LR (the width rule) and batch (the recipe's, or sweep.batch_size's)."""
    del counts, tokens, budget  # a named recipe's LR follows the width alone
    return Setting(self.learning_rate(model.d_model), self.batch_size,
                   f"recipe {self.name} (width)",
                   "sweep.batch_size" if batch_given else f"recipe {self.name}")


# Width exponent 0.77: a least-squares fit of log peak LR on log d_model over GPT-3's models from
# 350M (d_model 1024) to 175B (Brown et al. 2020, Table 2.1); the fit gives 4.5e-4 at d_model 768.
GPT3_WIDTH_EXPONENT = 0.77

RECIPES = {
    recipe.name: recipe for recipe in (
        # Byte-level models of d_model 16..128 on a CPU: configs/tiny.py's 3e-3 at width 64, the
        # GPT-3 width exponent around it, 16 sequences per step so small budgets still get
        # hundreds of steps, and a 10 % warmup of at most 50 steps.
        Recipe(name="cpu_tiny", batch_size=16, base_learning_rate=3e-3, base_width=64,
               width_exponent=GPT3_WIDTH_EXPONENT, warmup_fraction=0.1, max_warmup_steps=50),
        # Accelerator-sized models: the GPT-3 fit itself, 256 sequences per step (0.5M tokens at
        # seq_len 2048, GPT-3's batch for models up to 350M), a 2 % warmup of at most 1000 steps.
        Recipe(name="chinchilla", batch_size=256, base_learning_rate=4.5e-4, base_width=768,
               width_exponent=GPT3_WIDTH_EXPONENT, warmup_fraction=0.02, max_warmup_steps=1000),
    )
}


FITTED_PREFIX = "fitted:"
# The laws of `scaling fit --approach hparams` a fitted recipe uses, the first present of each.
LR_LAWS = ("lr_opt(N,D)", "lr_opt(C)")
BATCH_LAWS = ("batch_opt(C)",)


@dataclasses.dataclass(frozen=True)
class Setting:
  """One run's learning rate and batch, and what set each (a law, or the base recipe's rule)."""

  learning_rate: float
  batch_size: int
  lr_source: str
  batch_source: str
  # law -> {input: its value / the nearest end of the range the law was fitted on}, for each input
  # outside that range: > 1 above it, < 1 below it
  extrapolation: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class FittedRecipe:
  """A recipe measured by an hparams sweep: each run's peak LR (and batch, where a batch law was
  fitted) from the laws of a `scaling fit --approach hparams` report, evaluated at the run's own
  N, D and C (Bjorck et al. 2024's lr_opt(N, D), DeepSeek LLM 2024's lr_opt(C), batch_opt(C));
  warmup as the base recipe's. `n_column` is the count the laws' N was fitted on, `c_convention`
  the FLOP convention of their C (None: unknown, taken as the plan's)."""

  name: str  # "fitted:PATH"
  base: Recipe
  n_column: str
  laws: dict  # form -> {"coefficient", "exponents"} of the report
  c_convention: str | None = None
  lr_law: str = ""  # the LR law used: `fitted:PATH#FORM`'s, else the first of LR_LAWS present
  ranges: dict = dataclasses.field(default_factory=dict)  # form -> {input: [lo, hi]} fitted on

  @property
  def batch_size(self) -> int:
    return self.base.batch_size

  def warmup_steps(self, train_steps: int) -> int:
    return self.base.warmup_steps(train_steps)

  def setting(self, model: ModelConfig, counts: dict, tokens: float, budget: float,
              batch_given: bool) -> Setting:
    """The LR and batch of a run of `counts` parameters (param_counts: total, non_embedding)
    trained for `tokens` at nominal compute `budget`; an explicit sweep.batch_size wins over a
    batch law."""
    del model  # the laws read counts, not the shape
    n = counts["total" if self.n_column == "params" else "non_embedding"]
    inputs = {"N": n, "D": tokens, "C": budget}
    batch_size = self.base.batch_size
    batch_source = "sweep.batch_size" if batch_given else f"recipe {self.base.name}"
    used = [self.lr_law]
    law_name = next((name for name in BATCH_LAWS if name in self.laws), None)
    if law_name and not batch_given:
      batch_size = max(1, round(_evaluate(self.laws[law_name], law_name, inputs)))
      batch_source = f"law {law_name}"
      used.append(law_name)
    extrapolation = {name: outside for name in used
                     if (outside := _outside(self.ranges.get(name, {}), inputs))}
    return Setting(_evaluate(self.laws[self.lr_law], self.lr_law, inputs), batch_size,
                   f"law {self.lr_law}", batch_source, extrapolation)


# An input this close to its fitted range counts as inside: a plan's D is its horizon before
# rounding to whole steps, the fitted sweep's the trained tokens after it.
RANGE_RTOL = 0.05


def _outside(ranges: dict, inputs: dict) -> dict:
  """{input: value / the nearest end of its range} for each input outside it (beyond RANGE_RTOL)."""
  outside = {}
  for name, (lo, hi) in ranges.items():
    value = inputs[name]
    if value > hi * (1 + RANGE_RTOL):
      outside[name] = value / hi
    elif value < lo / (1 + RANGE_RTOL):
      outside[name] = value / lo
  return outside


# The forms of `scaling fit --approach hparams`'s laws: x holds a run's N, D and C.
LAW_FORMS = {
    "lr_opt(N,D)": lambda c, e, x: c * x["N"] ** -e["alpha"] * x["D"] ** -e["beta"],  # Bjorck
    "lr_opt(C)": lambda c, e, x: c * x["C"] ** -e["alpha"],  # DeepSeek LLM 2024, eq. 1
    "batch_opt(C)": lambda c, e, x: c * x["C"] ** e["beta"],
}


def _evaluate(law: dict, form: str, inputs: dict) -> float:
  return float(LAW_FORMS[form](law["coefficient"], law["exponents"], inputs))


def load_fitted(spec: str) -> FittedRecipe:
  """`fitted:PATH[#FORM]` (local or gs://): the report of `scaling fit --approach hparams`, and
  the LR law to use (FORM, one of LR_LAWS; default the first present)."""
  path = spec[len(FITTED_PREFIX):]
  where = f"sweep.recipe {spec!r}"
  path, hash_sign, lr_law = path.partition("#")
  if hash_sign and lr_law not in LR_LAWS:
    raise InputError(f"{where}: '#{lr_law}' is not a learning-rate law; name one of "
                     f"{', '.join(LR_LAWS)} after '#'")
  if not path:
    raise InputError(f"{where}: name the JSON report of `scaling fit --approach hparams` after "
                     "'fitted:'")
  try:
    report = storage.read_json(path)
  except FileNotFoundError:
    raise InputError(f"{where}: {path} does not exist") from None
  except (OSError, ValueError) as e:
    raise InputError(f"{where}: {path} is not a readable JSON report ({e})") from None
  if not isinstance(report, dict) or report.get("approach") != "hparams":
    raise InputError(f"{where}: {path} is not a report of `scaling fit --approach hparams`")
  laws = report.get("laws") or {}
  if not any(name in laws for name in LR_LAWS):
    raise InputError(f"{where}: {path} has no learning-rate law ({' or '.join(LR_LAWS)})")
  if lr_law and lr_law not in laws:
    raise InputError(f"{where}: {path} has no law {lr_law} (it has {', '.join(laws)})")
  for name, law in laws.items():
    try:
      value = _evaluate(law, name, {"N": 1e6, "D": 1e8, "C": 1e15})
    except (KeyError, TypeError, AttributeError):
      value = math.nan
    if name not in LAW_FORMS or not (value > 0 and math.isfinite(value)):
      raise InputError(f"{where}: {path}: law {name!r} is not one of {', '.join(LAW_FORMS)} with "
                       "a positive coefficient and finite exponents")
    if law.get("range") is not None and not _valid_range(law["range"]):
      raise InputError(f"{where}: {path}: law {name!r}'s range is not {{input: [lo, hi]}} with "
                       "0 < lo <= hi for inputs N, D or C")
  base = report.get("recipe")
  if base not in RECIPES:
    raise InputError(f"{where}: {path} does not name the base recipe its sweep ran with "
                     f"(its 'recipe' is {base!r}; one of {', '.join(RECIPES)} is needed for warmup)")
  n_column = (report.get("inputs") or {}).get("N", "params")
  c_convention = (report.get("inputs") or {}).get("C_convention")
  if c_convention is not None and c_convention not in registry.CONVENTIONS:
    raise InputError(f"{where}: {path}: inputs.C_convention {c_convention!r} is not one of "
                     f"{', '.join(registry.CONVENTIONS)}")
  return FittedRecipe(name=spec, base=RECIPES[base], n_column=n_column,
                      c_convention=c_convention,
                      lr_law=lr_law or next(name for name in LR_LAWS if name in laws),
                      ranges={name: law["range"] for name, law in laws.items() if law.get("range")},
                      laws={name: {"coefficient": law["coefficient"], "exponents": law["exponents"]}
                            for name, law in laws.items()})


def _valid_range(ranges) -> bool:
  try:
    return isinstance(ranges, dict) and all(
        name in ("N", "D", "C") and len(span) == 2 and 0 < span[0] <= span[1]
        for name, span in ranges.items())
  except TypeError:
    return False


def get(name: str) -> Recipe | FittedRecipe:
  """A named recipe, or `fitted:PATH`: the laws of an hparams fit (`FittedRecipe`)."""
  if isinstance(name, str) and name.startswith(FITTED_PREFIX):
    return load_fitted(name)
  return RECIPES[checks.one_of(name, "sweep.recipe", RECIPES)]

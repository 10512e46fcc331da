"""Hyperparameters that change with scale, in one named, frozen object per recipe.

A sweep must not hide its tuning in magic numbers scattered over runs (Levanter/Marin's "recipe"):
the peak learning rate follows the width, warmup is a fraction of the run, and the batch is fixed
per recipe so that every size of a sweep sees the same number of tokens per step.
"""

import dataclasses

from scaling import checks
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

  def overrides(self, model: ModelConfig, train_steps: int) -> dict:
    """The train keys this recipe sets for one run (batch_size is set before steps are known)."""
    return {"learning_rate": self.learning_rate(model.d_model),
            "warmup_steps": self.warmup_steps(train_steps)}


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


def get(name: str) -> Recipe:
  return RECIPES[checks.one_of(name, "sweep.recipe", RECIPES)]

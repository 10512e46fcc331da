"""Every key `scaling sweep` reads: `config.base` (one train config) plus `config.sweep.*`.

Sweep files (`configs/sweeps/*.py`) start from `defaults()` and change what they need;
`configs/sweeps/base.py` is this, spelled out with every key documented (a test keeps them equal).
"""

import ml_collections

from scaling.train import config as train_config

KINDS = ("isoflop", "ladder", "curves")
OPTIMA = ("tokens_per_param", "power_law", "sizes")


def defaults() -> ml_collections.ConfigDict:
  """The defaults of every sweep key; see configs/sweeps/base.py for what each one means."""
  config = ml_collections.ConfigDict()
  config.base = train_config.defaults()

  config.sweep = ml_collections.ConfigDict()
  config.sweep.kind = "isoflop"
  config.sweep.recipe = "cpu_tiny"
  config.sweep.rule = "kaplan"
  config.sweep.flops_convention = "chinchilla"
  # kind = isoflop
  config.sweep.budgets = ()
  config.sweep.sizes_per_budget = 5
  config.sweep.size_span = 8.0
  config.sweep.optimum = "tokens_per_param"
  config.sweep.optimum_tokens_per_param = 20.0
  config.sweep.optimum_coefficient = 0.0
  config.sweep.optimum_exponent = 0.5
  config.sweep.optimum_sizes = ()
  # kind = ladder | curves
  config.sweep.sizes = ()
  config.sweep.tokens = ()
  config.sweep.tokens_per_param = ()
  # replicate seeds: every run (isoflop: of replicate_budgets, () = all) again with each seed
  config.sweep.replicate_seeds = ()
  config.sweep.replicate_budgets = ()
  # --executor ray: what each run asks of the cluster, and how often it is tried
  config.sweep.resources = ("cpu:1",)
  config.sweep.preemption_retries = 10000
  config.sweep.failure_retries = 0
  config.sweep.lease_seconds = 60.0
  return config


# The sweep keys only one kind reads; setting one for another kind is a mistake worth naming.
KIND_KEYS = {
    "isoflop": ("budgets", "sizes_per_budget", "size_span", "optimum", "optimum_tokens_per_param",
                "optimum_coefficient", "optimum_exponent", "optimum_sizes", "replicate_budgets"),
    "ladder": ("sizes", "tokens", "tokens_per_param"),
    "curves": ("sizes", "tokens", "tokens_per_param"),
}

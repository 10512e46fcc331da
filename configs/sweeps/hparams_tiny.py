"""Learning-rate sweeps of tiny byte-level models on a CPU: the recipe measured (docs/sweeps.md
"Tuning a recipe").

Three sizes of `scaling demo`'s heads:4 ladder, each at two horizons, each trained at seven peak
learning rates a factor 2 apart, 1/4 to 16 times the cpu_tiny recipe's width rule (42 runs);
`scaling fit --approach hparams` then finds each point's best LR and fits
lr_opt = c·N^-alpha·D^-beta and lr_opt(C).
The base keys are `scaling demo`'s (scaling/demo.py), so a `fitted:` recipe from this sweep can
re-run the demo's isoFLOP design. Every key is documented in scaling/sweep/config.py.

  scaling sweep --config configs/sweeps/hparams_tiny.py --workdir runs/hparams_tiny
  scaling fit --approach hparams --data runs/hparams_tiny --out fits/hparams_tiny.json
"""

from scaling.sweep.config import cpu_defaults


def get_config():
  config = cpu_defaults()
  config.base.log_every = 50
  config.base.adam_b2 = 0.99  # as scaling demo (Porian et al. 2024: β2 = 0.95 is too low here)
  config.sweep.kind = "hparams"
  config.sweep.recipe = "cpu_tiny"
  config.sweep.rule = "heads:4"
  config.sweep.flops_convention = "chinchilla"
  config.sweep.sizes = (3e3, 1e4, 3e4)  # non-embedding N, inside the demo's range
  config.sweep.tokens_per_param = (15.0, 60.0)  # horizons D = ratio × N, around the demo's optimum
  # × the recipe's LR at each width. A first run with (0.25 .. 4) found the best LR at 4 for half
  # the points (cpu_tiny's width rule is low for the smallest models), so the grid goes on to 16.
  config.sweep.learning_rates = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
  return config

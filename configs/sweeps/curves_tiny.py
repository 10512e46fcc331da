"""Training curves at several horizons (Hoffmann et al. 2022, Approach 1) on a CPU.

Three sizes, each trained to four horizons a factor 2 apart (in tokens per parameter); each horizon
is its own run whose cosine schedule ends at that horizon, as Hoffmann et al. require (overshooting
a schedule by > 25 % hurts). Every key is documented in scaling/sweep/config.py.

  scaling sweep --config configs/sweeps/curves_tiny.py --workdir runs/curves_tiny
"""

from scaling.sweep.config import cpu_defaults


def get_config():
  config = cpu_defaults()
  config.sweep.kind = "curves"
  config.sweep.recipe = "cpu_tiny"
  config.sweep.rule = "kaplan"
  config.sweep.sizes = (1e4, 2e4, 4e4)
  config.sweep.tokens_per_param = (5.0, 10.0, 20.0, 40.0)  # horizons D = ratio × N
  return config

"""Training curves at several horizons (Hoffmann et al. 2022, Approach 1) on a CPU.

Three sizes, each trained to four horizons a factor 2 apart (in tokens per parameter); each horizon
is its own run whose cosine schedule ends at that horizon, as Hoffmann et al. require (overshooting
a schedule by > 25 % hurts). Every key is documented in scaling/sweep/config.py.

  scaling sweep --config configs/sweeps/curves_tiny.py --workdir runs/curves_tiny
"""

from scaling.sweep.config import defaults


def get_config():
  config = defaults()
  config.base.model.seq_len = 64
  config.base.eval_batches = 8
  config.base.log_every = 20
  config.base.eval_every = 1000
  config.base.checkpoint_every = 1000

  config.sweep.kind = "curves"
  config.sweep.recipe = "cpu_tiny"
  config.sweep.rule = "kaplan"
  config.sweep.sizes = (1e4, 2e4, 4e4)
  config.sweep.tokens_per_param = (5.0, 10.0, 20.0, 40.0)  # horizons D = ratio × N
  return config

"""Kaplan et al. 2020's L(N) on a CPU: five sizes, each trained on the same 500k tokens.

Every key is documented in scaling/sweep/config.py.

  scaling sweep --config configs/sweeps/ladder_tiny.py --workdir runs/ladder_tiny
"""

from scaling.sweep.config import defaults


def get_config():
  config = defaults()
  config.base.model.seq_len = 64
  config.base.eval_batches = 8
  config.base.log_every = 20
  config.base.eval_every = 1000
  config.base.checkpoint_every = 1000

  config.sweep.kind = "ladder"
  config.sweep.recipe = "cpu_tiny"
  config.sweep.rule = "kaplan"
  config.sweep.sizes = (5e3, 1e4, 2e4, 4e4, 8e4)  # non-embedding N
  config.sweep.tokens = (5e5,)  # one horizon for every size (or tokens_per_param = (r,))
  return config

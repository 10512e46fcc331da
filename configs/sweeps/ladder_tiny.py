"""Kaplan et al. 2020's L(N) on a CPU: five sizes, each trained on the same 500k tokens.

Every key is documented in scaling/sweep/config.py.

  scaling sweep --config configs/sweeps/ladder_tiny.py --workdir runs/ladder_tiny
"""

from scaling.sweep.config import cpu_defaults


def get_config():
  config = cpu_defaults()
  config.sweep.kind = "ladder"
  config.sweep.recipe = "cpu_tiny"
  config.sweep.rule = "kaplan"
  config.sweep.sizes = (5e3, 1e4, 2e4, 4e4, 8e4)  # non-embedding N
  config.sweep.tokens = (5e5,)  # one horizon for every size (or tokens_per_param = (r,))
  return config

"""Every key `scaling sweep` reads, with its default: `scaling.sweep.config.defaults()`.

Each sweep key's meaning is documented beside its default in scaling/sweep/config.py, and each key
of `config.base` (one train config) in scaling/train/config.py. Override any key on the command line:

  scaling sweep --config configs/sweeps/isoflop_tiny.py --workdir DIR \
      --config.sweep.budgets='(1e11,3e11)'
"""

from scaling.sweep.config import defaults as get_config  # noqa: F401

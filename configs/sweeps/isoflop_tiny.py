"""IsoFLOP profiles of tiny byte-level models on a CPU (Hoffmann et al. 2022, Approach 2).

`scaling demo`'s sweep (its ladder, grid and recipe: scaling/demo.py says why each) at three
budgets, five sizes each, evenly spaced in log N over a factor 8 around the expected optimum, each
size of the smallest budget also trained with seed 1 to measure run noise; 20 runs, 2.3e13 FLOPs
(at the 4.1e10 FLOP/s `scaling demo` trains at on an idle 2-core CPU, README: about 10 minutes).
Every key is documented in configs/sweeps/base.py.

  scaling sweep --config configs/sweeps/isoflop_tiny.py --workdir runs/isoflop_tiny --dry-run
"""

from scaling.demo import tiny_isoflop_sweep


def get_config():
  return tiny_isoflop_sweep(budgets=(3e11, 1e12, 3e12), replicate_budgets=(3e11,))

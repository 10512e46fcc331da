"""Chinchilla Fig. 3 (IsoFLOP profiles, Hoffmann et al. 2022 Approach 2) on a 2-core CPU: the
demo's recipe (`scaling demo`, scaling/demo.py) at twice its budgets.

Eight budgets 5e10–3.5e12 (1.85 decades, 10^0.15–10^0.34 apart) ×
5 sizes of the `heads:4` ladder (head dim 4, at least two layers), every size trained again with
seed 1, as the demo's: 80 runs, 7.4e13 FLOPs (chinchilla convention). Every
key is documented in scaling/sweep/config.py.

  scaling sweep --config experiments/chinchilla_isoflop/cpu.py --workdir runs/chinchilla_isoflop
"""

from scaling import demo


def get_config():
  config = demo.demo_config()
  config.base.progress = True  # one bar per run; the demo shows only the runner's
  config.sweep.budgets = (5e10, 1.1e11, 1.6e11, 3.5e11, 5e11, 1.1e12, 1.6e12, 3.5e12)
  config.sweep.replicate_budgets = config.sweep.budgets
  return config

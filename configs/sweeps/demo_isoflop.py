"""`scaling demo`'s isoFLOP design as a sweep config: 4 budgets × 5 sizes × 2 seeds on the heads:4
ladder (scaling/demo.py documents each choice), so it can be re-run under another recipe, e.g. one
fitted by an hparams sweep (docs/sweeps.md "Tuning a recipe"):

  scaling sweep --config configs/sweeps/demo_isoflop.py --workdir runs/demo_fitted \
      --config.sweep.recipe=fitted:fits/hparams_tiny.json
"""

from scaling.demo import demo_config


def get_config():
  return demo_config()

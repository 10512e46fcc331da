"""Kaplan et al. 2020 Fig. 1 (right), L(N): five non-embedding sizes, each trained on 2M tokens.

Sizes a factor 2 apart over a factor 16 in N (Kaplan's N: without embeddings), every run on the
same 2.05M bytes of the embedded corpus (2,000 steps of 16 × 64): 5 runs, 3.5e12 FLOPs (chinchilla
convention). Every key is documented in scaling/sweep/config.py.

  scaling sweep --config experiments/kaplan_model_size/cpu.py --workdir runs/kaplan_model_size
"""

from scaling.sweep.config import cpu_defaults


def get_config():
  config = cpu_defaults()  # the final loss on 64k held-out bytes spread over the split, for every run
  config.base.progress = False

  config.sweep.kind = "ladder"
  config.sweep.recipe = "cpu_tiny"
  config.sweep.rule = "kaplan"
  config.sweep.sizes = (5e3, 1e4, 2e4, 4e4, 8e4)  # non-embedding N
  # One horizon for every size. Kaplan's L(N) is for models not limited by data (early-stopped on
  # 22B tokens); here D/N runs from 390 (smallest) down to 25 (largest), so the largest models
  # are the most data-limited and L(N) may bend: the README says what that does to α_N.
  config.sweep.tokens = (2.048e6,)
  return config

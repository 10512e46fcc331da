"""Chinchilla Fig. 3 (IsoFLOP profiles, Hoffmann et al. 2022 Approach 2), sized for a 2-core CPU.

Three budgets a factor ~2.2 apart, four sizes each over a factor 4 in N: 12 runs, 6.6e12 FLOPs
(chinchilla convention). Every key is documented in scaling/sweep/config.py.

  scaling sweep --config experiments/chinchilla_isoflop/cpu.py --workdir runs/chinchilla_isoflop
"""

from scaling.sweep.config import cpu_defaults


def get_config():
  config = cpu_defaults()
  # 32 × 16 × 64 = 32k held-out bytes, the same for every run: the final loss is what is fitted.
  config.base.eval_batches = 32
  config.base.progress = False

  config.sweep.kind = "isoflop"
  config.sweep.recipe = "cpu_tiny"
  config.sweep.rule = "kaplan"
  config.sweep.flops_convention = "chinchilla"
  config.sweep.budgets = (2e11, 4.5e11, 1e12)
  config.sweep.sizes_per_budget = 4
  config.sweep.size_span = 4.0
  # Centred on a measured optimum, not on Hoffmann's 20 tokens per parameter (REFERENCE.md: tiny
  # byte-level models spend most FLOPs on embeddings, logits and attention). A 5-size profile at
  # C = 1e11 (N 5.2e3-8.3e4, this base config, 8 eval batches) had its parabola minimum at
  # D/N = 127 (all 5 sizes) to 164 (the 3 smallest) in non-embedding N: we centre on 150.
  config.sweep.optimum = "tokens_per_param"
  config.sweep.optimum_tokens_per_param = 150.0
  return config

"""IsoFLOP profiles of tiny byte-level models on a CPU (Hoffmann et al. 2022, Approach 2).

Three budgets, five sizes each, evenly spaced in log N over a factor 8 around the expected optimum;
15 runs, 2.2e13 FLOPs (about half an hour on a 2-core CPU). Every key is documented in
configs/sweeps/base.py.

  scaling sweep --config configs/sweeps/isoflop_tiny.py --workdir runs/isoflop_tiny --dry-run
"""

from scaling.sweep.config import defaults


def get_config():
  config = defaults()
  config.base.model.seq_len = 64
  config.base.eval_batches = 8  # 8 × 16 × 64 = 8k held-out tokens for the final loss
  config.base.log_every = 20
  config.base.eval_every = 1000
  config.base.checkpoint_every = 1000

  config.sweep.kind = "isoflop"
  config.sweep.recipe = "cpu_tiny"
  config.sweep.rule = "kaplan"
  config.sweep.flops_convention = "chinchilla"
  config.sweep.budgets = (3e11, 1e12, 3e12)
  config.sweep.sizes_per_budget = 5
  config.sweep.size_span = 8.0
  # Byte-level models this small spend most FLOPs on embeddings, logits and attention, so the
  # optimum is far from Hoffmann's 20 tokens per parameter. `scaling demo` (budgets 3e11–2e12, this
  # recipe and rule) centred on 150 put its isoFLOP minima at 40–80 tokens per non-embedding
  # parameter, so this grid centres on 60, as the demo's does (README); remeasure with a wide
  # size_span for other budgets.
  config.sweep.optimum = "tokens_per_param"
  config.sweep.optimum_tokens_per_param = 60.0
  return config

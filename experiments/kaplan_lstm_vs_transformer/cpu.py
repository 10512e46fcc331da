"""Kaplan et al. 2020 Fig. 7 on a CPU: four Transformers (learned positions, as Kaplan's; and the
same four with rotary positions) and four LSTMs of matched non-embedding size, every one trained on
the same 1M bytes of the embedded corpus with a 256-byte context.

Kaplan-style Transformers (LayerNorm, GELU MLP, learned positions, tied embeddings), two layers,
d_model 32-96; two-layer LSTMs with hidden sizes √(24/16) ≈ 1.22× wider, so the two families'
non-embedding N match (24·d² + 10·d per Transformer, 16·d² + 12·d per LSTM with its norms).
Every key is documented in scaling/sweep/config.py.

  scaling sweep --config experiments/kaplan_lstm_vs_transformer/cpu.py --workdir runs/kaplan_lstm
  scaling plot runs/kaplan_lstm
"""

from scaling.sweep.config import defaults


def get_config():
  config = defaults()
  config.base.model.update(n_layers=2, n_heads=4, seq_len=256, norm="layernorm", mlp="gelu",
                           position="learned", tie_embeddings=True)
  config.base.log_every = 25
  config.base.eval_every = 1_000_000  # only the final evaluation ...
  config.base.eval_batches = 64  # ... over 512 held-out windows, so each position averages 512 losses
  config.base.eval_loss_by_position = True
  config.base.checkpoint_every = 1_000_000
  config.base.progress = False

  config.sweep.kind = "shapes"
  # "arch:d_model:n_layers[:model_key=value...]"; every other model key comes from `base`. The
  # rotary Transformers are the modern variant: does the position encoding decide the comparison?
  config.sweep.shapes = (
      "transformer:32:2", "transformer:48:2", "transformer:64:2", "transformer:96:2",
      "transformer:32:2:position=rotary", "transformer:48:2:position=rotary",
      "transformer:64:2:position=rotary", "transformer:96:2:position=rotary",
      "lstm:40:2", "lstm:60:2", "lstm:80:2", "lstm:120:2")
  config.sweep.recipe = "cpu_tiny"  # peak LR 3e-3·(64/d_model)^0.77 and warmup, as the CPU sweeps use
  config.sweep.batch_size = 8  # 2,048 tokens per step
  config.sweep.tokens = (489 * 2048,)  # the same for every run: 1M bytes, rounded up to 489 steps
  return config

"""Kaplan et al. 2020 Fig. 7 at accelerator scale: Transformers and LSTMs from 3M to 200M
non-embedding parameters on the same 2.5B tokens of C4 with a 1024-token context (Kaplan: WebText2,
1024 tokens). 1.1e19 FLOPs for the eight runs (chinchilla convention, as the dry run prints): a
few hours per run on a v4-32 slice.

Needs C4 prepared for TFDS in a bucket and a SentencePiece model trained on it (docs/data.md):
  scaling tokenizer train --source tfds:c4/en:3.0.1 --vocab-size 32000 --out gs://BUCKET/c4_32k.model
  scaling sweep --config experiments/kaplan_lstm_vs_transformer/tpu.py --workdir gs://BUCKET/kaplan_lstm \\
      --config.base.data.data_dir=gs://BUCKET/tensorflow_datasets \\
      --config.base.data.tokenizer=spm:gs://BUCKET/c4_32k.model
  scaling plot gs://BUCKET/kaplan_lstm
"""

from scaling.sweep.config import defaults


def get_config():
  config = defaults()
  config.base.model.update(seq_len=1024, norm="layernorm", mlp="gelu",
                           position="learned", tie_embeddings=True, dtype="bfloat16",
                           scan_layers=True)
  config.base.data.source = "tfds:c4/en:3.0.1"
  config.base.data.validation_split = "validation"
  config.base.log_every = 100
  config.base.eval_every = 2_000
  config.base.eval_batches = 16  # 4,096 held-out windows at the final evaluation
  config.base.eval_loss_by_position = True
  config.base.checkpoint_every = 1_000
  config.base.mesh.fsdp = -1
  config.base.mesh.data = 1
  config.base.progress = False

  config.sweep.kind = "shapes"
  # Transformers: n_layers = d_model / 64 (Kaplan's aspect ratio), N = 12·d²·layers = 3.1M, 25M,
  # 85M, 201M, every head 128 wide (a TPU's matrix units and tiles are 128 wide; widths are
  # multiples of 128, so they split over the slice's fsdp axis). LSTMs of 1-4 layers (as Kaplan's)
  # and matched N = 8·d²·layers: 3.3M, 26M, 89M, 210M.
  config.sweep.shapes = ("transformer:256:4:n_heads=2", "transformer:512:8:n_heads=4",
                         "transformer:768:12:n_heads=6", "transformer:1024:16:n_heads=8",
                         "lstm:640:1", "lstm:1280:2", "lstm:1664:4", "lstm:2560:4")
  config.sweep.recipe = "chinchilla"  # the GPT-3 width law for the peak LR, 2 % warmup, 256 sequences
  config.sweep.tokens = (2_500_000_000,)
  config.sweep.resources = ("v4-32",)  # --executor ray: one slice per run
  return config

"""Chinchilla Fig. 3 at realistic scale: IsoFLOP profiles at 1e18-1e20 FLOPs on C4 (not run here).

Five budgets a factor ~3 apart, seven sizes each over a factor 8 in N around Hoffmann et al.
2022's 20 tokens per parameter, on C4 (tfds, ArrayRecord in a bucket) with a 32k SentencePiece
vocabulary, 2048-token context, bf16: 35 runs, 1.0e21 FLOPs (chinchilla convention). The recipe is
in experiments/chinchilla_isoflop/README.md; every key is documented in scaling/sweep/config.py.
Check the plan anywhere (the vocabulary is fixed below, so bytes give the same plan):

  scaling sweep --config experiments/chinchilla_isoflop/tpu.py --workdir /tmp/plan --dry-run \
      --config.base.data.tokenizer=bytes
"""

from scaling.sweep.config import defaults

BUCKET = "gs://YOUR_BUCKET"  # edit: where C4 and the tokenizer were prepared (README)


def get_config():
  config = defaults()
  config.base.model.seq_len = 2048  # Hoffmann et al. 2022 (and Kaplan et al. 2020: 1024)
  config.base.model.vocab_size = 32_000  # Chinchilla's SentencePiece vocabulary size
  config.base.model.dtype = "bfloat16"
  config.base.data.source = "tfds:c4/en:3.1.0"
  config.base.data.data_dir = f"{BUCKET}/tfds"
  config.base.data.tokenizer = f"spm:{BUCKET}/tokenizers/c4-32k.model"
  config.base.data.validation_split = "validation"
  # 256 × 2048 tokens per step on 4 chips is 64 sequences per chip: without remat their
  # activations need 117-380 GiB per chip for even the 1e18 runs (`--topology v5p-8`, README).
  # Recompute the blocks in the backward pass, scan them, and shard the state over the chips.
  config.base.model.remat = "full"
  config.base.model.scan_layers = True
  config.base.mesh.data = 1
  config.base.mesh.fsdp = -1  # parameters and the batch over every chip
  config.base.eval_batches = 16  # 16 × 256 × 2048 = 8.4M held-out tokens, the same for every run
  config.base.log_every = 50
  config.base.eval_every = 1000
  config.base.checkpoint_every = 1000  # a preempted (spot) run resumes from here
  config.base.progress = False

  config.sweep.kind = "isoflop"
  config.sweep.recipe = "chinchilla"  # 256 sequences per step, GPT-3 LR-width law, 2 % warmup
  # Hoffmann et al. 2022 Table A9's depth for width, on TPU shapes: widths multiples of 128, heads
  # 128 wide, even depths (scaling/models/ladder.py), so every width splits over the slice's fsdp
  # axis (the chinchilla rule's d_model 400 does not split 32 ways on v5p-64).
  config.sweep.rule = "tpu"
  config.sweep.flops_convention = "chinchilla"
  config.sweep.budgets = (1e18, 3e18, 1e19, 3e19, 1e20)
  config.sweep.sizes_per_budget = 7
  config.sweep.size_span = 8.0
  # At this scale embeddings and attention are a small share of FLOPs, so Hoffmann's 20 tokens
  # per parameter is a fair centre; check that every profile's minimum lies inside its grid.
  config.sweep.optimum = "tokens_per_param"
  config.sweep.optimum_tokens_per_param = 20.0
  return config

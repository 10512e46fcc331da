"""GPT-2-like shapes at a TPU pod's scale, for `scaling compile` (docs/scale.md): `FILE:SIZE`.

  scaling compile --config configs/scale.py:1b --topology v5p-16
  scaling compile --config configs/scale.py:124m --topology v5litepod-16 --config.mesh.data=-1 --config.mesh.fsdp=1

SIZE is 124m (d_model 768, 12 layers), 350m (1024, 24) or 1b (2048, 16); all: heads 128 wide (a
TPU's matrix units and tiles are 128 wide: 6, 8 and 16 heads), seq_len 2048, bf16
compute, blocks scanned (`model.scan_layers`) and recomputed in the backward pass
(`model.remat=full`), a 32768-token vocabulary (a SentencePiece model of that size), global batch 64 sequences,
parameters sharded over every device (fsdp = -1).
"""

from scaling.train.config import defaults

SHAPES = {"124m": (768, 12, 6), "350m": (1024, 24, 8), "1b": (2048, 16, 16)}  # D, layers, heads


def get_config(size: str = "1b"):
  if size not in SHAPES:
    raise ValueError(f"size {size!r}: expected one of {', '.join(SHAPES)}")
  config = defaults()
  config.model.d_model, config.model.n_layers, config.model.n_heads = SHAPES[size]
  config.model.seq_len = 2048
  config.model.vocab_size = 32768
  config.model.dtype = "bfloat16"
  config.model.scan_layers = True  # one compiled block: compile time flat in depth
  config.model.remat = "full"  # without it, 64 × 2048 tokens of activations fill HBM (docs/scale.md)
  config.batch_size = 64
  config.mesh.data = 1
  config.mesh.fsdp = -1
  return config

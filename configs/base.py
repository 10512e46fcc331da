"""Every key `scaling train` reads, with its default and what it means.

Start a new config from this file (or from `scaling.train.config.defaults()`, which it equals; a test
keeps the two identical). Override any key on the command line:

  scaling train --config configs/base.py --workdir DIR --config.model.d_model=128 --config.train_steps=500
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  config.model = ml_collections.ConfigDict()
  config.model.arch = "transformer"  # registered architecture name (scaling/models/registry.py)
  config.model.d_model = 64  # residual width D
  config.model.n_layers = 2  # number of blocks
  config.model.n_heads = 4  # attention heads; must divide d_model
  config.model.d_ff = 0  # MLP hidden width F; 0 = round(mlp_ratio * d_model)
  config.model.mlp_ratio = 4.0  # F / D when d_ff is 0
  config.model.vocab_size = 0  # 0 = the tokenizer's vocabulary (256 for bytes); else ≥ that
  config.model.seq_len = 64  # context length S (tokens per training sequence)
  config.model.norm = "rmsnorm"  # rmsnorm | layernorm (Kaplan/GPT-2)
  config.model.mlp = "swiglu"  # swiglu | gelu (Kaplan/GPT-2)
  config.model.position = "rotary"  # rotary | learned (Kaplan/GPT-2)
  config.model.tie_embeddings = False  # share the input embedding with the output layer
  config.model.dtype = "float32"  # compute dtype: float32 (CPU) | bfloat16 (accelerators)
  config.model.init_std = 0.02  # normal init std; residual projections get std / sqrt(2 n_layers)
  config.model.scan_layers = False  # apply the blocks with nnx.scan: compile time flat in depth
  config.model.remat = "none"  # backward-pass recomputation: none | full | dots (save matmul outputs)
  config.model.attention = "auto"  # auto (cuDNN on GPU under bf16 when shapes allow, else XLA) | xla | cudnn

  config.batch_size = 32  # global batch, in sequences, over all devices and processes
  config.train_steps = 1000  # run length in optimizer steps (ignored when train_tokens is set)
  config.train_tokens = 0  # run length in tokens, rounded up to whole steps; 0 = use train_steps
  config.learning_rate = 3e-3  # peak learning rate
  config.warmup_steps = -1  # linear warmup from 0, then cosine decay; -1 = warmup_fraction of the run
  config.warmup_fraction = 0.1  # warmup as a share of the run, in [0, 1), when warmup_steps is -1
  config.min_lr_ratio = 0.1  # cosine decays to this fraction of the peak (Hoffmann et al. 2022)
  config.weight_decay = 0.1  # AdamW decoupled decay, on matrices only (not norms)
  config.adam_b1 = 0.9
  config.adam_b2 = 0.95
  config.adam_eps = 1e-8
  config.grad_clip = 1.0  # clip the global gradient norm; 0 = off
  config.seed = 0  # parameter init and data order

  config.log_every = 10  # write a metrics.jsonl row every this many steps (and at the end)
  config.eval_every = 100  # evaluate on the validation split every this many steps (and at the end)
  config.eval_batches = 4  # global batches of validation data per evaluation
  config.eval_loss_by_position = False  # also log the eval loss at each context position (a list of seq_len)
  config.checkpoint_every = 500  # save a checkpoint every this many steps (and at the end)
  config.keep_checkpoints = 2  # how many recent checkpoints orbax keeps
  config.progress = True  # show a progress bar
  # Where metrics rows go, comma-separated: jsonl (metrics.jsonl, always) | tensorboard | wandb
  # (Weights & Biases: pip install 'scaling[wandb]'; WANDB_MODE=offline needs no network)
  config.trackers = "jsonl,tensorboard"
  config.wandb_project = "scaling"  # W&B project (read when trackers has wandb, as are the next three)
  config.wandb_entity = ""  # W&B team or user; "" = your default entity
  config.wandb_name = ""  # W&B run name; "" = the workdir's basename (in a sweep: the run's name)
  config.wandb_group = ""  # W&B run group; "" = none (in a sweep: the sweep workdir's basename)
  # On resume, a changed key that changes the result (optimizer, schedule, length) is refused:
  # refuse | allow (run.json's history records what changed at which step)
  config.resume_changes = "refuse"

  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1  # data-parallel replicas; -1 = the devices left over
  config.mesh.fsdp = 1  # parameter (FSDP) sharding; the batch is split over data × fsdp
  config.mesh.tensor = 1  # tensor parallelism over heads, MLP hidden units and vocabulary

  config.data = ml_collections.ConfigDict()
  config.data.source = "stdlib"  # stdlib (embedded corpus) | text (files by glob) | tfds:NAME[/CONFIG][:VERSION]
  config.data.glob = ""  # for source=text: files to read, `**` allowed
  config.data.validation_percent = 5  # stdlib/text: share of files held out, chosen by a hash of the path
  config.data.data_dir = ""  # tfds: TFDS data dir, local or gs:// ("" = $TFDS_DATA_DIR or ~/tensorflow_datasets)
  config.data.text_feature = "text"  # tfds: the text feature that is one document
  config.data.train_split = "train"  # tfds: split to train on (TFDS split syntax, e.g. "train[:99%]")
  config.data.validation_split = "validation"  # tfds: split to evaluate on (lm1b: "test")
  config.data.tokenizer = "bytes"  # bytes (vocab 256) | spm:PATH (SentencePiece; `scaling tokenizer train`)

  config.distributed = ml_collections.ConfigDict()
  config.distributed.initialize = False  # call jax.distributed.initialize() (multi-host)
  config.distributed.coordinator_address = ""  # host:port; "" = auto-detect (TPU VMs, SLURM)
  config.distributed.num_processes = 0  # 0 = auto-detect
  config.distributed.process_id = -1  # -1 = auto-detect
  return config

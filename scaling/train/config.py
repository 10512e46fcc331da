"""Training config: every default in one documented ConfigDict, validated once into typed values.

Config files (`configs/*.py`) start from `defaults()` and change what they need; `--config.KEY=VALUE`
overrides go through ml_collections. `validate` turns the result into a frozen `TrainConfig` or raises
one `InputError` naming the key, before anything is built or written.
"""

import dataclasses
import math

import ml_collections

from scaling import checks
from scaling.errors import InputError
from scaling.models import registry
from scaling.models.config import DTYPES, MAX_INT, ModelConfig

RESUME_CHANGES = ("refuse", "allow")


def defaults() -> ml_collections.ConfigDict:
  """Every key `scaling train` reads, with its default and what it means (configs/base.py imports it)."""
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
  # backward-pass recomputation: none | full | dots (save matmul outputs) | save_attention |
  # save_mlp_input | save_attention_mlp_input (save those activations by name) | offload (TPU: them to host)
  config.model.remat = "none"
  # attention kernel: xla | blockwise (no [L, L] scores) | splash (TPU) | cudnn (GPU) | auto (by the
  # platform compiled for: splash on TPU at L a multiple of 128, cuDNN on GPU under bf16, blockwise
  # on CPU from L 1024; xla otherwise)
  config.model.attention = "auto"
  config.model.logits_chunks = 0  # train loss over this many vocabulary slices; 0 = one per 32768 entries

  config.batch_size = 32  # global batch, in sequences, over all devices and processes
  # Gradient accumulation: the step runs the batch as this many equal microbatches in a scan, summing
  # float32 gradients, then makes one update (same result as one batch; activations ÷ microbatches)
  config.microbatches = 1
  # The matmul weights' gradients as summed over the devices that split the batch (the reduce-scatter
  # over fsdp): float32 (MaxText's default; also on CPU, where no collective is saved and the sum
  # lands in float32 parameters anyway) | bfloat16 (half the bytes reduced, bf16 rounding of partial
  # sums). Matters only under model.dtype=bfloat16; the embedding's gradient is float32 always.
  config.grad_dtype = "float32"
  config.train_steps = 1000  # run length in optimizer steps (ignored when train_tokens is set)
  config.train_tokens = 0  # run length in tokens, rounded up to whole steps; 0 = use train_steps
  config.learning_rate = 3e-3  # peak learning rate
  config.warmup_steps = -1  # linear warmup from 0, then cosine decay; -1 = warmup_fraction of the run
  config.warmup_fraction = 0.1  # warmup as a share of the run, in [0, 1), when warmup_steps is -1
  config.min_lr_ratio = 0.1  # the schedule decays to this fraction of the peak (Hoffmann et al. 2022)
  # cosine (decays from the warmup's end to the last step) | wsd (warmup-stable-decay: the peak held,
  # then a cooldown over the last decay_fraction of the run; Hägele et al. 2024, schedule.py)
  config.schedule = "cosine"
  config.decay_fraction = 0.2  # wsd: the cooldown's share of the run, in [0, 1)
  config.decay_shape = "sqrt"  # wsd: the cooldown's shape: sqrt (Hägele et al.'s 1 − sqrt) | linear
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
  # Steps also checkpointed and never deleted: a branching sweep's trunk sets its branches' forks
  config.checkpoint_steps = ()
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
  # Overrides of the logical-axis rules (which mesh axes split each named array dimension; defaults
  # in scaling/parallel/rules.py RULES): "LOGICAL=MESH[+MESH],...", e.g. "embed=tensor,mlp=fsdp";
  # "none" replicates ("heads=none"); "" = the defaults. Checked with the mesh, recorded in run.json
  config.mesh.rules = ""

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


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """The validated, typed run description the trainer receives."""

  model: ModelConfig
  batch_size: int
  train_steps: int  # resolved from train_tokens when that was given
  learning_rate: float
  warmup_steps: int  # resolved from warmup_fraction when warmup_steps is -1
  min_lr_ratio: float
  schedule: str  # cosine | wsd (scaling/train/schedule.py)
  decay_fraction: float
  decay_shape: str
  weight_decay: float
  adam_b1: float
  adam_b2: float
  adam_eps: float
  grad_clip: float
  seed: int
  log_every: int
  eval_every: int
  eval_batches: int
  checkpoint_every: int
  keep_checkpoints: int
  checkpoint_steps: tuple[int, ...]
  progress: bool
  trackers: tuple[str, ...]  # tracker names, in order (scaling/train/trackers.py)
  eval_loss_by_position: bool
  resume_changes: str
  mesh: dict
  data: ml_collections.ConfigDict
  distributed: dict
  wandb: dict
  microbatches: int = 1
  grad_dtype: str = "float32"
  sharding_rules: tuple = ()  # mesh.rules: ((logical axis, mesh axes), ...) in place of RULES' own

  @property
  def tokens_per_step(self) -> int:
    return self.batch_size * self.model.seq_len


def _check_keys(config, reference, prefix=""):
  """Every key must exist in the defaults; a typo must not silently become a no-op."""
  for key in config.keys():
    if key not in reference:
      raise InputError(f"{prefix}{key} is not a known config key")
    # data and model are checked by their own configs (a model family may add keys).
    if isinstance(reference[key], ml_collections.ConfigDict) and key not in ("data", "model"):
      if not isinstance(config[key], (ml_collections.ConfigDict, dict)):
        raise InputError(f"{prefix}{key} must be a group of keys, got {config[key]!r}")
      _check_keys(config[key], reference[key], prefix=f"{prefix}{key}.")


def _number(config, key: str, *, integer: bool = False, **bounds):
  """config[key] ("distributed.num_processes" reads a group), checked by `checks.number`;
  integers are at most MAX_INT (the optimizer's step counter and the device's indices are 32-bit)."""
  value = config
  for part in key.split("."):
    value = value[part]
  if integer:
    bounds.setdefault("at_most", MAX_INT)
    return int(checks.number(value, key, integer=True, **bounds))
  return float(checks.number(value, key, **bounds))


def validate(config: ml_collections.ConfigDict, *, vocab_size: int) -> TrainConfig:
  """Checks every key; `vocab_size` is the tokenizer's, used when model.vocab_size is 0."""
  reference = defaults()
  _check_keys(config, reference)
  missing = [key for key in reference.keys() if key not in config]
  if missing:
    raise InputError(f"config is missing {', '.join(missing)} (start from scaling.train.config.defaults())")

  model = _model(config, reference, vocab_size)
  batch_size = _number(config, "batch_size", integer=True, above=0)
  microbatches = _number(config, "microbatches", integer=True, above=0)
  if batch_size % microbatches:
    raise InputError(f"batch_size={batch_size} is not divisible by microbatches={microbatches}")
  train_steps, warmup_steps = _run_length(config, batch_size, model.seq_len)
  checks.one_of(config.resume_changes, "resume_changes", RESUME_CHANGES)
  decay_fraction = _schedule(config, train_steps, warmup_steps)
  checkpoint_steps = _checkpoint_steps(config.checkpoint_steps, train_steps)
  mesh = {key: config.mesh[key] for key in ("data", "fsdp", "tensor")}
  sharding_rules = _sharding_rules(config.mesh.get("rules", reference.mesh.rules))
  distributed = _distributed(config)
  from scaling.train import trackers  # here, like the registry: config stays light

  tracker_names = trackers.parse(config)
  for key in ("progress", "eval_loss_by_position"):
    checks.boolean(config[key], key)
  import jax  # here, not at the top: only this check needs a backend, and config stays light

  model.check_backend(jax.default_backend)  # asked only if an option needs it: see check_backend

  return TrainConfig(
      model=model,
      batch_size=batch_size,
      train_steps=train_steps,
      learning_rate=_number(config, "learning_rate", above=0),
      warmup_steps=warmup_steps,
      min_lr_ratio=_number(config, "min_lr_ratio", at_least=0, at_most=1),
      schedule=config.schedule,
      decay_fraction=decay_fraction,
      decay_shape=config.decay_shape,
      weight_decay=_number(config, "weight_decay", at_least=0),
      adam_b1=_number(config, "adam_b1", at_least=0, below=1),
      adam_b2=_number(config, "adam_b2", at_least=0, below=1),
      adam_eps=_number(config, "adam_eps", above=0),
      grad_clip=_number(config, "grad_clip", at_least=0),
      seed=_number(config, "seed", integer=True, at_least=0),
      log_every=_number(config, "log_every", integer=True, above=0),
      eval_every=_number(config, "eval_every", integer=True, above=0),
      eval_batches=_number(config, "eval_batches", integer=True, above=0),
      checkpoint_every=_number(config, "checkpoint_every", integer=True, above=0),
      keep_checkpoints=_number(config, "keep_checkpoints", integer=True, above=0),
      checkpoint_steps=checkpoint_steps,
      progress=config.progress,
      trackers=tracker_names,
      eval_loss_by_position=config.eval_loss_by_position,
      resume_changes=config.resume_changes,
      mesh=mesh,
      data=config.data,
      distributed=distributed,
      wandb={key: config[f"wandb_{key}"] for key in trackers.WANDB_KEYS},
      microbatches=microbatches,
      grad_dtype=config.grad_dtype,
      sharding_rules=sharding_rules,
  )


def _model(config, reference, vocab_size: int) -> ModelConfig:
  """The family's own config from `model.*` (its keys, its checks), with the tokenizer's vocabulary
  where model.vocab_size is 0 and the top-level grad_dtype where the family reads it."""
  if not isinstance(config.model, (ml_collections.ConfigDict, dict)):
    raise InputError(f"model must be a group of keys, got {config.model!r}")
  model_values = {**reference.model.to_dict(), **config.model.to_dict()}
  if model_values["vocab_size"] == 0:
    model_values["vocab_size"] = vocab_size
  elif isinstance(model_values["vocab_size"], int) and model_values["vocab_size"] < vocab_size:
    raise InputError(
        f"model.vocab_size={model_values['vocab_size']} is smaller than the tokenizer's {vocab_size}")
  checks.one_of(config.grad_dtype, "grad_dtype", DTYPES)
  if "grad_dtype" in config.model:
    raise InputError("model.grad_dtype is set by the top-level grad_dtype (use --config.grad_dtype)")
  if "grad_dtype" in registry.get(model_values["arch"]).config.key_names():
    model_values["grad_dtype"] = config.grad_dtype  # the model's matmuls compute the gradient
  elif config.grad_dtype != reference.grad_dtype:
    raise InputError(f"grad_dtype={config.grad_dtype} is set, but model.arch={model_values['arch']} "
                     "does not read it")
  return ModelConfig.from_dict(model_values)


def _run_length(config, batch_size: int, seq_len: int) -> tuple[int, int]:
  """(train_steps, warmup_steps): train_tokens rounded up to whole steps when set, the warmup as
  warmup_fraction of the run when warmup_steps is -1."""
  train_steps = _number(config, "train_steps", integer=True, at_least=0)
  train_tokens = _number(config, "train_tokens", integer=True, at_least=0)
  if train_tokens:
    train_steps = math.ceil(train_tokens / (batch_size * seq_len))
    if train_steps > MAX_INT:
      raise InputError(f"train_tokens={train_tokens} is {train_steps} steps of {batch_size} × "
                       f"{seq_len} tokens, more than the {MAX_INT} a run can take")
  if train_steps == 0:
    raise InputError("train_steps must be positive (or set train_tokens)")
  warmup_steps = _number(config, "warmup_steps", integer=True, at_least=-1)
  warmup_fraction = _number(config, "warmup_fraction", at_least=0, below=1)
  if warmup_steps == -1:
    warmup_steps = int(warmup_fraction * train_steps)  # < train_steps, so any length works
  elif warmup_steps >= train_steps:
    raise InputError(f"warmup_steps={warmup_steps} must be smaller than the run's {train_steps} "
                     "steps (or -1: warmup_fraction of the run)")
  return train_steps, warmup_steps


def _schedule(config, train_steps: int, warmup_steps: int) -> float:
  """Checks the schedule's keys; returns decay_fraction. A wsd warmup must end before the cooldown."""
  from scaling.train import schedule  # here: it imports optax, and config stays light

  checks.one_of(config.schedule, "schedule", schedule.SCHEDULES)
  checks.one_of(config.decay_shape, "decay_shape", schedule.DECAY_SHAPES)
  decay_fraction = _number(config, "decay_fraction", at_least=0, below=1)
  if config.schedule == "wsd" and warmup_steps > schedule.decay_start(train_steps, decay_fraction):
    raise InputError(f"warmup_steps={warmup_steps} ends after the cooldown starts (step "
                     f"{schedule.decay_start(train_steps, decay_fraction)} of {train_steps}: "
                     f"decay_fraction={decay_fraction}); shorten the warmup or the cooldown")
  return decay_fraction


def _checkpoint_steps(steps, train_steps: int) -> tuple[int, ...]:
  """The steps also checkpointed and kept, sorted, each within the run."""
  if not isinstance(steps, (tuple, list)):
    raise InputError(f"checkpoint_steps must be a tuple of steps, got {steps!r}")
  for i, step in enumerate(steps):
    checks.number(step, f"checkpoint_steps[{i}]", integer=True, above=0, at_most=train_steps)
  return tuple(sorted({int(step) for step in steps}))


def _sharding_rules(text) -> tuple:
  """mesh.rules parsed into overrides of `rules.RULES`, checked against the activations' layouts
  (the parameters' are checked with the model, in `check_fits_mesh`)."""
  from scaling.parallel import rules  # here: it imports jax and flax, and config stays light

  overrides = rules.parse(text)
  rules.check_layouts(rules.ACTIVATION_LAYOUTS, rules.table(overrides))
  return overrides


def _distributed(config) -> dict:
  distributed = dict(config.distributed.to_dict())
  checks.boolean(distributed["initialize"], "distributed.initialize")
  if not isinstance(distributed["coordinator_address"], str):
    raise InputError("distributed.coordinator_address must be a string (host:port), "
                     f"got {distributed['coordinator_address']!r}")
  _number(config, "distributed.num_processes", integer=True, at_least=0)
  _number(config, "distributed.process_id", integer=True, at_least=-1)
  return distributed


def check_fits_mesh(cfg: TrainConfig, mesh_shape: tuple[int, ...], process_count: int) -> None:
  """Sizes that the mesh splits must divide evenly, and no parameter may be split twice over one
  mesh axis by the run's rules; say which key to change.

  The split sizes are read off the parameters the model builds and the run's logical-axis rules
  (`scaling.parallel.rules`, `mesh.rules`); the family's `axis_keys` names the key that sets each.
  """
  from flax import nnx  # here, not at the top: config stays light

  from scaling import models
  from scaling.parallel import rules

  sizes = dict(zip(rules.MESH_AXES, mesh_shape))
  rules_table = rules.table(cfg.sharding_rules)
  batch_axes = rules.mesh_axes("batch", rules_table)
  batch_ways = rules.split_size("batch", sizes, rules_table)
  if cfg.batch_size % batch_ways:
    raise InputError(f"batch_size={cfg.batch_size} is not divisible by the batch-sharding size "
                     f"{' × '.join(f'mesh.{axis}' for axis in batch_axes)} = {batch_ways}")
  if cfg.batch_size % (cfg.microbatches * batch_ways):
    raise InputError(
        f"batch_size={cfg.batch_size} is not divisible by microbatches × the batch-sharding size "
        f"{' × '.join(f'mesh.{axis}' for axis in batch_axes)} = {cfg.microbatches} × {batch_ways}: "
        "each microbatch must split evenly over the devices")
  if cfg.batch_size % process_count:
    raise InputError(f"batch_size={cfg.batch_size} is not divisible by the {process_count} processes")
  architecture = models.get(cfg.model.arch)
  layouts = rules.param_layouts(lambda: architecture.module(cfg.model, rngs=nnx.Rngs(0)))
  rules.check_layouts(sorted({logical_axes for logical_axes, _ in layouts}, key=str), rules_table)
  for name, size, axes, ways in rules.unsplittable(layouts, sizes, rules_table):
    key = architecture.axis_keys.get(name, f"model (arch={cfg.model.arch}): its {name!r} axis")
    split = " × ".join(f"mesh.{axis}" for axis in axes)
    raise InputError(f"{key}={size} is not divisible by {split}={ways}")

"""Every key `scaling sweep` reads: `config.base` (one train config) plus `config.sweep.*`.

Sweep files (`configs/sweeps/*.py`) start from `defaults()` and change what they need; each key's
meaning is documented beside its default below. Sizes N are non-embedding parameter counts (Kaplan
et al. 2020's N), turned into shapes by `scaling.models.ladder.shape_for` under `sweep.rule`. A
run's length is a whole number of steps, so its real FLOPs (logged, and what results.csv and the
fitter use) differ from the nominal budget by less than half a step.
"""

import ml_collections

from scaling.train import config as train_config

KINDS = ("isoflop", "ladder", "curves", "shapes", "hparams")
BRANCHES = ("none", "cooldown")
OPTIMA = ("tokens_per_param", "power_law", "sizes")


def defaults() -> ml_collections.ConfigDict:
  """Every sweep key with its default and what it means."""
  config = ml_collections.ConfigDict()
  # The train config every run starts from (keys documented in scaling/train/config.py). A sweep
  # sets model.d_model/n_layers/n_heads (from the ladder, or the shape), batch_size,
  # learning_rate, warmup_steps (from the recipe) and train_steps (from the budget or horizon);
  # every other key (seq_len, norm, mesh, data, eval_batches, ...) is shared.
  config.base = train_config.defaults()

  config.sweep = ml_collections.ConfigDict()
  # isoflop | ladder | curves | shapes | hparams (below: which keys each reads)
  config.sweep.kind = "isoflop"
  # The named hyperparameters that change with scale (scaling/sweep/recipe.py): cpu_tiny |
  # chinchilla. Each sets batch_size, learning_rate (from the width) and warmup_steps of every run.
  # Or "fitted:PATH" (local or gs://): the report of `scaling fit --approach hparams` sets each
  # run's learning_rate (and batch_size, where it fitted batch_opt(C)) from its laws at the run's
  # N, D and C; warmup as the recipe its hparams sweep ran with (docs/sweeps.md "Tuning a recipe").
  config.sweep.recipe = "cpu_tiny"
  config.sweep.batch_size = 0  # every run's global batch in sequences; 0 = the recipe's
  config.sweep.rule = "kaplan"  # kaplan | chinchilla | tpu | aspect:<d_model/n_layers> | heads:<head_dim>
  # The convention budgets are measured in: kaplan | chinchilla | 6n | 6n_total
  # (scaling/models/accounting.py). results.csv always has the logged chinchilla and kaplan FLOPs.
  config.sweep.flops_convention = "chinchilla"

  # kind = isoflop (Hoffmann et al. 2022, Approach 2): for each budget C, sizes_per_budget sizes
  # evenly spaced in log N around the expected optimum N*(C), each trained for D = C / (FLOPs per
  # token of N) tokens, so each budget traces one IsoFLOP profile.
  config.sweep.budgets = ()  # budgets C in FLOPs (flops_convention), e.g. (1e11, 3e11, 1e12)
  config.sweep.sizes_per_budget = 5  # K sizes per budget, ≥ 3 (a parabola in log N needs 3)
  config.sweep.size_span = 8.0  # largest / smallest N of each budget's grid (> 1), centred on N*
  # How the centre N*(C) is set: tokens_per_param | power_law | sizes.
  config.sweep.optimum = "tokens_per_param"
  # tokens_per_param: N* is the size trained for D = ratio × N* tokens. 20 is Hoffmann et al.
  # 2022's; tiny byte-level models are far from it, so centre on a measured value.
  config.sweep.optimum_tokens_per_param = 20.0
  config.sweep.optimum_coefficient = 0.0  # power_law: N* = coefficient × C^exponent (> 0)
  config.sweep.optimum_exponent = 0.5  # power_law: the exponent (Hoffmann et al. 2022: ≈ 0.5)
  config.sweep.optimum_sizes = ()  # sizes: N* for each budget, in the order of budgets

  # kind = ladder (Kaplan et al. 2020's L(N)): every size trained to one horizon.
  # kind = curves (Hoffmann et al. 2022, Approach 1): every size trained to several horizons, each
  # a separate run whose cosine schedule ends at its own horizon.
  # kind = shapes (e.g. Kaplan et al. 2020 Fig. 7, architectures compared): explicit models, each
  # trained to every horizon; sweep.rule does not apply.
  config.sweep.sizes = ()  # ladder | curves: target non-embedding sizes N, e.g. (1e4, 3e4, 1e5)
  # shapes: "ARCH:D_MODEL:N_LAYERS[:MODEL_KEY=VALUE...]", every other model key from base.model,
  # e.g. ("transformer:64:2", "transformer:64:2:position=rotary", "lstm:80:2")
  config.sweep.shapes = ()
  config.sweep.tokens = ()  # horizons in tokens (ladder: one value) ...
  config.sweep.tokens_per_param = ()  # ... or as tokens per non-embedding parameter: D = ratio × N

  # kind = hparams (docs/sweeps.md "Tuning a recipe"): every size (sweep.sizes) at every horizon
  # (sweep.tokens or tokens_per_param), trained at every learning rate and every batch size below,
  # so `scaling fit --approach hparams` can find the best LR of each point and fit how it scales.
  # Learning rates are multipliers of the recipe's LR for that run, e.g. (0.25, 0.5, 1, 2, 4).
  config.sweep.learning_rates = ()
  config.sweep.batch_sizes = ()  # global batches in sequences; () = the recipe's (or batch_size)

  # Replicates (any kind): each planned run is trained again with each of these seeds in place of
  # base.seed (parameter init and data order), as run NAME_s<seed>; results.csv's seed column lets
  # `scaling fit`'s isoFLOP bootstrap resample seeds within sizes. isoflop: only the runs of
  # replicate_budgets (values of sweep.budgets; () = every budget).
  config.sweep.replicate_seeds = ()  # e.g. (1, 2): three seeds in all with base.seed = 0
  config.sweep.replicate_budgets = ()

  # Branches (any kind; docs/sweeps.md "Branches"): none | cooldown. cooldown trains every run with
  # base.schedule = "wsd" (warmup-stable-decay, Hägele et al. 2024), and runs that differ only in
  # their length share one trunk: it trains at constant LR (warmup from the shortest run), and
  # each run forks off it at its decay start (1 − base.decay_fraction) × steps and trains only
  # its cooldown. A size at several horizons then costs its longest run plus the other cooldowns.
  config.sweep.branches = "none"

  # --executor ray (docs/sweeps.md): what each run asks of the Ray cluster, and how often it is tried.
  # Specs: cpu:N, gpu:N, or a TPU slice type (v4-16, v5litepod-8, v6e-16: one process per host).
  # MAX_N=SPEC entries by increasing MAX_N pick by non-embedding size; a bare last SPEC covers the rest:
  # ("1e8=gpu:1", "1e9=v5litepod-8", "v5litepod-16").
  config.sweep.resources = ("cpu:1",)
  config.sweep.preemption_retries = 10000  # re-queues of a run whose worker died or got SIGTERM
  config.sweep.failure_retries = 0  # re-tries of a run that raised (a bug or bad config: 0)
  config.sweep.lease_seconds = 60.0  # a run's lease not renewed for this long is taken over
  return config


def cpu_defaults() -> ml_collections.ConfigDict:
  """`defaults()` with the base keys the byte-level sweeps sized for a CPU share
  (configs/sweeps/*_tiny.py, experiments/*/cpu.py): runs of a few hundred to a few thousand steps,
  where every evaluation and checkpoint before the last costs CPU time and adds nothing fitted."""
  config = defaults()
  config.base.model.seq_len = 64  # bytes of context
  # 64 × 16 × 64 = 64k held-out bytes for each run's final loss, spread over the validation split
  # (data.eval_batches): a smaller or narrower set adds its own noise to every loss (docs/data.md)
  config.base.eval_batches = 64
  config.base.log_every = 20
  config.base.eval_every = 100_000  # only the final evaluation ...
  config.base.checkpoint_every = 100_000  # ... and the final checkpoint
  return config


# The sweep keys only one kind reads; setting one for another kind is a mistake worth naming.
KIND_KEYS = {
    "isoflop": ("budgets", "sizes_per_budget", "size_span", "optimum", "optimum_tokens_per_param",
                "optimum_coefficient", "optimum_exponent", "optimum_sizes", "replicate_budgets"),
    "ladder": ("sizes", "tokens", "tokens_per_param"),
    "curves": ("sizes", "tokens", "tokens_per_param"),
    "shapes": ("shapes", "tokens", "tokens_per_param"),
    "hparams": ("sizes", "tokens", "tokens_per_param", "learning_rates", "batch_sizes"),
}

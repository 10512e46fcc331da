"""Sweep plans: budgets become sizes and whole steps, with the arithmetic checked run by run."""

import dataclasses
import importlib.util
import math
import pathlib
import re

import pytest

from scaling import models
from scaling.errors import InputError
from scaling.models import ladder
from scaling.sweep import config as sweep_config
from scaling.sweep import plan as plan_lib
from scaling.sweep import recipe as recipe_lib

SWEEP_CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs" / "sweeps"


def isoflop_config(**sweep):
  config = sweep_config.defaults()
  config.base.model.seq_len = 32
  config.sweep.budgets = (1e11, 1e12, 1e13)
  config.sweep.sizes_per_budget = 5
  config.sweep.size_span = 8.0
  config.sweep.optimum_tokens_per_param = 10.0
  for key, value in sweep.items():
    config.sweep[key] = value
  return config


def flops_per_token(run, convention="chinchilla"):
  return models.get("transformer").flops_per_token(run.model)[convention]


def by_budget(plan):
  groups = {}
  for run in plan.runs:
    groups.setdefault(run.budget, []).append(run)
  return groups


@pytest.mark.parametrize("convention", ["chinchilla", "kaplan", "6n", "6n_total"])
def test_isoflop_tokens_times_cost_is_the_budget_within_half_a_step(convention):
  plan = plan_lib.build(isoflop_config(flops_convention=convention), "/sweep")
  assert len(plan.runs) == 15
  for run in plan.runs:
    tokens_per_step = run.config.batch_size * run.config.model.seq_len
    cost = flops_per_token(run, convention)
    assert run.tokens == run.steps * tokens_per_step == run.config.train_steps * tokens_per_step
    assert run.flops == pytest.approx(run.tokens * cost, rel=1e-12)
    assert abs(run.flops - run.budget) <= 0.5 * tokens_per_step * cost
    assert run.params_non_embedding == models.get("transformer").param_counts(
        run.model)["non_embedding"]


def test_isoflop_sizes_are_evenly_spaced_in_log_n_around_the_centre():
  plan = plan_lib.build(isoflop_config(), "/sweep")
  for budget, runs in by_budget(plan).items():
    targets = [run.target_params for run in runs]
    steps = [math.log(b / a) for a, b in zip(targets, targets[1:])]
    assert steps == pytest.approx([math.log(8.0) / 4] * 4)
    centre = math.exp(sum(math.log(t) for t in targets) / len(targets))
    # The centre is where D / N crosses optimum_tokens_per_param along the (discrete) ladder.
    def tokens_per_param(n):
      model = ladder.ladder([n], "kaplan", runs[0].model)[0]
      return budget / models.get("transformer").flops_per_token(model)["chinchilla"] / n

    assert tokens_per_param(centre * (1 - 1e-6)) >= 10.0 >= tokens_per_param(centre * (1 + 1e-6))
    # Real sizes follow the targets up to the ladder's width grid, and grow with them.
    for run in runs:
      assert run.params_non_embedding == pytest.approx(run.target_params, rel=0.2)
    assert [r.params_non_embedding for r in runs] == sorted(r.params_non_embedding for r in runs)


def test_power_law_and_explicit_optima_centre_the_grid():
  plan = plan_lib.build(isoflop_config(optimum="power_law", optimum_coefficient=0.5,
                                       optimum_exponent=0.45), "/sweep")
  for budget, runs in by_budget(plan).items():
    centre = math.exp(sum(math.log(r.target_params) for r in runs) / len(runs))
    assert centre == pytest.approx(0.5 * budget**0.45)
  plan = plan_lib.build(isoflop_config(optimum="sizes", optimum_sizes=(2e4, 6e4, 2e5)), "/sweep")
  centres = [runs[2].target_params for runs in by_budget(plan).values()]
  assert centres == pytest.approx([2e4, 6e4, 2e5])


def test_names_are_stable_filesystem_safe_and_encode_budget_and_size():
  first = plan_lib.build(isoflop_config(), "/sweep")
  second = plan_lib.build(isoflop_config(), "/sweep")
  assert [r.name for r in first.runs] == [r.name for r in second.runs]
  assert len({r.name for r in first.runs}) == len(first.runs)
  for run in first.runs:
    assert re.fullmatch(r"C\d(\.\d+)?e\d+_N\d(\.\d+)?e\d+", run.name), run.name
    assert run.name.startswith(f"C{plan_lib.short_number(run.budget)}_")
    assert run.workdir == f"/sweep/runs/{run.name}"
  assert plan_lib.short_number(1e12) == "1e12"
  assert plan_lib.short_number(32896) == "3.29e4"
  assert plan_lib.short_number(2.5e11) == "2.5e11"


def test_runs_take_hyperparameters_from_the_recipe():
  plan = plan_lib.build(isoflop_config(), "/sweep")
  recipe = recipe_lib.get("cpu_tiny")
  for run in plan.runs:
    assert run.config.batch_size == recipe.batch_size
    assert run.config.learning_rate == pytest.approx(recipe.learning_rate(run.config.model.d_model))
    assert run.config.warmup_steps == min(round(0.1 * run.steps), 50)
    assert run.config.train_tokens == 0
  widths = sorted({run.config.model.d_model for run in plan.runs})
  rates = [recipe.learning_rate(d) for d in widths]
  assert rates == sorted(rates, reverse=True)
  assert [recipe.warmup_steps(steps) for steps in (1, 5, 100, 10_000)] == [0, 0, 10, 50]


def test_ladder_at_fixed_tokens_and_at_fixed_ratio():
  config = sweep_config.defaults()
  config.base.model.seq_len = 32
  config.sweep.kind = "ladder"
  config.sweep.sizes = (1e4, 3e4, 1e5)
  config.sweep.tokens = (1e6,)
  plan = plan_lib.build(config, "/sweep")
  assert [r.tokens for r in plan.runs] == [round(1e6 / 512) * 512] * 3
  assert [r.name.split("_")[1] for r in plan.runs] == ["D1e6"] * 3
  config.sweep.tokens = ()
  config.sweep.tokens_per_param = (20.0,)
  plan = plan_lib.build(config, "/sweep")
  for run in plan.runs:
    assert abs(run.tokens - 20 * run.params_non_embedding) <= 256
    assert run.budget == pytest.approx(flops_per_token(run) * 20 * run.params_non_embedding)


def test_curves_train_each_size_to_each_horizon_with_a_matched_schedule():
  config = sweep_config.defaults()
  config.base.model.seq_len = 32
  config.sweep.kind = "curves"
  config.sweep.sizes = (1e4, 1e5)
  config.sweep.tokens = (2.5e5, 1e6, 4e6)
  plan = plan_lib.build(config, "/sweep")
  assert len(plan.runs) == 6
  sizes = [r.params_non_embedding for r in plan.runs]
  assert sizes[:3] == [sizes[0]] * 3 and sizes[3:] == [sizes[3]] * 3
  for run in plan.runs:
    assert run.config.train_steps == run.steps  # the cosine decays over this run's own horizon
    assert run.config.warmup_steps == recipe_lib.get("cpu_tiny").warmup_steps(run.steps)
  assert [r.steps for r in plan.runs[:3]] == [round(t / 512) for t in (2.5e5, 1e6, 4e6)]


@pytest.mark.parametrize("arch", ["lstm", "rnn"])
def test_shapes_train_explicit_models_counted_by_their_own_architecture(arch):
  shapes = ("transformer:32:2", "transformer:32:2:position=learned", f"{arch}:40:2")
  config = isoflop_config(**_shapes(shapes=shapes, tokens_per_param=(10.0, 40.0), tokens=(),
                                    batch_size=8))
  plan = plan_lib.build(config, "/sweep")
  assert [run.name for run in plan.runs] == [
      f"{name}_D{plan_lib.short_number(run.tokens)}" for name, run in zip(
          ["transformer_d32_l2"] * 2 + ["transformer_d32_l2_learned"] * 2 + [f"{arch}_d40_l2"] * 2,
          plan.runs)]
  for i, run in enumerate(plan.runs):  # each shape at 10, then 40 tokens per parameter
    architecture = models.get(run.model.arch)
    counts = architecture.param_counts(run.model)
    assert run.params == counts["total"] and run.params_non_embedding == counts["non_embedding"]
    assert run.flops == pytest.approx(
        run.tokens * architecture.flops_per_token(run.model)["chinchilla"], rel=1e-12)
    assert run.config.batch_size == 8 and run.tokens == run.steps * 8 * 32
    assert abs(run.tokens - (10.0, 40.0)[i % 2] * run.params_non_embedding) <= 0.5 * 8 * 32
    assert run.config.learning_rate == pytest.approx(
        recipe_lib.get("cpu_tiny").learning_rate(run.model.d_model))
  assert {run.model.arch for run in plan.runs} == {"transformer", arch}
  assert plan.runs[2].config.model.position == "learned" != plan.runs[0].config.model.position
  assert plan.runs[4].config.model.n_layers == 2 and plan.runs[4].config.model.d_model == 40
  assert plan.to_json()["recipe"]["batch_size"] == 8
  summary = plan.to_json()["runs"][4]
  assert (summary["arch"], summary["shape"]) == (arch, f"{arch}:40:2")


def test_replicate_seeds_train_the_chosen_budgets_again_under_named_seeds():
  plan = plan_lib.build(isoflop_config(replicate_seeds=(1, 2), replicate_budgets=(1e11,)), "/sweep")
  assert len(plan.runs) == 15 + 2 * 5
  replicated = {}
  for run in plan.runs:
    base_name, _, seed = run.name.partition("_s")
    assert run.config.seed == (int(seed) if seed else 0)
    replicated.setdefault(base_name, []).append(run)
  for base_name, runs in replicated.items():
    first = runs[0]
    assert [r.config.seed for r in runs] == ([0, 1, 2] if first.budget == 1e11 else [0])
    for run in runs[1:]:  # the same run but for the seed (and the W&B name, the run's name)
      assert run.config.to_dict() == {**first.config.to_dict(), "seed": run.config.seed,
                                      "wandb_name": run.name}
      assert run.workdir != first.workdir
  # Every budget (), and the other kinds: every run.
  assert len(plan_lib.build(isoflop_config(replicate_seeds=(7,)), "/sweep").runs) == 30
  ladder_config = _ladder(replicate_seeds=(3,))
  config = isoflop_config()
  for key, value in ladder_config.items():
    config.sweep[key] = value
  names = [run.name for run in plan_lib.build(config, "/sweep").runs]
  assert len(names) == 4 and names[1] == names[0] + "_s3"


def test_plan_json_and_table():
  plan = plan_lib.build(isoflop_config(), "/sweep")
  record = plan.to_json()
  assert record["kind"] == "isoflop" and record["recipe"]["name"] == "cpu_tiny"
  assert record["flops_convention"] == "chinchilla"
  assert [r["name"] for r in record["runs"]] == [r.name for r in plan.runs]
  assert record["runs"][0]["workdir"] == f"runs/{plan.runs[0].name}"
  assert record["runs"][0]["config"]["train_steps"] == plan.runs[0].steps
  lines = plan.table().splitlines()
  assert lines[0].split() == ["name", "d_model", "n_layers", "n_heads", "params", "N", "batch",
                              "lr", "warmup", "steps", "tokens", "tokens/N", "FLOPs", "budget"]
  assert len(lines) == 1 + len(plan.runs) + 1
  # what docs/sweeps.md says the dry-run shows: each run's batch, learning rate and warmup
  first = dict(zip(lines[0].split(), lines[1].split()))
  run = plan.runs[0]
  assert int(first["batch"]) == run.config.batch_size == recipe_lib.get("cpu_tiny").batch_size
  assert float(first["lr"]) == pytest.approx(run.config.learning_rate, rel=1e-2)
  assert int(first["warmup"].replace(",", "")) == run.config.warmup_steps > 0


@pytest.mark.parametrize("path", sorted(p.name for p in SWEEP_CONFIGS.glob("*.py")
                                        if p.name != "base.py"))
def test_every_example_sweep_config_plans(path):
  spec = importlib.util.spec_from_file_location("sweep_example", SWEEP_CONFIGS / path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert plan_lib.build(module.get_config(), "/sweep").runs


def _ladder(**sweep):
  """A valid ladder on top of isoflop_config(): its isoflop keys back at their defaults."""
  defaults = sweep_config.defaults().sweep
  isoflop_defaults = {key: defaults[key] for key in sweep_config.KIND_KEYS["isoflop"]}
  return {**isoflop_defaults, "kind": "ladder", "sizes": (1e4, 3e4), "tokens": (1e6,), **sweep}


def _shapes(**sweep):
  """A valid shapes sweep on top of isoflop_config(), like _ladder."""
  defaults = sweep_config.defaults().sweep
  isoflop_defaults = {key: defaults[key] for key in sweep_config.KIND_KEYS["isoflop"]}
  return {**isoflop_defaults, "kind": "shapes", "shapes": ("transformer:32:2", "lstm:40:2"),
          "tokens": (1e6,), **sweep}


BAD_SWEEPS = {
    "unknown_kind": (dict(kind="grid"), "sweep.kind"),
    "unknown_recipe": (dict(recipe="gpt9"), "sweep.recipe"),
    "unknown_rule": (dict(rule="wide"), "sweep.rule"),
    "bad_aspect": (dict(rule="aspect:-3"), "sweep.rule"),
    "unknown_convention": (dict(flops_convention="palm"), "sweep.flops_convention"),
    "no_budgets": (dict(budgets=()), "sweep.budgets"),
    "negative_budget": (dict(budgets=(1e10, -1e11)), "sweep.budgets"),
    "budget_below_one_step": (dict(budgets=(1e7,), optimum="sizes", optimum_sizes=(1e4,)),
                              "sweep.budgets"),
    "two_sizes_per_budget": (dict(sizes_per_budget=2), "sweep.sizes_per_budget"),
    "span_not_above_one": (dict(size_span=1.0), "sweep.size_span"),
    "grid_collapses_to_one_shape": (dict(size_span=1.05), "sweep.size_span"),
    "unknown_optimum": (dict(optimum="guess"), "sweep.optimum"),
    "zero_ratio": (dict(optimum_tokens_per_param=0.0), "sweep.optimum_tokens_per_param"),
    "power_law_without_coefficient": (dict(optimum="power_law"), "sweep.optimum_coefficient"),
    "optimum_sizes_per_budget": (dict(optimum="sizes", optimum_sizes=(1e4,)),
                                 "sweep.optimum_sizes"),
    "ladder_key_in_isoflop": (dict(sizes=(1e4,)), "sweep.sizes"),
    "isoflop_key_in_ladder": (_ladder(size_span=4.0), "sweep.size_span"),
    "ladder_two_horizons": (_ladder(tokens=(1e6, 2e6)), "sweep.tokens"),
    "ladder_both_horizon_keys": (_ladder(tokens_per_param=(20.0,)), "sweep.tokens_per_param"),
    "ladder_no_sizes": (_ladder(sizes=()), "sweep.sizes"),
    "ladder_same_shape_twice": (_ladder(sizes=(1e4, 1e4)), "sweep.sizes"),
    "budget_below_smallest_model": (dict(budgets=(1e9,)), "sweep.budgets"),
    "ladder_below_smallest_model": (_ladder(sizes=(1e3, 1e4)), "sweep.sizes"),
    "ladder_below_one_step": (_ladder(tokens=(100.0,)), "sweep.tokens"),
    "curves_one_horizon": (_ladder(kind="curves"), "sweep.tokens"),
    "negative_batch": (dict(batch_size=-8), "sweep.batch_size"),
    "shapes_key_in_ladder": (_ladder(shapes=("lstm:32:1",)), "sweep.shapes"),
    "no_shapes": (_shapes(shapes=()), "sweep.shapes"),
    "shape_not_a_spec": (_shapes(shapes=("lstm:32",)), "sweep.shapes"),
    "shape_of_unknown_arch": (_shapes(shapes=("gru:32:1",)), "model.arch"),
    "shape_with_unknown_key": (_shapes(shapes=("lstm:32:1:widht=3",)), "model.widht"),
    "shape_bad_value": (_shapes(shapes=("transformer:30:1:n_heads=4",)), "model.n_heads"),
    "shape_twice": (_shapes(shapes=("lstm:32:1", "lstm:32:1:n_layers=1")), "same model"),
    "shape_unsafe_name": (_shapes(shapes=("transformer:32:1:norm=a/b",)), "run name"),
    "shapes_without_horizon": (_shapes(tokens=()), "sweep.tokens"),
    "shape_below_one_step": (_shapes(tokens=(100.0,)), "sweep.tokens"),
    "replicate_seed_not_an_integer": (dict(replicate_seeds=(1.5,)), "sweep.replicate_seeds"),
    "replicate_seed_is_the_base_seed": (dict(replicate_seeds=(0, 1)), "sweep.replicate_seeds"),
    "replicate_seed_twice": (dict(replicate_seeds=(1, 1)), "sweep.replicate_seeds"),
    "replicate_budget_not_planned": (dict(replicate_seeds=(1,), replicate_budgets=(3e11,)),
                                     "sweep.replicate_budgets"),
    "replicate_budgets_in_ladder": (_ladder(replicate_budgets=(1e11,)),
                                    "sweep.replicate_budgets"),
}


@pytest.mark.parametrize("sweep,named", BAD_SWEEPS.values(), ids=BAD_SWEEPS.keys())
def test_bad_sweep_config_names_the_key(sweep, named):
  config = isoflop_config()
  for key, value in sweep.items():
    config.sweep[key] = value
  with pytest.raises(InputError, match=re.escape(named)):
    plan_lib.build(config, "/sweep")


BAD_BASES = {
    "heads": ("model.n_heads", 3, "base.model.n_heads"),
    "fixed_mlp_width": ("model.d_ff", 96, "base.model.d_ff"),
    "seq_len": ("model.seq_len", 0, "base.model.seq_len"),
    "data_source": ("data.source", "web", "base.data.source"),
}


@pytest.mark.parametrize("key,value,named", BAD_BASES.values(), ids=BAD_BASES.keys())
def test_bad_base_config_names_the_base_key(key, value, named):
  config = isoflop_config()
  group, leaf = key.split(".")
  config.base[group][leaf] = value
  with pytest.raises(InputError, match=re.escape(named)):
    plan_lib.build(config, "/sweep")


def test_unknown_sweep_key_is_named():
  config = isoflop_config()
  config.sweep.budgts = (1e10,)
  with pytest.raises(InputError, match="sweep.budgts"):
    plan_lib.build(config, "/sweep")


def test_recipes_are_frozen_and_named():
  for name, recipe in recipe_lib.RECIPES.items():
    assert recipe.name == name
    with pytest.raises(dataclasses.FrozenInstanceError):
      recipe.batch_size = 1


def test_a_sweep_names_its_runs_and_groups_them_for_wandb():
  plan = plan_lib.build(isoflop_config(), "/sweeps/my-sweep/")
  assert [(r.config.wandb_name, r.config.wandb_group) for r in plan.runs] == [
      (r.name, "my-sweep") for r in plan.runs]
  config = isoflop_config()
  config.base.wandb_group = "ablation"
  assert {r.config.wandb_group for r in plan_lib.build(config, "/sweeps/my-sweep").runs} == {
      "ablation"}


@pytest.mark.parametrize("arch", ["lstm", "rnn"])
def test_a_recurrent_sweep_is_sized_by_its_own_counts(arch, text_corpus, tmp_path):
  """The plan counts a recurrent family as the trainer does (run.json), not as a Transformer."""
  import jax

  from scaling import rundir, storage
  from scaling.train import trainer

  config = sweep_config.defaults()
  config.base.model.arch, config.base.model.n_layers = arch, 1
  config.base.model.seq_len = 16
  config.base.eval_batches = 1
  config.base.progress = False
  config.base.data.source = "text"
  config.base.data.glob = text_corpus
  config.base.data.validation_percent = 20
  config.sweep.kind = "ladder"
  config.sweep.sizes = (3e3, 1.2e4)
  config.sweep.tokens = (2 * 16 * 16,)  # two steps of 16 sequences × 16 tokens
  plan = plan_lib.build(config, str(tmp_path))
  counts = models.get(arch).param_counts
  for run, summary in zip(plan.runs, plan.to_json()["runs"]):
    assert run.model.arch == arch and run.model.n_layers == 1  # the base depth, widened
    assert run.params_non_embedding == counts(run.model)["non_embedding"]
    assert abs(math.log(run.params_non_embedding / run.target_params)) < math.log(1.3)
    assert run.params_non_embedding != models.get("transformer").param_counts(
        models.ModelConfig(d_model=run.model.d_model, n_layers=1, n_heads=1))["non_embedding"]
    trainer.train(run.config, run.workdir, devices=jax.devices()[:1])
    recorded = storage.read_json(rundir.RunDir(run.workdir).run_file)
    assert (summary["params"], summary["params_non_embedding"]) == (
        run.params, run.params_non_embedding) == (
        recorded["params"], recorded["params_non_embedding"])


def _hparams(**sweep):
  config = sweep_config.defaults()
  config.base.model.seq_len = 32
  config.sweep.kind = "hparams"
  config.sweep.sizes = (1e4, 3e4)
  config.sweep.tokens_per_param = (10.0, 40.0)
  config.sweep.learning_rates = (0.5, 1.0, 2.0, 4.0)
  for key, value in sweep.items():
    config.sweep[key] = value
  return config


def test_hparams_trains_every_point_at_every_lr_and_batch():
  recipe = recipe_lib.get("cpu_tiny")
  plan = plan_lib.build(_hparams(), "/sweep")
  assert len(plan.runs) == 2 * 2 * 4
  for run in plan.runs:
    multiplier = float(re.search(r"_lr([0-9.]+)$", run.name).group(1))
    assert run.config.learning_rate == pytest.approx(
        multiplier * recipe.learning_rate(run.model.d_model))
    assert run.config.batch_size == recipe.batch_size
    assert run.config.warmup_steps == recipe.warmup_steps(run.steps)
  assert plan.runs[0].name == f"N{plan_lib.short_number(plan.runs[0].params_non_embedding)}_D" \
      f"{plan_lib.short_number(plan.runs[0].tokens)}_lr0.5"
  plan = plan_lib.build(_hparams(batch_sizes=(8, 32)), "/sweep")
  assert len(plan.runs) == 2 * 2 * 4 * 2
  for run in plan.runs:
    batch = int(run.name.rsplit("_b", 1)[1])
    assert run.config.batch_size == batch and run.tokens == run.steps * batch * 32
  # other kinds are one setting each, and cannot be given the grid
  with pytest.raises(InputError, match="sweep.learning_rates is set, but kind=ladder"):
    plan_lib.build(_hparams(kind="ladder", tokens_per_param=(10.0,)), "/sweep")
  for bad, match in (((1.0, 2.0), "at least 3 distinct"), ((1.0, 1.0, 2.0), "at least 3 distinct"),
                     ((0.5, -1.0, 2.0), r"learning_rates\[1\]")):
    with pytest.raises(InputError, match=match):
      plan_lib.build(_hparams(learning_rates=bad), "/sweep")
  with pytest.raises(InputError, match=r"sweep.batch_sizes\[0\]"):
    plan_lib.build(_hparams(batch_sizes=(0,)), "/sweep")


def test_hparams_with_3_learning_rates_needs_replicate_seeds():
  """The fit measures run noise from parabolas through more than 3 LRs, or from replicates."""
  with pytest.raises(InputError, match="3 learning rates and no sweep.replicate_seeds") as caught:
    plan_lib.build(_hparams(learning_rates=(0.5, 1.0, 2.0)), "/sweep")
  assert "\n" not in str(caught.value)
  plan = plan_lib.build(_hparams(learning_rates=(0.5, 1.0, 2.0), replicate_seeds=(1,)), "/sweep")
  assert len(plan.runs) == 2 * 2 * 3 * 2


def test_hparams_branches_give_each_setting_its_own_trunk():
  plan = plan_lib.build(_hparams(branches="cooldown"), "/sweep")
  assert len(plan.trunks) == 2 * 4
  assert {run.trunk for run in plan.runs} == {trunk.name for trunk in plan.trunks}
  for run in plan.runs:
    trunk = next(t for t in plan.trunks if t.name == run.trunk)
    assert trunk.config.learning_rate == run.config.learning_rate

"""Recipes: `sweep.recipe = "fitted:PATH"` sets each run's LR (and batch) from an hparams fit's laws."""

import json

import pytest

from scaling.errors import InputError
from scaling.sweep import config as sweep_config
from scaling.sweep import plan as plan_lib
from scaling.sweep import recipe as recipe_lib


def report(path, laws, recipe="cpu_tiny", n_column="params"):
  path.write_text(json.dumps({"approach": "hparams", "recipe": recipe, "inputs": {"N": n_column},
                              "laws": laws}))
  return f"fitted:{path}"


LR_ND = {"lr_opt(N,D)": {"coefficient": 2.0, "exponents": {"alpha": 0.3, "beta": 0.1},
                         "ci95": {}}}


def isoflop_config(recipe, **sweep):
  config = sweep_config.defaults()
  config.base.model.seq_len = 32
  config.sweep.recipe = recipe
  config.sweep.budgets = (1e11, 1e12)
  config.sweep.sizes_per_budget = 3
  config.sweep.optimum_tokens_per_param = 10.0
  for key, value in sweep.items():
    config.sweep[key] = value
  return config


def test_fitted_recipe_sets_the_lr_the_law_predicts(tmp_path):
  plan = plan_lib.build(isoflop_config(report(tmp_path / "fit.json", LR_ND)), "/sweep")
  base = recipe_lib.get("cpu_tiny")
  for run in plan.runs:
    law = 2.0 * run.params ** -0.3 * (run.budget / (run.flops / run.tokens)) ** -0.1
    assert run.config.learning_rate == pytest.approx(law, rel=1e-9)
    assert run.config.batch_size == base.batch_size
    assert run.config.warmup_steps == base.warmup_steps(run.steps)
    assert (run.lr_source, run.batch_source) == ("law lr_opt(N,D)", "recipe cpu_tiny")
  record = plan.to_json()
  assert record["recipe"]["name"].startswith("fitted:") and record["recipe"]["base"]["name"] == "cpu_tiny"
  assert record["runs"][0]["lr_source"] == "law lr_opt(N,D)"
  header = plan.table().splitlines()[0]
  assert "lr set by" in header and "law lr_opt(N,D)" in plan.table().splitlines()[1]
  # non-embedding N where the laws were fitted on it
  plan = plan_lib.build(isoflop_config(report(tmp_path / "ne.json", LR_ND,
                                              n_column="params_non_embedding")), "/sweep")
  run = plan.runs[0]
  assert run.config.learning_rate == pytest.approx(
      2.0 * run.params_non_embedding ** -0.3 * (run.budget / (run.flops / run.tokens)) ** -0.1)


def test_fitted_batch_law_sets_the_batch_unless_sweep_batch_size(tmp_path):
  laws = {"lr_opt(C)": {"coefficient": 0.5, "exponents": {"alpha": 0.1}},
          "batch_opt(C)": {"coefficient": 0.01, "exponents": {"beta": 0.25}}}
  spec = report(tmp_path / "fit.json", laws)
  plan = plan_lib.build(isoflop_config(spec), "/sweep")
  for run in plan.runs:
    assert run.config.batch_size == round(0.01 * run.budget**0.25)
    assert run.config.learning_rate == pytest.approx(0.5 * run.budget**-0.1)
    assert run.tokens == run.steps * run.config.batch_size * 32
    assert run.batch_source == "law batch_opt(C)" and run.lr_source == "law lr_opt(C)"
  plan = plan_lib.build(isoflop_config(spec, batch_size=8), "/sweep")
  assert {run.config.batch_size for run in plan.runs} == {8}
  assert plan.runs[0].batch_source == "sweep.batch_size"


@pytest.mark.parametrize("content, match", [
    (None, "does not exist"),
    ("{not json", "not a readable JSON report"),
    (json.dumps({"approach": "isoflop"}), "is not a report of `scaling fit --approach hparams`"),
    (json.dumps({"approach": "hparams", "recipe": "cpu_tiny", "laws": {}}),
     "no learning-rate law"),
    (json.dumps({"approach": "hparams", "recipe": "cpu_tiny", "laws": {
        "lr_opt(N,D)": {"coefficient": None, "exponents": {"alpha": 1, "beta": 1}}}}),
     "positive coefficient"),
    (json.dumps({"approach": "hparams", "recipe": None, "laws": LR_ND}), "base recipe"),
])
def test_bad_fitted_reports_are_one_line(tmp_path, content, match):
  path = tmp_path / "fit.json"
  if content is not None:
    path.write_text(content)
  with pytest.raises(InputError, match=match) as caught:
    plan_lib.build(isoflop_config(f"fitted:{path}"), "/sweep")
  assert "\n" not in str(caught.value) and "sweep.recipe" in str(caught.value)


def test_laws_of_compute_take_c_in_the_convention_they_were_fitted_in(tmp_path):
  """A law fitted on a sweep's 6n_total budgets, used by a chinchilla-convention plan, is evaluated
  at the run's C counted as 6n_total, not at the plan's budget (a different number of FLOPs)."""
  from scaling import models

  laws = {"lr_opt(C)": {"coefficient": 0.5, "exponents": {"alpha": 0.1}}}
  path = tmp_path / "fit.json"
  path.write_text(json.dumps({"approach": "hparams", "recipe": "cpu_tiny",
                              "inputs": {"N": "params", "C": "budget", "C_convention": "6n_total"},
                              "laws": laws}))
  plan = plan_lib.build(isoflop_config(f"fitted:{path}", flops_convention="chinchilla"), "/sweep")
  for run in plan.runs:
    planned_tokens = run.budget / (run.flops / run.tokens)
    c = models.get(run.model.arch).flops_per_token(run.model)["6n_total"] * planned_tokens
    assert c != pytest.approx(run.budget, rel=0.01)
    assert run.config.learning_rate == pytest.approx(0.5 * c**-0.1, rel=1e-9)
  path.write_text(json.dumps({"approach": "hparams", "recipe": "cpu_tiny",
                              "inputs": {"C_convention": "fortnights"}, "laws": laws}))
  with pytest.raises(InputError, match="C_convention 'fortnights' is not one of"):
    plan_lib.build(isoflop_config(f"fitted:{path}"), "/sweep")


def test_runs_outside_the_fitted_range_are_flagged_with_how_far(tmp_path):
  plan = plan_lib.build(isoflop_config(report(tmp_path / "all.json", LR_ND)), "/sweep")
  n = sorted(run.params for run in plan.runs)
  d = sorted(run.budget / (run.flops / run.tokens) for run in plan.runs)
  # fitted through the middle sizes and every horizon: the smallest and largest N are outside
  laws = {"lr_opt(N,D)": {**LR_ND["lr_opt(N,D)"], "range": {"N": [n[1], n[-2]], "D": [d[0], d[-1]]}}}
  plan = plan_lib.build(isoflop_config(report(tmp_path / "fit.json", laws)), "/sweep")
  out = {run.name: run for run in plan.runs if run.params in (n[0], n[-1])}
  assert out and all(run.extrapolation for run in out.values())
  for run in plan.runs:
    assert bool(run.extrapolation) == (run.name in out)
    record = run.summary()
    assert record["extrapolated"] == (run.name in out)
    if run.params == n[-1]:
      assert record["extrapolation"] == {"lr_opt(N,D)": {"N": pytest.approx(n[-1] / n[-2])}}
  warning = next(line for line in plan.table().splitlines() if line.startswith("warning:"))
  assert f"{len(out)} of {len(plan.runs)} runs" in warning
  assert all(name in warning for name in out)
  assert f"lr_opt(N,D) N {n[-1] / n[-2]:.3g}x above" in warning
  assert f"lr_opt(N,D) N {n[1] / n[0]:.3g}x below" in warning
  # a law of C: its range in C, the batch law's too
  budgets = sorted({run.budget for run in plan.runs})
  laws = {"lr_opt(C)": {"coefficient": 0.5, "exponents": {"alpha": 0.1},
                        "range": {"C": [budgets[0], budgets[0]]}},
          "batch_opt(C)": {"coefficient": 0.01, "exponents": {"beta": 0.25},
                           "range": {"C": [budgets[0] / 10, budgets[-1]]}}}
  plan = plan_lib.build(isoflop_config(report(tmp_path / "c.json", laws)), "/sweep")
  for run in plan.runs:
    assert run.extrapolation == ({"lr_opt(C)": {"C": pytest.approx(run.budget / budgets[0])}}
                                 if run.budget == budgets[-1] else {})


def test_a_report_without_ranges_says_extrapolation_is_unchecked(tmp_path):
  plan = plan_lib.build(isoflop_config(report(tmp_path / "fit.json", LR_ND)), "/sweep")
  assert "extrapolation is not checked" in plan.table()
  assert not any(run.summary()["extrapolated"] for run in plan.runs)


def test_the_lr_law_can_be_chosen_after_a_hash(tmp_path):
  laws = {**LR_ND, "lr_opt(C)": {"coefficient": 0.5, "exponents": {"alpha": 0.1}}}
  spec = report(tmp_path / "fit.json", laws)
  default = plan_lib.build(isoflop_config(spec), "/sweep")
  assert {run.lr_source for run in default.runs} == {"law lr_opt(N,D)"}
  plan = plan_lib.build(isoflop_config(spec + "#lr_opt(C)"), "/sweep")
  for run in plan.runs:
    assert run.lr_source == "law lr_opt(C)"
    assert run.config.learning_rate == pytest.approx(0.5 * run.budget**-0.1, rel=1e-9)
  explicit = plan_lib.build(isoflop_config(spec + "#lr_opt(N,D)"), "/sweep")
  assert [r.config.learning_rate for r in explicit.runs] == [
      r.config.learning_rate for r in default.runs]
  for suffix, match in (("#lr_opt(D)", r"'#lr_opt\(D\)' is not a learning-rate law"),
                        ("#", "'#' is not a learning-rate law")):
    with pytest.raises(InputError, match=match) as caught:
      plan_lib.build(isoflop_config(spec + suffix), "/sweep")
    assert "\n" not in str(caught.value)
  only_nd = report(tmp_path / "nd.json", LR_ND)
  with pytest.raises(InputError, match=r"has no law lr_opt\(C\) \(it has lr_opt\(N,D\)\)"):
    plan_lib.build(isoflop_config(only_nd + "#lr_opt(C)"), "/sweep")

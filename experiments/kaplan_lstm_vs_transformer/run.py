"""Trains the runs of a Kaplan Fig. 7 config one after another, then draws the figure.

Each run lives in WORKDIR/runs/ARCH_dD_lL (a `scaling train` workdir: rerunning resumes unfinished
runs and skips finished ones); the figure goes to WORKDIR/figures and the table of final losses to
WORKDIR/summary.csv.

  python experiments/kaplan_lstm_vs_transformer/run.py --config experiments/kaplan_lstm_vs_transformer/cpu.py --workdir runs/kaplan_lstm
"""

import ast
import copy
import csv
import os
import sys
import time

from scaling import config_file, models
from scaling.errors import InputError
from scaling.plots import context
from scaling.sweep.recipe import RECIPES
from scaling.train import config as config_lib
from scaling.train import trainer

PROG = "kaplan_lstm_vs_transformer/run.py"


def _value(text: str):
  """'2' -> 2, '0.5' -> 0.5, 'True' -> True, 'rotary' -> 'rotary'."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse_run(spec: str) -> tuple[str, dict]:
  """'transformer:32:2:position=rotary' -> ('transformer_d32_l2_rotary', {model keys})."""
  arch, *fields = spec.split(":")
  try:
    d_model, n_layers = int(fields[0]), int(fields[1])
    extra = {key: _value(value) for key, value in (field.split("=", 1) for field in fields[2:])}
  except (IndexError, ValueError):
    raise InputError(f"runs: {spec!r} is not ARCH:D_MODEL:N_LAYERS[:MODEL_KEY=VALUE...]") from None
  name = "_".join([arch, f"d{d_model}", f"l{n_layers}", *map(str, extra.values())])
  return name, {"arch": arch, "d_model": d_model, "n_layers": n_layers, **extra}


def label(spec: str) -> str:
  """What the figure calls a run's family: 'lstm', 'transformer (position=rotary)'."""
  arch, _, _, *extra = spec.split(":")
  return f"{arch} ({', '.join(extra)})" if extra else arch


def run_configs(config) -> dict:
  """Run name -> its full train config (the recipe sets the learning rate and warmup)."""
  if config.recipe not in RECIPES:
    raise InputError(f"recipe must be one of {', '.join(RECIPES)}, got {config.recipe!r}")
  recipe = RECIPES[config.recipe]
  out = {}
  for spec in config.runs:
    name, model = parse_run(spec)
    run = copy.deepcopy(config.base)
    for key, value in model.items():
      if key not in run.model:
        raise InputError(f"runs: {spec!r}: model.{key} is not a model key")
      run.model[key] = value
    # `base` serves every family: the keys this run's family does not read go back to defaults.
    family_keys = models.get(run.model.arch).config.key_names()
    for key, default in config_lib.defaults().model.items():
      if key not in family_keys:
        run.model[key] = default
    run.warmup_steps = 0  # set from the run's length below
    steps = config_lib.validate(run, vocab_size=256).train_steps  # vocab does not change the length
    run.learning_rate = recipe.learning_rate(run.model.d_model)
    run.warmup_steps = recipe.warmup_steps(steps)
    config_lib.validate(run, vocab_size=256)  # every run checked before the first one trains
    out[name] = run
  return out


def main(argv: list[str]) -> int:
  try:
    config, workdir = config_file.load(argv, prog=PROG, reference="experiments/kaplan_lstm_vs_transformer/cpu.py")
    runs = run_configs(config)
    started = time.perf_counter()
    for name, run in runs.items():
      print(f"{name}: training", flush=True)
      last = trainer.train(run, os.path.join(workdir, "runs", name))
      if last.get("preempted"):
        return 0
    finals = [context.final_by_position(os.path.join(workdir, "runs", name)) for name in runs]
    paths = context.architectures([os.path.join(workdir, "runs", name) for name in runs],
                                  os.path.join(workdir, "figures"), bins=config.position_bins,
                                  labels=[label(spec) for spec in config.runs])
  except InputError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  with open(os.path.join(workdir, "summary.csv"), "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["run", "family", "params_non_embedding", "eval_loss", "loss_position_1",
                     "loss_positions_2_16", "loss_positions_17_64", "loss_positions_65_plus"])
    for name, spec, final in zip(runs, config.runs, finals):
      loss_L = final["eval_loss_by_position"]
      row = [name, label(spec), int(final["params_non_embedding"]), final["eval_loss"], loss_L[0],
             loss_L[1:16].mean(), loss_L[16:64].mean(), loss_L[64:].mean()]
      writer.writerow([f"{v:.4f}" if isinstance(v, float) else v for v in row])
      print("  ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
  print(f"{len(runs)} runs in {time.perf_counter() - started:.0f} s; figure: {paths[0]}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))

"""The rules table shards every family without XLA replicating a tensor to reshard it, and a run
remaps logical axes by `mesh.rules`, an override checked with the mesh and recorded in run.json."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from scaling import cli
from scaling.launch import local
from scaling.parallel import rules
from scaling.train import trainer
from small_runs import losses, small_config

TINY = str(pathlib.Path(__file__).resolve().parents[2] / "configs" / "tiny.py")

# One train step of each family on the README's data=2, fsdp=2, tensor=2 mesh, in a fresh process
# (XLA warns when it compiles, once per program), printing XLA's warnings on stderr.
SCRIPT = """
import sys
import jax, jax.numpy as jnp
from scaling.parallel import mesh as mesh_lib
from scaling.train import config as config_lib, state as state_lib
for arch in sys.argv[1:]:
  config = config_lib.defaults()
  config.model.arch, config.model.d_model, config.model.seq_len = arch, 32, 16
  config.batch_size, config.train_steps = 8, 2
  cfg = config_lib.validate(config, vocab_size=256)
  mesh = mesh_lib.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
  steps = state_lib.build(cfg, mesh)
  batch = jax.device_put(jnp.zeros((8, 17), jnp.int32), steps.batch_sharding)
  state, metrics, _ = steps.train(steps.init(), batch, steps.no_bad_step())
  steps.eval(state, batch)
  print(arch, float(metrics["loss"]))
"""


@pytest.mark.parametrize("archs", [("transformer", "lstm")], ids=["transformer_lstm"])
def test_no_involuntary_full_rematerialization_on_a_2x2x2_mesh(archs):
  env = local.child_env(os.environ, 8)
  done = subprocess.run([sys.executable, "-c", SCRIPT, *archs], env=env, capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  assert [line.split()[0] for line in done.stdout.splitlines()] == list(archs)
  assert "Involuntary full rematerialization" not in done.stderr, done.stderr[-2000:]


def test_an_override_replaces_only_the_entries_it_names():
  table = dict(rules.table(rules.parse(" embed=tensor, batch=data+fsdp ,heads=none")))
  assert table == {**dict(rules.RULES), "embed": "tensor", "batch": ("data", "fsdp"), "heads": None}
  assert rules.table(rules.parse("")) == rules.RULES


# Model and tensor axes swapped, the batch over data × tensor: a layout no default resembles.
SWAPPED = "batch=data+tensor,embed=tensor,heads=fsdp,mlp=fsdp,vocab=fsdp"


def three_steps_on_2x2x2(text_corpus, rules_text: str):
  return small_config(text_corpus, **{
      "mesh.data": 2, "mesh.fsdp": 2, "mesh.tensor": 2, "mesh.rules": rules_text,
      "train_steps": 3, "warmup_steps": 1, "eval_batches": 1})


@pytest.fixture(scope="module")
def swapped_run(text_corpus, tmp_path_factory) -> str:
  workdir = str(tmp_path_factory.mktemp("swapped"))
  trainer.train(three_steps_on_2x2x2(text_corpus, SWAPPED), workdir)
  return workdir


def test_a_run_shards_its_parameters_as_its_override_says_and_records_it(swapped_run, text_corpus,
                                                                         tmp_path):
  with open(os.path.join(swapped_run, "run.json")) as f:
    assert json.load(f)["config"]["mesh"]["rules"] == SWAPPED
  config = three_steps_on_2x2x2(text_corpus, SWAPPED)
  model = trainer.prepare(config, str(tmp_path / "fresh")).steps.init()[0]
  assert model["blocks"][0]["mlp"]["w_gate_up"][...].sharding.spec == P("tensor", None, "fsdp")
  assert model["embedding"][...].sharding.spec == P("fsdp", "tensor")


def test_remapped_axes_give_the_default_layouts_losses(swapped_run, text_corpus, tmp_path):
  trainer.train(three_steps_on_2x2x2(text_corpus, ""), str(tmp_path / "default"))
  np.testing.assert_allclose(losses(swapped_run), losses(tmp_path / "default"), rtol=1e-4)


BAD_RULES = {
    "unknown_logical_axis": (["embd=tensor"], "'embd' is not a logical axis"),
    "unknown_mesh_axis": (["embed=tensr"], "'tensr' is not a mesh axis"),
    "not_an_assignment": (["embed"], "LOGICAL_AXIS=MESH_AXES"),
    "a_logical_axis_twice": (["embed=fsdp,embed=tensor"], "names embed twice"),
    "a_mesh_axis_twice_in_one_rule": (["batch=data+data"], "names a mesh axis twice"),
    "an_activation_split_twice_over_one_axis": (["act_embed=fsdp"], "twice over mesh.fsdp"),
    "a_parameter_split_twice_over_one_axis": (["embed=tensor"], "twice over mesh.tensor"),
    "a_remapped_axis_not_dividing_its_mesh_axes": (
        ["batch=data,heads=fsdp,embed=none", "--config.mesh.data=1", "--config.mesh.fsdp=8"],
        "model.n_heads=4 is not divisible by mesh.fsdp=8"),
}


@pytest.mark.parametrize("args,named", BAD_RULES.values(), ids=BAD_RULES.keys())
def test_a_bad_override_is_one_line_exit_2_nothing_written(args, named, text_corpus, tmp_path,
                                                           capsys):
  workdir = tmp_path / "run"
  code = cli.main(["train", "--config", TINY, "--workdir", str(workdir),
                   f"--config.mesh.rules={args[0]}", *args[1:], "--config.data.source=text",
                   f"--config.data.glob={text_corpus}", "--config.data.validation_percent=20"])
  err = capsys.readouterr().err
  assert code == 2
  assert err.startswith("error: ") and err.count("\n") == 1, err
  assert named in err, err
  assert not workdir.exists()

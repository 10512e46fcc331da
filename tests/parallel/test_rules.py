"""The rules table shards every family without XLA replicating a tensor to reshard it."""

import os
import subprocess
import sys

import pytest

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
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
  done = subprocess.run([sys.executable, "-c", SCRIPT, *archs], env=env, capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  assert [line.split()[0] for line in done.stdout.splitlines()] == list(archs)
  assert "Involuntary full rematerialization" not in done.stderr, done.stderr[-2000:]

"""A run that did its work exits 0: the evaluation that aborted `scaling sweep` (exit 134) holds.

`scaling sweep` exited 134 (SIGABRT) in 2 of ~25 one-run tiny sweeps on 2 simulated devices: its
64 evaluation batches, dispatched without a host read, filled XLA:CPU's queue and deadlocked an
FSDP all-gather until XLA aborted the process (scaling/parallel/pacing.py). Here the same
evaluation runs 30 times in a child process, so an abort fails the test instead of killing pytest.
A process per repetition would cost a JAX start and a compile each (40-85 s a `scaling train` on
this 2-core machine at load 23-30); the deadlock is in the evaluation, which the child repeats.
"""

import os
import subprocess
import sys

REPEATS = 30

EVALUATE = """
import sys
import jax
from scaling import data
from scaling.train import hooks, trainer
from scaling.train.config import defaults

config = defaults()
for key, value in {"model.d_model": 32, "model.n_layers": 1, "model.n_heads": 2,
                   "model.seq_len": 64, "batch_size": 16, "eval_batches": 64, "mesh.data": 1,
                   "mesh.fsdp": 2, "data.source": "text", "data.glob": sys.argv[1],
                   "data.validation_percent": 30}.items():
  *groups, leaf = key.split(".")
  (config[groups[0]] if groups else config)[leaf] = value
steps = (prepared := trainer.prepare(config, sys.argv[2])).steps
batches = [jax.make_array_from_process_local_data(steps.batch_sharding, b)
           for b in data.iterate_from(prepared.eval_data, 0)]
evaluator = hooks.Evaluator(steps, batches, False, prepared.corpus.tokenizer.bytes_per_token())
info = hooks.StepInfo(0, steps.init(), {})
for _ in range(int(sys.argv[3])):
  print(float(evaluator.on_eval(info)["eval_loss"]), flush=True)
"""


def test_sixty_four_eval_batches_on_two_fsdp_devices_finish_every_time(text_corpus, tmp_path):
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  result = subprocess.run(
      [sys.executable, "-c", EVALUATE, text_corpus, str(tmp_path / "run"), str(REPEATS)],
      env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  losses = result.stdout.split()
  assert len(losses) == REPEATS and len(set(losses)) == 1

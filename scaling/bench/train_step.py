"""The trainer's own train step, timed: built by `state.build` on the configured mesh, exactly as
`scaling train` builds it, fed one synthetic batch that stays on the device (no data loading)."""

import contextlib
import time

import jax
import numpy as np
from flax import nnx

from scaling.train import state as state_lib
from scaling.train.config import TrainConfig

# The durations JAX reports (jax.monitoring) while it turns a jitted call into an executable.
COMPILE_EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "xla",
}


@contextlib.contextmanager
def compile_seconds():
  """Sums, by stage, the compilation work JAX does inside the block: {"trace", "lower", "xla"}.

  `Steps.train` is jitted inside `state.build`, so its first call is where it compiles; listening to
  JAX's own events separates that from the first execution without rebuilding the step.
  """
  seconds = dict.fromkeys(COMPILE_EVENTS.values(), 0.0)

  def listen(event, duration, **kwargs):
    del kwargs
    if event in COMPILE_EVENTS:
      seconds[COMPILE_EVENTS[event]] += duration

  jax.monitoring.register_event_duration_secs_listener(listen)
  try:
    yield seconds
  finally:
    jax.monitoring.unregister_event_duration_listener(listen)


class TrainStep:
  """Sharded state from `Steps.init` and one batch on the mesh; `compile` runs (and times) step one."""

  def __init__(self, cfg: TrainConfig, mesh, batch_BxL1: np.ndarray):
    self.steps = state_lib.build(cfg, mesh)
    self.state = self.steps.init()
    self.batch_BxL1 = jax.make_array_from_process_local_data(self.steps.batch_sharding, batch_BxL1)
    self.first_bad = self.steps.no_bad_step()
    self.dispatch_s = []  # per step: until the call returned, before its results are ready
    jax.block_until_ready((self.state, self.batch_BxL1, self.first_bad))

  def params(self) -> dict:
    """The model's current parameters on the host, as nested dicts of numpy arrays."""
    return jax.device_get(nnx.to_pure_dict(self.state[0]))

  def compile(self) -> dict:
    """Runs one step from cold caches: {"compile_s": {"trace", "lower", "xla", "total"},
    "first_step_s", "loss"}. Clearing JAX's in-memory caches makes a repeat compile again."""
    jax.clear_caches()
    start = time.perf_counter()
    with compile_seconds() as seconds:
      loss = float(self.step()["loss"])
    return {"compile_s": {**seconds, "total": sum(seconds.values())},
            "first_step_s": time.perf_counter() - start, "loss": loss}

  def step(self) -> dict:
    """One update, waited for: the state is donated and replaced, as in the training loop."""
    start = time.perf_counter()
    self.state, metrics, self.first_bad = self.steps.train(self.state, self.batch_BxL1, self.first_bad)
    self.dispatch_s.append(time.perf_counter() - start)
    return jax.block_until_ready((self.state, metrics))[1]

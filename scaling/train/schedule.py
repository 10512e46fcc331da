"""Learning-rate schedules: cosine (Hoffmann et al. 2022) or warmup-stable-decay (Hägele et al. 2024).

wsd ("warmup-stable-decay"): linear warmup from 0, the peak held constant, then a cooldown over the
last `decay_fraction` of the run to min_lr_ratio × peak. Hägele et al. 2024 ("Scaling Laws and
Compute-Optimal Training Beyond Fixed Training Durations", arXiv 2405.18392, sec. 3) find a ~20 %
cooldown of shape 1 − sqrt matches cosine at every length, so runs of one model at several lengths
can share the constant part and differ only in their cooldowns (a branching sweep, docs/sweeps.md).
Up to the decay start a wsd schedule does not depend on the run's length: runs that share a warmup
see bitwise the same learning rates there.
"""

import jax.numpy as jnp
import optax

SCHEDULES = ("cosine", "wsd")
DECAY_SHAPES = ("linear", "sqrt")


def decay_start(train_steps: int, decay_fraction: float) -> int:
  """The first step of a wsd run's cooldown (its last round(decay_fraction × steps) steps), which
  is also where a branch of a shared trunk forks off it."""
  return train_steps - round(decay_fraction * train_steps)


def _cooldown(peak: float, end: float, steps: int, shape: str) -> optax.Schedule:
  """From peak to end over `steps`: linearly, or as 1 − sqrt(t / steps) (Hägele et al. eq. 1)."""
  if shape == "linear":
    return optax.linear_schedule(peak, end, max(steps, 1))

  def schedule(count):
    progress = jnp.clip(count / max(steps, 1), 0.0, 1.0)
    return end + (peak - end) * (1.0 - jnp.sqrt(progress))

  return schedule


def learning_rate(*, schedule: str, peak: float, train_steps: int, warmup_steps: int,
                  min_lr_ratio: float, decay_fraction: float = 0.2,
                  decay_shape: str = "sqrt") -> optax.Schedule:
  """The run's learning rate at each optimizer step (optax's count, from 0)."""
  end = peak * min_lr_ratio
  if schedule == "cosine":  # linear warmup, cosine decay to `end` at the planned last step
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=peak, warmup_steps=warmup_steps, decay_steps=train_steps,
        end_value=end)
  start = decay_start(train_steps, decay_fraction)
  return optax.join_schedules(
      [optax.linear_schedule(0.0, peak, warmup_steps) if warmup_steps else optax.constant_schedule(peak),
       optax.constant_schedule(peak),
       _cooldown(peak, end, train_steps - start, decay_shape)],
      boundaries=[warmup_steps, start])

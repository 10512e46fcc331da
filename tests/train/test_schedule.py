"""Tests scaling/train/schedule.py: the learning rates of cosine and warmup-stable-decay runs."""

import math

import numpy as np
import pytest

from scaling.train import schedule


def _wsd(shape, **kwargs):
  values = dict(schedule="wsd", peak=1e-3, train_steps=100, warmup_steps=10, min_lr_ratio=0.1,
                decay_fraction=0.2, decay_shape=shape)
  return schedule.learning_rate(**{**values, **kwargs})


@pytest.mark.parametrize("shape", ["sqrt", "linear"])
def test_wsd_warms_up_holds_the_peak_then_cools_down_to_the_minimum(shape):
  lr = _wsd(shape)
  assert float(lr(0)) == 0.0
  assert float(lr(5)) == pytest.approx(0.5e-3)
  assert float(lr(10)) == pytest.approx(1e-3)  # warmup end: the peak
  assert float(lr(79)) == pytest.approx(1e-3)  # held to the decay start ...
  assert schedule.decay_start(100, 0.2) == 80
  assert float(lr(80)) == pytest.approx(1e-3)  # ... where the cooldown starts from the peak
  assert float(lr(100)) == pytest.approx(1e-4)  # the end: min_lr_ratio × peak
  halfway = 1e-4 + 0.9e-3 * (1 - (math.sqrt(0.5) if shape == "sqrt" else 0.5))
  assert float(lr(90)) == pytest.approx(halfway)


def test_the_1_minus_sqrt_cooldown_drops_faster_than_the_linear_one_early_on():
  assert float(_wsd("sqrt")(82)) < float(_wsd("linear")(82))


def test_wsd_runs_of_different_lengths_share_every_learning_rate_before_the_shorter_decays():
  steps = np.arange(80)
  short, long = _wsd("sqrt")(steps), _wsd("sqrt", train_steps=400)(steps)
  trunk = _wsd("sqrt", train_steps=320, decay_fraction=0.0)(np.arange(320))
  np.testing.assert_array_equal(np.asarray(short), np.asarray(long))
  np.testing.assert_array_equal(np.asarray(trunk[:80]), np.asarray(short))
  assert float(trunk[-1]) == pytest.approx(1e-3)  # a decay_fraction of 0 never decays: a trunk's constant LR


def test_cosine_is_the_default_schedule_unchanged():
  lr = schedule.learning_rate(schedule="cosine", peak=1e-3, train_steps=100, warmup_steps=10,
                              min_lr_ratio=0.1)
  assert float(lr(10)) == pytest.approx(1e-3)
  assert float(lr(100)) == pytest.approx(1e-4)

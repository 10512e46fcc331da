"""Resource specs: cpu/gpu counts, TPU slice types as hosts × chips, by run size, and bad ones."""

import pytest

from scaling.errors import InputError
from scaling.sweep import resources
from scaling.sweep.config import defaults


@pytest.mark.parametrize("text,kind,hosts,chips", [
    ("cpu:2", "cpu", 1, 0), ("gpu:1", "gpu", 1, 0),
    ("v4-8", "tpu", 1, 4), ("v4-16", "tpu", 2, 4), ("v4-32", "tpu", 4, 4),
    ("v5p-16", "tpu", 2, 4), ("v5litepod-8", "tpu", 1, 8), ("v5litepod-16", "tpu", 4, 4),
    ("v6e-4", "tpu", 1, 4), ("v6e-256", "tpu", 64, 4), ("v3-32", "tpu", 4, 4),
])
def test_specs(text, kind, hosts, chips):
  spec = resources.parse(text)
  assert (spec.kind, spec.hosts, spec.chips_per_host) == (kind, hosts, chips)
  if kind == "tpu":
    assert spec.head_resource == f"TPU-{text}-head"


def test_runs_take_the_first_spec_that_covers_their_size():
  value = ("1e4=cpu:1", "1e6=gpu:1", "v4-16")
  assert [resources.for_size(value, n).text for n in (10_000, 10_001, 10**6, 10**9)] == [
      "cpu:1", "gpu:1", "gpu:1", "v4-16"]
  with pytest.raises(InputError, match="no entry covers N=20,000"):
    resources.for_size(("1e4=cpu:1",), 20_000)


@pytest.mark.parametrize("value,named", [
    (("cpu:0",), "not a resource spec"), (("tpu-8",), "not a resource spec"),
    (("v5litepod-10",), "whole 4-chip hosts"), ("cpu:1", "tuple of specs"),
    (("cpu:1", "1e6=gpu:1"), "only the last entry"), (("1e6=gpu:1", "1e4=cpu:1"), "increasing"),
    (("x=gpu:1",), "MAX_N must be a positive number"), ((1,), "entries are strings"),
])
def test_bad_specs_are_input_errors(value, named):
  with pytest.raises(InputError, match=named):
    resources.specs_by_size(value)


@pytest.mark.parametrize("key,value", [("preemption_retries", -1), ("failure_retries", -2),
                                       ("lease_seconds", 0.0)])
def test_bad_retry_and_lease_keys_are_input_errors(key, value):
  sweep = defaults().sweep
  sweep[key] = value
  with pytest.raises(InputError, match=f"sweep.{key}"):
    resources.check(sweep, [1000])

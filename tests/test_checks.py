"""One wording for bad numbers everywhere: the key, what it must be, and the value given."""

import math

import numpy as np
import pytest

from scaling import checks
from scaling.errors import InputError


@pytest.mark.parametrize("value,bounds,says", [
    (0, dict(integer=True, above=0), "n must be an integer ≥ 1, got 0"),
    (True, dict(integer=True, at_least=0), "n must be an integer ≥ 0, got True"),
    (2.0, dict(integer=True, at_least=0), "n must be an integer ≥ 0, got 2"),
    (0.0, dict(above=0), "n must be positive, got 0"),
    (math.nan, dict(at_least=0), "n must be a number ≥ 0, got nan"),
    (math.inf, dict(), "n must be a number, got inf"),
    (1.0, dict(at_least=0, below=1), "n must be a number in [0, 1), got 1"),
    (11, dict(integer=True, above=0, at_most=10), "n must be an integer in [1, 10], got 11"),
    ("3", dict(at_most=5), "n must be a number ≤ 5, got '3'"),
])
def test_a_bad_number_names_the_key_the_bounds_and_the_value(value, bounds, says):
  with pytest.raises(InputError) as error:
    checks.number(value, "n", **bounds)
  assert str(error.value) == says


def test_good_numbers_pass_through_unchanged():
  assert checks.number(3, "n", integer=True, above=0, at_most=3) == 3
  assert checks.number(0.5, "n", at_least=0, below=1) == 0.5
  assert checks.number(np.float32(2.0), "n", above=0) == 2.0


def test_tuples_and_arrays_name_the_bad_element():
  assert checks.positive_numbers((1, 2.5), "sizes") == (1.0, 2.5)
  with pytest.raises(InputError, match=r"^sizes\[1\] must be positive, got -2$"):
    checks.positive_numbers((1, -2.0), "sizes")
  with pytest.raises(InputError, match="non-empty tuple"):
    checks.positive_numbers((), "sizes")
  with pytest.raises(InputError, match=r"^loss\[2\] = nan: values must be finite and positive$"):
    checks.positive_array([1.0, 2.0, math.nan], "loss")


def test_choices_and_booleans():
  assert checks.one_of("a", "k", ("a", "b")) == "a"
  with pytest.raises(InputError, match="^k must be one of a, b, got 'c'$"):
    checks.one_of("c", "k", ("a", "b"))
  with pytest.raises(InputError, match="^k must be true or false, got 1$"):
    checks.boolean(1, "k")


def test_a_dataclass_from_a_mapping_names_an_unknown_key():
  import dataclasses

  @dataclasses.dataclass(frozen=True)
  class Point:
    x: int = 0
    y: int = 0

  assert checks.dataclass_from(Point, {"y": 2}, "point") == Point(0, 2)
  with pytest.raises(InputError, match=r"^point.z is not a known key \(known: x, y\)$"):
    checks.dataclass_from(Point, {"z": 1}, "point")

"""Checks of user-given values, worded the same everywhere: "batch_size must be an integer in
[1, 2147483647], got -4".

Configs, CSV points and fit inputs refuse the same things: booleans (True is an int in Python),
NaN and infinities, and values out of range; each message names the key and the value, so a bad
input is one line (`InputError`) that says what to change. Free of JAX so config checks stay light.
"""

import dataclasses
import math
import numbers

import numpy as np

from scaling.errors import InputError


def _shown(value) -> str:
  return f"{value:g}" if isinstance(value, float) else repr(value)


def _requirement(integer: bool, at_least, above, at_most, below) -> str:
  """'positive', 'a number ≥ 0', 'an integer in [1, 10]', 'a number in [0, 1)'."""
  if not integer and above == 0 and at_least is None and at_most is None and below is None:
    return "positive"
  noun = "an integer" if integer else "a number"
  low = (f"[{_shown(at_least)}" if at_least is not None else
         f"({_shown(above)}" if above is not None else None)
  high = (f"{_shown(at_most)}]" if at_most is not None else
          f"{_shown(below)})" if below is not None else None)
  if low and high:
    return f"{noun} in {low}, {high}"
  if low:
    return f"{noun} {'≥' if low[0] == '[' else '>'} {low[1:]}"
  if high:
    return f"{noun} {'≤' if high[-1] == ']' else '<'} {high[:-1]}"
  return noun


def number(value, key: str, *, integer: bool = False, at_least=None, above=None, at_most=None,
           below=None):
  """`value` if it is a finite number (an integer when `integer`) within the bounds given, else an
  InputError naming `key`. An integer's strict bound becomes an inclusive one (> 0 reads ≥ 1)."""
  if integer and above is not None:
    at_least, above = math.floor(above) + 1, None
  if integer and below is not None:
    at_most, below = math.ceil(below) - 1, None
  kind = numbers.Integral if integer else numbers.Real
  ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
  if ok:
    ok = ((at_least is None or value >= at_least) and (above is None or value > above)
          and (at_most is None or value <= at_most) and (below is None or value < below))
  if not ok:
    raise InputError(f"{key} must be {_requirement(integer, at_least, above, at_most, below)}, "
                     f"got {_shown(value)}")
  return value


def positive_numbers(values, key: str) -> tuple[float, ...]:
  """A non-empty tuple (or list) of positive, finite numbers, as floats; `key[i]` names a bad one."""
  if not isinstance(values, (tuple, list)) or not values:
    raise InputError(f"{key} must be a non-empty tuple of positive numbers, got {values!r}")
  return tuple(float(number(v, f"{key}[{i}]", above=0)) for i, v in enumerate(values))


def positive_array(values, key: str) -> np.ndarray:
  """A non-empty 1-D float64 array of finite, positive values; the first bad one is named."""
  values = np.asarray(values, dtype=np.float64)
  if values.ndim != 1 or values.size == 0:
    raise InputError(f"{key}: expected a non-empty 1-D array, got shape {values.shape}")
  bad = ~np.isfinite(values) | (values <= 0)
  if bad.any():
    i = int(np.argmax(bad))
    raise InputError(f"{key}[{i}] = {values[i]}: values must be finite and positive")
  return values


def boolean(value, key: str) -> bool:
  if not isinstance(value, bool):
    raise InputError(f"{key} must be true or false, got {value!r}")
  return value


def one_of(value, key: str, allowed) -> str:
  if value not in allowed:
    raise InputError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
  return value


def dataclass_from(cls, values, group: str):
  """`cls(**values)` for a dataclass and a mapping (e.g. `config.model`), naming a key `cls` does
  not have as `group.key`: a typo in a config must not become a TypeError or a silent no-op."""
  known = {field.name for field in dataclasses.fields(cls)}
  values = dict(values)
  for key in values:
    if key not in known:
      raise InputError(f"{group}.{key} is not a known key (known: {', '.join(sorted(known))})")
  return cls(**values)

"""One error type for bad input, so every entry point can answer it the same way.

Anything a user can get wrong (a config key, a CLI argument, a data file) raises `InputError` with a
message that names the offending key, argument or file. The CLI prints it as one line and exits 2;
nothing else should be caught and reworded.
"""

import argparse


class InputError(ValueError):
  """Bad user input: the message is printed as one line, exit code 2."""


def first_line(error: BaseException, *, with_type: bool = False) -> str:
  """An exception's message cut to its first line (its type's name when it has none): what a
  one-line error quotes of a library's multi-line exception.

  `with_type` prefixes the type's name (`OSError: ...`), as a run's failure reason, read without
  its traceback, needs; an InputError's message names the problem itself and is never prefixed.
  """
  lines = str(error).strip().splitlines()
  if not lines:
    return type(error).__name__
  if with_type and not isinstance(error, InputError):
    return f"{type(error).__name__}: {lines[0]}"
  return lines[0]


class ArgumentParser(argparse.ArgumentParser):
  """argparse that reports a bad argument as an InputError (one line) instead of usage + exit."""

  def error(self, message):
    raise InputError(f"{self.prog}: {message}")

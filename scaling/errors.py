"""One error type for bad input, so every entry point can answer it the same way.

Anything a user can get wrong (a config key, a CLI argument, a data file) raises `InputError` with a
message that names the offending key, argument or file. The CLI prints it as one line and exits 2;
nothing else should be caught and reworded.
"""

import argparse


class InputError(ValueError):
  """Bad user input: the message is printed as one line, exit code 2."""


def first_line(error: BaseException) -> str:
  """An exception's message cut to its first line (its type's name when it has none): what a
  one-line error quotes of a library's multi-line exception."""
  return (str(error).strip().splitlines() or [type(error).__name__])[0]


class ArgumentParser(argparse.ArgumentParser):
  """argparse that reports a bad argument as an InputError (one line) instead of usage + exit."""

  def error(self, message):
    raise InputError(f"{self.prog}: {message}")

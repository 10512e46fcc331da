"""errors.first_line: the one line an error message quotes of an exception, with or without its type."""

import pytest

from scaling.errors import InputError, first_line


@pytest.mark.parametrize("error, plain, with_type", [
    (OSError("disk full\n  at /tmp/x"), "disk full", "OSError: disk full"),
    (RuntimeError("  \nXLA failed\nmore"), "XLA failed", "RuntimeError: XLA failed"),
    (KeyError(), "KeyError", "KeyError"),  # no message: its type's name, once
    (InputError("base.seq_len must be positive\nignored"), "base.seq_len must be positive",
     "base.seq_len must be positive"),  # an InputError names the problem itself
])
def test_first_line(error, plain, with_type):
  assert first_line(error) == plain
  assert first_line(error, with_type=True) == with_type

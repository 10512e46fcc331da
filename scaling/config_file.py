"""`--config FILE [--config.KEY=VALUE ...] --workdir DIR`, parsed by ml_collections' config flags.

Shared by the commands that take a config file (`scaling train`, `scaling sweep`, `scaling compile`):
a missing file, a config file that fails or returns something other than a ConfigDict, an override
naming no key or of the wrong type, a group the command needs left out is one `InputError`.
"""

import os
import re

from scaling.errors import InputError


def load(argv: list[str], *, prog: str, reference: str):
  """Returns (config, workdir); `reference` is the file that lists every key, named in errors."""
  import ml_collections
  from absl import flags
  from ml_collections import config_flags

  values = flags.FlagValues()
  # sys_argv: the override flags are discovered from this list, not from the process's sys.argv.
  config_flags.DEFINE_config_file("config", None, "ml_collections config file", flag_values=values,
                                  sys_argv=[prog, *argv])
  flags.DEFINE_string("workdir", None, "output directory", flag_values=values)
  if not any(a == "--config" or a.startswith("--config=") for a in argv):
    raise InputError(f"{prog}: --config FILE is required")
  path = _config_path(argv)
  if path is not None and not os.path.isfile(path):
    raise InputError(f"{prog}: --config {path}: no such file")
  try:
    values([prog, *argv])
  except flags.Error as e:
    if "Error whilst parsing config file" in str(e):  # the file's own code raised
      raise InputError(f"{prog}: --config {path}: {_raised_in(str(e), path)}") from None
    raise InputError(f"{prog}: {str(e).splitlines()[0]}") from None
  except Exception as e:  # a config file is user code: any failure in it is bad input
    match = re.search(r"'(\w+)", str(e))
    name = match.group(1) if match else None
    overrides = [a.split("=")[0] for a in argv if a.startswith("--config.")]
    culprit = next((o for o in overrides if name in o.split(".")[1:]), None)
    if culprit:
      raise InputError(f"{prog}: {culprit} names no config key (see {reference})") from None
    raise InputError(f"{prog}: cannot load --config: {str(e).splitlines()[0]}") from None
  config = values.config
  if not isinstance(config, ml_collections.ConfigDict):
    raise InputError(f"{prog}: --config {path}: get_config() returned {type(config).__name__} "
                     f"{_shown(config)}; it must return an ml_collections.ConfigDict (see "
                     f"{reference})")
  if values.workdir is None:
    raise InputError(f"{prog}: --workdir DIR is required")
  if not values.workdir.strip():
    raise InputError(f"{prog}: --workdir is empty; name a directory for the outputs")
  return config, values.workdir


def require(config, keys, *, prog: str, reference: str) -> None:
  """The groups a command reads before it validates the rest (`data`: the corpus and tokenizer
  come first), so that one left out is a line naming it, not an AttributeError."""
  missing = [key for key in keys if key not in config]
  if missing:
    raise InputError(f"{prog}: the config has no {', '.join(missing)} (start from "
                     f"{reference}, which sets every key)")


def _shown(value) -> str:
  """A value's repr, cut short: a config file may return something large."""
  text = repr(value)
  return text if len(text) <= 60 else text[:57] + "..."


def _raised_in(traceback_text: str, path: str) -> str:
  """`ValueError: MESSAGE (line N)` from the traceback ml_collections wraps a config file's error
  in: the exception line, and the last line of the file itself that it passed through."""
  lines = [line for line in traceback_text.splitlines() if line.strip()]
  raised = lines[-1].strip() if lines else "it raised"
  frames = re.findall(r'File "([^"]+)", line (\d+)', traceback_text)
  in_file = [line for name, line in frames if os.path.abspath(name) == os.path.abspath(path)]
  return f"{raised} (line {in_file[-1]})" if in_file else raised


def _config_path(argv: list[str]) -> str | None:
  """The FILE of `--config FILE` or `--config=FILE` (ml_collections allows FILE:ARGS)."""
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1].split(":")[0]
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1].split(":")[0]
  return None

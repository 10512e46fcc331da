"""What a launcher runs on every process: `scaling train|sweep ...` plus distributed flags."""

from scaling.errors import InputError

COMMANDS = ("train", "sweep")


# Where each command's config keys are listed (named in its errors, as the command itself does).
REFERENCES = {"train": "scaling/train/config.py", "sweep": "scaling/sweep/config.py"}
# `scaling sweep`'s own options (scaling/sweep/cli.py), besides --config and --workdir: not config.
SWEEP_FLAGS = ("--dry-run",)
SWEEP_OPTIONS = ("--executor", "--ray-address", "--topology", "--assume-mfu")


def _config_arguments(command: list[str]) -> list[str]:
  """The command's arguments less the sweep's own options: what its config loader reads."""
  rest, i = [], 2
  while i < len(command):
    arg = command[i]
    if command[1] == "sweep" and arg in SWEEP_OPTIONS:
      i += 2
      continue
    if command[1] == "sweep" and (arg in SWEEP_FLAGS or arg.startswith(
        tuple(f"{option}=" for option in SWEEP_OPTIONS))):
      i += 1
      continue
    rest.append(arg)
    i += 1
  return rest


def check(command: list[str], prog: str) -> list[str]:
  """The command after `--` must be `scaling train ...` or `scaling sweep ...`."""
  if len(command) < 2 or command[0] != "scaling" or command[1] not in COMMANDS:
    raise InputError(f"{prog}: after --, give the command to run: scaling train|sweep ..., "
                     f"got {' '.join(command) or 'nothing'}")
  return command


def check_config(command: list[str], prog: str) -> None:
  """The command's config must load here: a missing file, a key no config has, a wrong type fail
  on this machine, before a VM is created or anything installed, not on every worker."""
  if any(arg in ("-h", "--help") for arg in command[2:]):
    return
  from scaling import config_file

  name = f"scaling {command[1]}"
  try:
    config, _ = config_file.load(_config_arguments(command), prog=name,
                                 reference=REFERENCES[command[1]])
    if command[1] == "train" and "sweep" in config and "base" in config:
      raise InputError(f"{name}: --config is a sweep config (it has sweep.* and base.* keys); "
                       "run it with scaling sweep")
    if command[1] == "train":
      config_file.require(config, ("data",), prog=name,
                          reference="scaling.train.config.defaults()")
  except InputError as e:
    raise InputError(f"{prog}: the command after -- would fail: {e}") from None


def with_distributed(command: list[str], **settings) -> list[str]:
  """Appends distributed.initialize=true and `settings`; a sweep keeps its train keys in `base`."""
  prefix = "--config.distributed." if command[1] == "train" else "--config.base.distributed."
  settings = {"initialize": "true", **settings}
  return [*command, *(f"{prefix}{key}={value}" for key, value in settings.items())]


def workdir(command: list[str]) -> str | None:
  """The value of the command's --workdir, if it has one."""
  for i, arg in enumerate(command):
    if arg == "--workdir" and i + 1 < len(command):
      return command[i + 1]
    if arg.startswith("--workdir="):
      return arg.split("=", 1)[1]
  return None


def config_index(command: list[str]) -> int | None:
  """The index of the argument holding the --config FILE (`--config=FILE` or the one after)."""
  for i, arg in enumerate(command):
    if arg.startswith("--config="):
      return i
    if arg == "--config" and i + 1 < len(command):
      return i + 1
  return None

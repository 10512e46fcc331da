"""Which config keys a run may change when it is continued: the one policy `scaling train`'s resume
check and `scaling sweep`'s "is this recorded run the plan's run" check both read.

Every top-level config key (a group such as `model` counts for all its keys) is one of:
- fixed: the checkpoint's shapes and the meaning of `step` (the data position) depend on it; a
  change is never resumable.
- free: how the run reports, saves or where it runs, not what it computes. A mesh change is free
  because orbax reshards the state onto the new mesh on restore; microbatches too, since the
  accumulated update is the same update. train_tokens and warmup_fraction act through the resolved
  train_steps and warmup_steps, which are compared instead.
- result-changing: every other key (optimizer, schedule, run length, eval batches...): refused
  unless the config says resume_changes=allow; run.json's history then records the change.
"""

import dataclasses
import json

from scaling.train import config as config_lib
from scaling.train import trackers

FIXED_KEYS = ("model", "batch_size", "seed", "data")
FREE_KEYS = ("log_every", "eval_every", "eval_loss_by_position", "checkpoint_every",
             "keep_checkpoints", "checkpoint_steps", "progress", "mesh", "microbatches",
             "distributed", "resume_changes", "train_tokens", "warmup_fraction",
             *trackers.CONFIG_KEYS)


def kind(key: str) -> str:
  """"fixed", "free" or "result" for a (flattened, dotted) config key."""
  group = key.split(".")[0]
  return "fixed" if group in FIXED_KEYS else "free" if group in FREE_KEYS else "result"


def flatten(values: dict, prefix: str = "") -> dict:
  """{"model": {"d_model": 64}} -> {"model.d_model": 64}."""
  flat = {}
  for key, value in values.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


@dataclasses.dataclass(frozen=True)
class Decision:
  """What continuing a recorded run with another config would change, and whether it may."""

  changes: dict  # every non-free key that differs: {key: (recorded, now)}, in the config's order
  fixed: str | None  # the first fixed group among them: never resumable
  allowed: bool

  def group(self, name: str) -> dict:
    """The changes to keys of config group `name`."""
    return {key: change for key, change in self.changes.items() if key.split(".")[0] == name}

  def first(self) -> str | None:
    """The key a refusal names: the first of the fixed group's, else the first change."""
    return next(iter(self.group(self.fixed) if self.fixed else self.changes), None)


def decide(recorded: dict, config: dict) -> Decision:
  """Whether a run recorded with config `recorded` (as run.json or plan.json holds it) may be
  continued with `config`: no fixed key changed, and no result-changing one unless `config` says
  resume_changes=allow. A key the recorded run predates had its default then."""
  before = {**flatten(config_lib.defaults().to_dict()), **flatten(recorded)}
  now = flatten(json.loads(json.dumps(config)))  # as JSON holds it: tuples are lists there
  changes = {key: (before.get(key), value) for key, value in now.items()
             if kind(key) != "free" and before.get(key) != value}
  fixed = next((group for group in FIXED_KEYS
                if any(key.split(".")[0] == group for key in changes)), None)
  allowed = fixed is None and (not changes or config.get("resume_changes") == "allow")
  return Decision(changes=changes, fixed=fixed, allowed=allowed)

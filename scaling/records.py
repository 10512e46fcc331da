"""run.json and plan.json as types: one reader and one writer each; no module parses them by hand.

`RunRecord` is what `scaling train` writes to a run directory's run.json (the resolved config,
what the run is and costs, where it ran, how it resumed); `PlanRecord` what `scaling sweep` writes
to a sweep directory's plan.json (the plan's kind and recipe, and an entry per run and trunk).

Every key is optional when read: a run.json written by an older version, or by hand (a test, a
converted run), has only some of them, and a reader that needs one asks with `needs`, which names
the file and the key. A present key of the wrong type is an InputError naming both. Keys a record
does not know are kept in `extra`, and keys a file lacked are not written back, so
`from_json(...).to_json()` gives the file's keys and values again; a record made in code writes
the keys it was given (None is no key, but a nullable one's null). No JAX here: `scaling runs` and
the plots read these.
"""

import dataclasses

from scaling.errors import InputError

_NUMBER, _INT, _OBJECT = ((int, float), "a number"), ((int,), "an integer"), ((dict,), "an object")
_TEXT, _LIST = ((str,), "a string"), ((list, tuple), "a list")


def _key(kind: tuple) -> dataclasses.Field:
  """A record field: the JSON key of the same name, of `kind` (types, what the error calls it)."""
  return dataclasses.field(default=None, metadata={"kind": kind})


@dataclasses.dataclass(frozen=True)
class _Record:
  """What both records share: unknown keys, the keys the file lacked, and the file's name."""

  extra: dict = dataclasses.field(default_factory=dict)  # keys this version does not know
  absent: frozenset = dataclasses.field(default=frozenset(), compare=False)  # not written back
  where: str = dataclasses.field(default="", compare=False)  # the file read, for error messages

  @classmethod
  def _keys(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if "kind" in f.metadata]

  @classmethod
  def from_json(cls, value, where: str):
    """The record of a parsed JSON file; InputError naming `where` if it is not one."""
    if not isinstance(value, dict):
      raise InputError(f"{where}: expected a JSON object")
    known = {}
    for field in cls._keys():
      if field.name not in value:
        continue
      item, (types, what) = value[field.name], field.metadata["kind"]
      nullable = field.name in cls._NULLABLE
      if not (isinstance(item, types) and not isinstance(item, bool)) and not (
          nullable and item is None):
        raise InputError(f"{where}: {field.name} is {str(item)[:60]!r}, expected {what}")
      known[field.name] = tuple(item) if isinstance(item, list) else item
    names = {field.name for field in cls._keys()}
    record = cls(**known, extra={k: v for k, v in value.items() if k not in names},
                 absent=frozenset(names - set(value)), where=where)
    record._check()
    return record

  _NULLABLE = ()  # keys whose value may be null

  def _check(self) -> None:
    """Checks beyond each key's type (a subclass's)."""

  def to_json(self) -> dict:
    """The file's JSON object: known keys in their order (those the file lacked left out), then
    the unknown ones."""
    known = {f.name: getattr(self, f.name) for f in self._keys() if f.name not in self.absent
             and (getattr(self, f.name) is not None or f.name in self._NULLABLE)}
    return {**{k: list(v) if isinstance(v, tuple) else v for k, v in known.items()}, **self.extra}

  def get(self, key: str):
    """The value of JSON key `key` (a known or an extra one), None when the file lacks it."""
    if key in {f.name for f in self._keys()}:
      return getattr(self, key)
    return self.extra.get(key)

  def needs(self, *keys: str) -> None:
    """InputError `FILE: missing 'KEY'` for the first of `keys` the file lacks."""
    for key in keys:
      if self.get(key) is None:
        raise InputError(f"{self.where}: missing {key!r}")


@dataclasses.dataclass(frozen=True)
class RunRecord(_Record):
  """run.json: what a run is (its resolved config, size, cost and corpus) and how it ran."""

  config: dict = _key(_OBJECT)  # the resolved config: run length, warmup and vocab_size filled in
  params: int = _key(_NUMBER)
  params_non_embedding: int = _key(_NUMBER)
  flops_per_token: dict = _key(_OBJECT)  # convention ("chinchilla", "kaplan") -> FLOPs per token
  tokens_per_step: int = _key(_INT)
  train_steps: int = _key(_INT)
  corpus: dict = _key(_OBJECT)  # the corpus fingerprint; `sha256` identifies it
  mesh: dict = _key(_OBJECT)  # axis -> size
  versions: dict = _key(_OBJECT)
  device_kind: str = _key(_TEXT)
  device_count: int = _key(_INT)
  process_count: int = _key(_INT)
  git_commit: str = _key(_TEXT)  # None outside a git checkout (written as null)
  resumed_from_step: int = _key(_INT)
  history: tuple = _key(_LIST)  # {"step", "changed": {key: [recorded, now]}} per resume that did

  _NULLABLE = ("git_commit",)

  @property
  def corpus_sha256(self) -> str:
    """The corpus's fingerprint; InputError when run.json has none."""
    sha256 = (self.corpus or {}).get("sha256")
    if not isinstance(sha256, str):
      raise InputError(f"{self.where}: missing 'corpus' 'sha256'")
    return sha256


@dataclasses.dataclass(frozen=True)
class PlanRecord(_Record):
  """plan.json: the plan's kind, recipe and settings, and one entry per run (and trunk), each the
  run's summary (name, size, steps, tokens, ...), its workdir relative to the sweep directory and
  its full train config."""

  kind: str = _key(_TEXT)
  recipe: dict = _key(_OBJECT)  # a FittedRecipe's has its named recipe under "base"
  rule: str = _key(_TEXT)
  flops_convention: str = _key(_TEXT)
  sweep: dict = _key(_OBJECT)
  runs: tuple = _key(_LIST)
  trunks: tuple = _key(_LIST)  # only with sweep.branches=cooldown
  flops_trained: float = _key(_NUMBER)
  flops_independent: float = _key(_NUMBER)
  flops_ratio: float = _key(_NUMBER)

  ENTRY_KEYS = {"name": _TEXT, "workdir": _TEXT, "config": _OBJECT, "steps": _INT}

  def _check(self) -> None:
    for group in ("runs", "trunks"):
      for index, entry in enumerate(getattr(self, group) or ()):
        if not isinstance(entry, dict):
          raise InputError(f"{self.where}: {group}[{index}] is not an object")
        for key, (types, what) in self.ENTRY_KEYS.items():
          if not isinstance(entry.get(key), types):
            raise InputError(f"{self.where}: {group}[{index}] has no {key!r} ({what})")

  def entries(self, group: str = "runs") -> tuple[dict, ...]:
    """The entries of "runs" or "trunks" (none where the file has none)."""
    return getattr(self, group) or ()

  @property
  def recipe_name(self) -> str | None:
    """The named recipe the plan's learning rates and batches come from (a fitted recipe's base)."""
    recipe = self.recipe or {}
    base = recipe.get("base", recipe)
    return base.get("name") if isinstance(base, dict) else None

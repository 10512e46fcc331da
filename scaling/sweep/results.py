"""results.csv: one row per finished run of a sweep, the points a scaling-law fit reads.

`flops` and `flops_kaplan` are each run's real training FLOPs (whole steps, as logged in
metrics.jsonl, chinchilla and kaplan conventions); `loss` is the final eval loss; `budget` is the
nominal compute the plan aimed at (the IsoFLOP group of the run), in the plan's convention;
`seed` is the run's seed, so replicate runs of one size (`sweep.replicate_seeds`) are told apart.
A file written before the seed column existed reads with every row at seed 0, the default.
`bpb` is the final eval loss in bits per byte (`eval_bpb`), comparable across tokenizers; empty for a
run that did not log it (and 0 when read back, which a fit refuses as not positive).
`trunk` names the trunk a branch of a branching sweep forked off (`sweep.branches=cooldown`; empty
when the run trained alone); its tokens and FLOPs are the whole model's, the trunk's part included.
A file written before the trunk column existed reads with every row's trunk "".
`learning_rate` (peak) and `batch_size` (sequences) are each run's, as its config set them; a file
written before they existed reads them as None (unknown: not 0, which no run trained with).
"""

import csv
import io

from scaling import rundir
from scaling.rundir import RESULTS_FILE
COLUMNS = ("name", "params", "params_non_embedding", "tokens", "flops", "flops_kaplan", "loss",
           "budget", "seed", "bpb", "trunk", "learning_rate", "batch_size")
_TYPES = {"name": str, "params": int, "params_non_embedding": int, "tokens": int, "flops": float,
          "flops_kaplan": float, "loss": float, "budget": float, "seed": int, "bpb": float,
          "trunk": str, "learning_rate": float, "batch_size": int}
_MISSING = {"trunk": ""}  # a column an older file lacks reads as this (else 0) ...
_UNKNOWN = ("learning_rate", "batch_size")  # ... or, for these, as None


def write(path: str, rows: list[dict]) -> None:
  """Replaces `path` whole (local or gs://), so a sweep killed mid-write keeps the previous file."""
  with io.StringIO(newline="") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows({key: {**_MISSING, **row}.get(key) for key in COLUMNS} for row in rows)
    rundir.write_text(path, f.getvalue())


def read(path: str) -> list[dict]:
  """The rows of a results.csv (or of DIR/results.csv for a sweep directory), typed."""
  if rundir.is_dir(path):
    path = rundir.SweepDir(path).results_file
  with io.StringIO(rundir.read_text(path), newline="") as f:
    return [{key: _value(key, row.get(key)) for key in COLUMNS} for row in csv.DictReader(f)]


def _value(key: str, text: str | None):
  if not text and key in _UNKNOWN:
    return None
  return _TYPES[key](text or _MISSING.get(key, 0))

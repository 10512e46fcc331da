"""The same isoFLOP points trained two ways (issue 26): independent cosine runs against branched wsd
runs (`--config.sweep.branches=cooldown`). Per point, the mean loss over seeds of each sweep, their
difference, and that difference in units of its standard deviation from the seeds (each sweep's
seed SD pooled over its points, one df per point).

  python experiments/chinchilla_isoflop/compare_branches.py runs/cmp_cosine runs/cmp_wsd
"""

import math
import statistics
import sys

from scaling.sweep import results


def _point(name: str) -> str:
  """A run's (budget, size) point: its name without the replicate seed's suffix."""
  return name.rsplit("_s", 1)[0] if name.rsplit("_s", 1)[-1].isdigit() else name


def main(independent_dir: str, branched_dir: str) -> None:
  independent = {r["name"]: r for r in results.read(independent_dir)}
  branched = {r["name"]: r for r in results.read(branched_dir)}
  if set(independent) != set(branched):
    print(f"error: the sweeps' runs differ: {sorted(set(independent) ^ set(branched))[:5]}", file=sys.stderr)
    sys.exit(2)
  points: dict[str, list[str]] = {}
  for name in independent:
    points.setdefault(_point(name), []).append(name)

  def seed_sd(rows):
    pairs = [names for names in points.values() if len(names) == 2]
    return math.sqrt(statistics.mean((rows[a]["loss"] - rows[b]["loss"]) ** 2 / 2 for a, b in pairs)), len(pairs)

  sd_independent, dof = seed_sd(independent)
  sd_branched, _ = seed_sd(branched)
  print(f"seed SD (pooled, {dof} df): independent {sd_independent:.4f}, branched {sd_branched:.4f}")
  print(f"{'point':22s} {'params':>8s} {'tokens':>11s} {'indep.':>7s} {'branch':>7s} {'diff':>8s} {'/SD':>6s}  trunk")
  z = []
  for point in sorted(points, key=lambda p: (independent[p]["budget"], independent[p]["params"])):
    names = points[point]
    mean_independent = statistics.mean(independent[n]["loss"] for n in names)
    mean_branched = statistics.mean(branched[n]["loss"] for n in names)
    # each mean has variance sd²/k over k seeds; their difference the sum of both
    sd_diff = math.sqrt((sd_independent**2 + sd_branched**2) / len(names))
    diff = mean_branched - mean_independent
    z.append(diff / sd_diff)
    row = independent[point]
    print(f"{point:22s} {row['params']:8,d} {row['tokens']:11,d} {mean_independent:7.4f} {mean_branched:7.4f} "
          f"{diff:+8.4f} {diff / sd_diff:+6.2f}  {branched[point].get('trunk') or '-'}")
  diffs = [statistics.mean(branched[n]["loss"] - independent[n]["loss"] for n in points[p]) for p in points]
  print(f"{len(z)} points: branched minus independent {statistics.mean(diffs):+.4f} nats on average "
        f"({min(diffs):+.4f} to {max(diffs):+.4f}); {sum(abs(x) > 2 for x in z)} beyond 2 SD")


if __name__ == "__main__":
  if len(sys.argv) != 3:
    print("usage:", __doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
    sys.exit(2)
  main(*sys.argv[1:])

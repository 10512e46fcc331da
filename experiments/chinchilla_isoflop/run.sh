#!/usr/bin/env bash
# Chinchilla Fig. 3 on a CPU: the sweep, approaches 2 (intervals from the measured run noise, as the
# demo's) and 3 with bootstrap intervals, each profile against the seed noise, the figures.
#   experiments/chinchilla_isoflop/run.sh [WORKDIR]     (default runs/chinchilla_isoflop, gitignored)
set -euo pipefail
W=${1:-runs/chinchilla_isoflop}
scaling sweep --config experiments/chinchilla_isoflop/cpu.py --workdir "$W"
mkdir -p "$W/fits"
for n in params params_non_embedding; do
  scaling fit --data "$W" --approach isoflop --n-column $n --bootstrap 2000 --seed 0 \
    --bootstrap-kind noise --out "$W/fits/isoflop_$n.json"
done
scaling fit --data "$W" --law chinchilla --bootstrap 1000 --seed 0 \
  --out "$W/fits/parametric_params.json"
python - "$W" <<'PY'
import json, sys
from scaling import demo
from scaling.sweep import results
rows = results.read(sys.argv[1])
with open(f"{sys.argv[1]}/fits/isoflop_params.json") as f:
  report = json.load(f)
pooled = report["bootstrap"]["seed_sd"], report["bootstrap"]["seed_dof"]
print("\n".join(demo.noise_lines(demo.profile_noise(rows, report), pooled)))
PY
scaling plot "$W" --fit "$W/fits/isoflop_params.json" --fit "$W/fits/parametric_params.json"

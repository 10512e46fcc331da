#!/usr/bin/env bash
# Kaplan Fig. 1 (right) on a CPU: the ladder, L(N) = (N_c/N)^α_N and E + A·N^-α with bootstrap
# intervals, the figures.
#   experiments/kaplan_model_size/run.sh [WORKDIR]      (default runs/kaplan_model_size, gitignored)
set -euo pipefail
W=${1:-runs/kaplan_model_size}
scaling sweep --config experiments/kaplan_model_size/cpu.py --workdir "$W"
mkdir -p "$W/fits"
for law in power saturating; do
  scaling fit --data "$W" --approach parametric --law $law --x params \
    --n-column params_non_embedding --bootstrap 1000 --seed 0 --out "$W/fits/$law.json"
done
scaling fit --data "$W" --approach parametric --law power --x params --n-column params \
  --bootstrap 1000 --seed 0 --out "$W/fits/power_all_params.json"
scaling plot "$W" --fit "$W/fits/power.json"

"""`scaling sweep --dry-run --topology TYPE`: each run's step compiled once, cached, and costed."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SWEEP = '''
from scaling.sweep.config import defaults

def get_config():
  config = defaults()
  config.base.model.dtype = "bfloat16"
  config.base.mesh.data = 1
  config.base.mesh.fsdp = 4
  config.sweep.kind = "ladder"
  config.sweep.sizes = (5.2e3, 8.3e4)  # d_model 18 (not divisible by fsdp 4) and 72
  config.sweep.tokens = (1e6,)
  return config
'''


def plan(tmp_path, *options, sweep=SWEEP):
  config = tmp_path / "sweep.py"
  config.write_text(sweep)
  env = {**os.environ, "SCALING_COMPILE_CACHE": str(tmp_path / "cache")}
  return subprocess.run([sys.executable, "-m", "scaling.cli", "sweep", "--config", str(config),
                         "--workdir", str(tmp_path / "plan"), "--dry-run", *options], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=600)


def test_a_width_the_slice_cannot_split_is_one_line_naming_the_run_before_any_compile(tmp_path):
  result = plan(tmp_path, "--topology", "v5litepod-4")
  assert result.returncode == 2 and result.stdout == ""
  assert result.stderr.count("\n") == 1
  assert "run N5.24e3_D1e6 on v5litepod-4" in result.stderr
  assert "d_model=18 is not divisible by mesh.fsdp=4" in result.stderr
  assert not (tmp_path / "cache").exists()


ONE_RUN = SWEEP.replace("(5.2e3, 8.3e4)", "(8.3e4,)")
# The one run's shape (d_model 72, 1 layer, 2 heads, seq 64, batch 16), as `scaling bench --json`
# reports it, measured at 25 % MFU on a v5e.
BENCH = {"mfu": 0.25, "device": {"platform": "tpu", "kind": "TPU v5 lite", "count": 4},
         "config": {"d_model": 72, "n_layers": 1, "n_heads": 2, "seq_len": 64, "batch_size": 16}}


def test_runs_are_compiled_once_then_read_from_the_cache(tmp_path):
  bench = tmp_path / "bench.json"
  bench.write_text(json.dumps(BENCH))
  options = ("--topology", "v5litepod-4", "--assume-mfu", "0.5", "--measured", str(bench))
  first = plan(tmp_path, *options, sweep=ONE_RUN)
  assert first.returncode == 0, first.stderr
  assert first.stderr == ""
  lines = first.stdout.splitlines()
  header = next(i for i, line in enumerate(lines) if line.startswith("name") and "fits" in line)
  run = lines[header + 1].split()
  assert run[1] == "yes" and run[4] in ("compute", "hbm", "ici")
  assert 0 < float(run[5].rstrip("%")) <= 100  # the MFU bound
  assert float(run[6]) > 0  # hours ≥
  # Half the MFU, twice the chip-hours.
  assert float(run[8]) == pytest.approx(2 * float(run[7]), rel=1e-3)
  assert "1 of 1 runs fit" in lines[-2] and "at 50% MFU" in lines[-2]
  assert "25.0% on TPU v5 lite" in lines[-1] and "for the 1 runs" in lines[-1]
  assert len(os.listdir(tmp_path / "cache")) == 1  # the run that compiled
  again = plan(tmp_path, *options, sweep=ONE_RUN)
  assert again.stdout == first.stdout


def test_topology_needs_dry_run_and_a_sane_mfu(tmp_path):
  config = tmp_path / "sweep.py"
  config.write_text(SWEEP)
  base = [sys.executable, "-m", "scaling.cli", "sweep", "--config", str(config), "--workdir",
          str(tmp_path / "plan")]
  for extra, named in ((["--topology", "v5p-8"], "--dry-run"),
                       (["--dry-run", "--topology", "v5p-8", "--assume-mfu", "2"], "--assume-mfu"),
                       (["--dry-run", "--topology", "v9-8"], "v9-8"),
                       (["--dry-run", "--num-slices", "2"], "--topology"),
                       (["--dry-run", "--search"], "--topology"),
                       (["--dry-run", "--topology", "v5p-8", "--measured", str(tmp_path / "none")],
                        "--measured")):
    result = subprocess.run(base + extra, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and named in result.stderr
  assert not (tmp_path / "plan").exists()


def test_search_prints_each_run_with_the_best_candidate_one_search_per_shape(tmp_path, monkeypatch,
                                                                             capsys):
  """Two runs of one shape (they differ in seed): one search, its candidates compiled once each
  (two policies here, to stay fast), each run printed with the best as ready overrides."""
  from scaling.compile import search
  from scaling.sweep import cli as sweep_cli

  monkeypatch.setattr(search, "REMATS", ("none", "full"))
  monkeypatch.setenv("SCALING_COMPILE_CACHE", str(tmp_path / "cache"))
  config = tmp_path / "sweep.py"
  config.write_text(ONE_RUN.replace("  return config", "  config.sweep.replicate_seeds = (1,)\n  return config"))
  argv = ["--config", str(config), "--workdir", str(tmp_path / "plan"), "--dry-run", "--topology",
          "v5litepod-4", "--search"]
  assert sweep_cli.main(argv) == 0
  lines = capsys.readouterr().out.splitlines()
  header = next(i for i, line in enumerate(lines) if line.startswith("name") and "overrides" in line)
  runs = lines[header + 1:header + 3]
  names = [line.split()[0] for line in runs]
  assert len(set(names)) == 2 and len({name.split("_")[0] for name in names}) == 1
  best = {line.split("  ")[-1].strip() for line in runs}
  assert len(best) == 1 and all(line.split()[1] == "yes" for line in runs)
  # The tiny step fits without remat, and recomputing the forward pass only adds work: none wins.
  assert best == {"--config.microbatches=1 --config.model.remat=none"}
  assert "searched 1 run shapes (2 candidates); 2 of 2 runs fit" in lines[-2]
  assert lines[-1].endswith("--config.base.microbatches=1 --config.base.model.remat=none")
  assert len(os.listdir(tmp_path / "cache")) == 2
  assert not (tmp_path / "plan").exists()

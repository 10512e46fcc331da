"""`scaling sweep --dry-run --topology TYPE`: each run's step compiled once, cached, and costed."""

import os
import subprocess
import sys

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


def plan(tmp_path, *options):
  config = tmp_path / "sweep.py"
  config.write_text(SWEEP)
  env = {**os.environ, "SCALING_COMPILE_CACHE": str(tmp_path / "cache")}
  return subprocess.run([sys.executable, "-m", "scaling.cli", "sweep", "--config", str(config),
                         "--workdir", str(tmp_path / "plan"), "--dry-run", *options], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=600)


def test_runs_are_compiled_once_then_read_from_the_cache(tmp_path):
  first = plan(tmp_path, "--topology", "v5litepod-4", "--assume-mfu", "0.5")
  assert first.returncode == 0, first.stderr
  assert first.stderr == ""
  lines = first.stdout.splitlines()
  header = next(i for i, line in enumerate(lines) if line.startswith("name") and "fits" in line)
  small, large = lines[header + 1].split(), lines[header + 2].split()
  assert small[1] == "invalid" and large[1] == "yes"  # the d_model 18 run cannot be split 4 ways
  assert any("is not divisible by mesh.fsdp=4" in line for line in lines)
  assert float(large[4]) > 0 and float(large[5]) > 0  # hours ≥, chip-hours
  assert "1 of 2 runs fit" in lines[-1] and "at 50% MFU" in lines[-1]
  assert len(os.listdir(tmp_path / "cache")) == 1  # the run that compiled
  again = plan(tmp_path, "--topology", "v5litepod-4", "--assume-mfu", "0.5")
  assert again.stdout == first.stdout


def test_topology_needs_dry_run_and_a_sane_mfu(tmp_path):
  config = tmp_path / "sweep.py"
  config.write_text(SWEEP)
  base = [sys.executable, "-m", "scaling.cli", "sweep", "--config", str(config), "--workdir",
          str(tmp_path / "plan")]
  for extra, named in ((["--topology", "v5p-8"], "--dry-run"),
                       (["--dry-run", "--topology", "v5p-8", "--assume-mfu", "2"], "--assume-mfu"),
                       (["--dry-run", "--topology", "v9-8"], "v9-8")):
    result = subprocess.run(base + extra, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and named in result.stderr
  assert not (tmp_path / "plan").exists()

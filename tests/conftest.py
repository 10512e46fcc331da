"""Test session set-up: 8 simulated CPU devices, so sharded meshes run on one machine; a local GCS
API (fixtures `gcs`, `gcs_dir`; tests/storage.py) started by the first test that asks for it; with
SCALING_TEST_FAILURES=FILE, each failure's report appended to FILE the moment it happens (.ci/run
prints it, so a session that dies before its summary still says what failed).

The flag must be set before JAX initializes its backend, i.e. before any test module imports jax.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def text_corpus(tmp_path_factory) -> str:
  """A small local corpus (a slice of the stdlib's own source) for fast training tests: its glob."""
  import sysconfig

  root = tmp_path_factory.mktemp("corpus")
  stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
  for name in ("json", "email", "asyncio"):
    for i, path in enumerate(sorted((stdlib / name).glob("*.py"))):
      (root / f"{name}_{i:02d}.py").write_bytes(path.read_bytes())
  return str(root / "*.py")


@pytest.fixture(scope="session")
def child_compile_cache(tmp_path_factory) -> dict:
  """Environment for child JAX processes: one persistent compilation cache for the session, every
  program cached (as a sweep's runs share theirs, scaling/sweep/runner.py).

  Children that compile the same program (a reference run and its interrupted and resumed twins)
  load it instead of compiling it again: about half a tiny `scaling train` process's CPU time. The
  test process's own JAX is left alone: product code sets its own cache there, and tests check it.
  """
  return {"JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax-cache")),
          "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
          "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}


@pytest.fixture(scope="session")
def gcs():
  """gs://test on a gcp-storage-emulator this session started (see tests/storage.py)."""
  import storage

  running = storage.emulator()
  yield f"gs://{storage.BUCKET}"
  running.stop()


@pytest.fixture
def gcs_dir(gcs) -> str:
  """A gs:// directory of its own for one test."""
  import storage

  return storage.fresh_prefix()


def pytest_runtest_logreport(report):
  path = os.environ.get("SCALING_TEST_FAILURES")
  if path and report.failed:
    with open(path, "a") as out:
      out.write(f"_____ {report.nodeid} ({report.when}) _____\n{report.longreprtext}\n\n")

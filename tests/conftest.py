"""Test session set-up: 8 simulated CPU devices, so sharded meshes run on one machine; a local GCS
API (fixtures `gcs`, `gcs_dir`; tests/storage.py) started by the first test that asks for it.

The flag must be set before JAX initializes its backend, i.e. before any test module imports jax.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
_EXIT_STATUS = pytest.StashKey[int]()


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


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
  session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
  """Once pytest has reported, the process leaves with pytest's status without finalizing the
  interpreter: tearing down what a whole session leaves in one process (JAX's CPU and libtpu
  clients cleared by JAX's atexit while daemon threads of orbax, grain and Ray may still run) once
  aborted a `-m slow` session with SIGABRT after its last test had passed, after faulthandler was
  off and before the summary was flushed. Every command the tests start is its own process and
  exits normally, so this hides nothing a user runs."""
  if _EXIT_STATUS in config.stash:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(config.stash[_EXIT_STATUS])

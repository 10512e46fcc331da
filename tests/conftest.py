"""Test session set-up: 8 simulated CPU devices, so sharded meshes run on one machine; XLA:CPU's
LLVM at -O0, which halves the time tests spend compiling (docs/testing.md); NumPy-style
rank promotion an error (`jnp.ones((3, 4)) + jnp.ones(4)` raises, as in nanodo), so every broadcast
in the product is written out; a local GCS API (fixtures `gcs`, `gcs_dir`; tests/emulated_gcs.py) started
by the first test that asks for it; with SCALING_TEST_FAILURES=FILE, each failure's report appended
to FILE the moment it happens (.ci/run prints it, so a session that dies before its summary still
says what failed). docs/testing.md has the figures behind the compilation caches below.

All are set in the environment before JAX initializes, i.e. before any test module imports jax,
so that the child processes tests start get them too: they pass `os.environ` on, through
`scaling.launch.local.child_env` where they want another device count.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["JAX_NUMPY_RANK_PROMOTION"] = "raise"

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


# The stages whose tests train tiny runs in process (see `compile_once`).
CACHED_COMPILES = ("data", "export", "sample", "sweep", "train")


@pytest.fixture(scope="session")
def compile_cache_dir(tmp_path_factory) -> str:
  """JAX's persistent compilation cache for the session (`compile_once`, `child_compile_cache`)."""
  return str(tmp_path_factory.mktemp("jax-cache"))


@pytest.fixture(autouse=True)
def compile_once(request):
  """In tests/<stage>/ for the CACHED_COMPILES stages, the session's persistent compilation cache,
  every program cached, as a sweep caches its runs' (scaling/sweep/runner.py; a sweep a test runs
  still uses its own).

  Each `trainer.train` builds its steps afresh, so a second run of a program would compile it
  again. Other stages compile for real: tests there read what XLA prints while compiling
  (parallel/test_rules.py) or compile for TPU topologies.
  """
  if request.path.relative_to(REPO / "tests").parts[0] not in CACHED_COMPILES:
    yield
    return
  from scaling.sweep import runner

  with runner.compile_cache(request.getfixturevalue("compile_cache_dir")):
    yield


@pytest.fixture(scope="session")
def child_compile_cache(compile_cache_dir) -> dict:
  """Environment for child JAX processes: the session's persistent compilation cache, every
  program cached. Children that compile the same program (a reference run and its interrupted and
  resumed twins) load it instead of compiling it again."""
  return {"JAX_COMPILATION_CACHE_DIR": compile_cache_dir,
          "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
          "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}


@pytest.fixture(scope="session")
def gcs():
  """gs://test on a gcp-storage-emulator this session started (see tests/emulated_gcs.py)."""
  import emulated_gcs

  running = emulated_gcs.emulator()
  yield f"gs://{emulated_gcs.BUCKET}"
  running.stop()


@pytest.fixture
def gcs_dir(gcs) -> str:
  """A gs:// directory of its own for one test."""
  import emulated_gcs

  return emulated_gcs.fresh_prefix()


@pytest.fixture(params=["local", "gs"])
def root(request, tmp_path) -> str:
  """A fresh directory, once local and once a gs:// prefix on the emulator: storage and layout
  tests run on both."""
  if request.param == "local":
    return str(tmp_path / "d")
  return request.getfixturevalue("gcs_dir")


def pytest_runtest_logreport(report):
  path = os.environ.get("SCALING_TEST_FAILURES")
  if path and report.failed:
    with open(path, "a") as out:
      out.write(f"_____ {report.nodeid} ({report.when}) _____\n{report.longreprtext}\n\n")

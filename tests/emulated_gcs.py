"""A real GCS API for tests: gcp-storage-emulator on 127.0.0.1, in memory, with bucket `test`.

It runs as tests/gcs_emulator.py, which adds the generation preconditions and headers of GCS that
the emulator lacks and tensorstore's checkpoints need.

`emulator()` starts it and points everything that talks to GCS at it through the environment:
gcsfs (and so etils.epath) and google-cloud-storage read STORAGE_EMULATOR_HOST, tensorstore (orbax's
checkpoints) TENSORSTORE_GCS_HTTP_URL, and GOOGLE_AUTH_TOKEN_FOR_TESTING stands in for credentials
(tensorstore and scaling.storage accept it). GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false stops gcsfs
probing for zonal buckets, which stalls 60 s per bucket against the emulator. The variables go into
os.environ, so subprocesses started by a test inherit them.

Importable from any test module (pytest puts tests/ on sys.path); conftest.py wraps it as the
session fixture `gcs` (the URL of the bucket) and `gcs_dir` (a fresh gs:// prefix per test).
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

BUCKET = "test"


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def environment(port: int) -> dict:
  url = f"http://127.0.0.1:{port}"
  return {"STORAGE_EMULATOR_HOST": url, "TENSORSTORE_GCS_HTTP_URL": url,
          "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
          "GOOGLE_CLOUD_PROJECT": "test"}


class Emulator:
  """A running emulator: `url` (its HTTP endpoint), `env` (the variables set), `stop()`."""

  def __init__(self, port: int, process: subprocess.Popen):
    self.port, self.process = port, process
    self.url = f"http://127.0.0.1:{port}"
    self.env = environment(port)

  def stop(self) -> None:
    self.process.terminate()
    try:
      self.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      self.process.kill()
      self.process.wait()


def emulator(timeout: float = 30.0) -> Emulator:
  """Starts gcp-storage-emulator with bucket `test`, waits until it answers, sets os.environ."""
  port = _free_port()
  command = [sys.executable, os.path.join(os.path.dirname(__file__), "gcs_emulator.py"), "start",
             "--host", "127.0.0.1", "--port", str(port), "--default-bucket", BUCKET,
             "--in-memory", "--quiet"]
  log = tempfile.TemporaryFile(mode="w+")  # read only if it fails to start
  process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + timeout
  while True:
    if process.poll() is not None:
      log.seek(0)
      raise RuntimeError(f"gcp-storage-emulator exited: {log.read()[-2000:]}")
    try:
      socket.create_connection(("127.0.0.1", port), timeout=1).close()
      break
    except OSError:
      if time.time() > deadline:
        process.kill()
        raise RuntimeError(f"gcp-storage-emulator did not listen on {port} in {timeout} s")
      time.sleep(0.1)
  running = Emulator(port, process)
  os.environ.update(running.env)
  return running


def fresh_prefix(name: str = "t") -> str:
  """A gs:// directory no other test uses."""
  return f"gs://{BUCKET}/{name}-{uuid.uuid4().hex[:8]}"


def upload(local_dir, url: str, only=None) -> str:
  """Copies a local directory tree (`only`: just these top-level names) to gs:// `url`, one object
  per file; returns `url`."""
  from scaling import storage

  for parent, _, names in os.walk(local_dir):
    for name in names:
      relative = os.path.relpath(os.path.join(parent, name), local_dir).split(os.sep)
      if only is None or relative[0] in only:
        with open(os.path.join(parent, name), "rb") as f:
          storage.write_bytes(storage.join(url, *relative), f.read())
  return url

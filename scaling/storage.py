"""Reads and writes of files, local or gs://, that every stage shares: whole-file atomic writes,
exclusive create (a lock or a claim), listings that see other hosts' writes, and the checks that a
path can be read or written (one-line InputErrors, nothing written).

Everything goes through `etils.epath`, so a local path and `gs://bucket/...` are the same code,
except where an object store is not a file system: GCS has no append and no rename, and takes
about one write per second to one object, so every file is written whole (`write_text`: atomic
rename locally, one upload on GCS, where objects appear whole). This module imports no JAX.
"""

import contextlib
import json
import os
import tempfile

from etils import epath

from scaling.errors import InputError, first_line


def is_remote(path) -> bool:
  """An object store URL (gs://...), not a local path."""
  return "://" in os.fspath(path)



def absolute(path) -> str:
  """A local path made absolute (orbax wants one); a URL as it is."""
  path = os.fspath(path)
  return path if is_remote(path) else os.path.abspath(path)



def join(path, *parts) -> str:
  """`path/part/...` as a string, for a local path or a URL alike."""
  return os.fspath(epath.Path(path).joinpath(*parts))



def _gcs():
  """The gcsfs file system epath itself uses for gs:// (fsspec caches one instance)."""
  import fsspec

  return fsspec.filesystem("gcs", finalize_on_close=True)



def _fresh(path) -> epath.Path:
  """`path` as an epath, with gcsfs's cached listings of it dropped: another process (another
  host, the trainer a test watches) may have written there since this one last looked."""
  if is_remote(path):
    _gcs().invalidate_cache(os.fspath(path))
  return epath.Path(path)



def exists(path) -> bool:
  return _fresh(path).exists()



def is_dir(path) -> bool:
  return _fresh(path).is_dir()



def list_names(path) -> list[str]:
  """The sorted names directly inside directory `path`; [] if it does not exist, or stops existing
  while it is listed (on GCS a directory is its objects: another process may delete the last one,
  as process 0 of a run does with the metrics chunks while the others read the metrics)."""
  directory = _fresh(path)
  if not directory.is_dir():
    return []
  try:
    return sorted(child.name for child in directory.iterdir())
  except FileNotFoundError:
    return []



def read_text(path) -> str:
  return _fresh(path).read_text(encoding="utf-8")



def read_bytes(path) -> bytes:
  return _fresh(path).read_bytes()



def write_bytes(path, data: bytes) -> None:
  """Writes a whole file so that readers see the old content or the new, never a part.

  Locally: a temporary file of a unique name in the same directory, fsynced, renamed over `path`
  (and removed if the write fails, so a failed write leaves nothing). On GCS one upload,
  which becomes visible only once complete. Parent directories are created.
  """
  target = epath.Path(path)
  if is_remote(path):
    target.write_bytes(data)
    return
  target.parent.mkdir(parents=True, exist_ok=True)
  # A temporary name of this writer's own (two writers never share one), removed if anything fails.
  descriptor, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                     dir=os.fspath(target.parent))
  try:
    with os.fdopen(descriptor, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp's is 0600; a written file is readable as `open` makes it
    os.replace(tmp, os.fspath(target))
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp)
    raise



def upload_tree(local_dir: str, target) -> None:
  """Copies every file below the local directory `local_dir` to the same relative path below
  `target` (a bucket path), each as one whole-file write; links to directories are skipped. For
  writers (TensorBoard, W&B) that only write local files."""
  for folder, _, names in os.walk(local_dir):
    for name in names:
      path = os.path.join(folder, name)
      if os.path.isfile(path):
        with open(path, "rb") as f:
          write_bytes(join(target, *os.path.relpath(path, local_dir).split(os.sep)), f.read())



def write_text(path, text: str) -> None:
  """`write_bytes` of `text` in UTF-8."""
  write_bytes(path, text.encode("utf-8"))



def parent(path) -> str:
  """The directory holding `path` (a local path made absolute first)."""
  return os.fspath(epath.Path(absolute(path)).parent)



def create_exclusive(path, text: str) -> None:
  """Creates `path` holding `text` unless something is there already: then FileExistsError.

  Of several processes (or hosts) racing to create it, exactly one succeeds: a lock or a claim.
  Locally O_CREAT | O_EXCL; on GCS one upload with the precondition ifGenerationMatch=0 (the
  object must not exist), which GCS refuses with 412, FileExistsError through gcsfs.
  """
  if is_remote(path):
    _gcs().pipe_file(os.fspath(path), text.encode("utf-8"), mode="create")
    return
  epath.Path(path).parent.mkdir(parents=True, exist_ok=True)
  descriptor = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
  with os.fdopen(descriptor, "w", encoding="utf-8") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())



def remove(path) -> None:
  """Deletes a file (or object); a missing one is not an error."""
  target = epath.Path(path)
  try:
    target.unlink()
  except FileNotFoundError:
    pass



def _storage_endpoint() -> tuple[str, str, int]:
  """(URL, host, port) of the GCS API this process talks to: STORAGE_EMULATOR_HOST when set."""
  from urllib.parse import urlsplit

  url = os.environ.get("STORAGE_EMULATOR_HOST") or "https://storage.googleapis.com"
  parts = urlsplit(url if "://" in url else f"http://{url}")
  return url, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)



def _check_bucket(path: str, flag: str) -> None:
  """The bucket of gs:// `path` answers: the endpoint is reachable, there are credentials and the
  bucket exists and is ours. Each failure is one InputError line; nothing is written."""
  import socket

  if not path.startswith("gs://"):
    raise InputError(f"{flag} {path}: only gs:// URLs are supported as remote paths")
  try:
    import gcsfs  # noqa: F401  what epath reads and writes gs:// with
  except ImportError:
    raise InputError(f"{flag} {path}: gs:// paths need gcsfs: pip install 'scaling[gcs]'") from None
  bucket = path[len("gs://"):].split("/")[0]
  if not bucket:
    raise InputError(f"{flag} {path}: no bucket name")
  url, host, port = _storage_endpoint()
  try:
    socket.create_connection((host, port), timeout=10).close()
  except OSError as e:
    raise InputError(f"{flag} {path}: cannot reach the storage API at {url} ({e})") from None
  if not os.environ.get("GOOGLE_AUTH_TOKEN_FOR_TESTING"):
    import google.auth
    import google.auth.exceptions

    try:
      google.auth.default()
    except google.auth.exceptions.GoogleAuthError as e:
      raise InputError(f"{flag} {path}: no Google credentials (run `gcloud auth "
                       "application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS): "
                       f"{str(e).splitlines()[0]}") from None
  try:
    _gcs().invalidate_cache(bucket)
    _gcs().info(bucket)
  except FileNotFoundError:
    raise InputError(f"{flag} {path}: bucket gs://{bucket} does not exist") from None
  except Exception as e:  # noqa: BLE001  403, 401, ...: the storage API's own words, on one line
    raise InputError(f"{flag} {path}: cannot use bucket gs://{bucket} "
                     f"({first_line(e)[:200]})") from None



def check_writable(path, flag: str = "--workdir") -> None:
  """That a directory can be created or written at `path`, writing nothing: a local path whose
  nearest existing ancestor is a writable directory, or a gs:// path in a usable bucket."""
  path = os.fspath(path)
  if not path:
    raise InputError(f"{flag} is empty; name a directory for the run's outputs")
  if is_remote(path):
    _check_bucket(path, flag)
    return
  ancestor = os.path.abspath(path)
  while not os.path.exists(ancestor):
    ancestor = os.path.dirname(ancestor)
  if not os.path.isdir(ancestor):
    raise InputError(f"{flag} {path}: {ancestor} exists and is not a directory")
  try:  # probed with an empty directory made and removed: permission bits say nothing for root
    os.rmdir(tempfile.mkdtemp(prefix=".scaling-probe-", dir=ancestor))
  except OSError as e:
    raise InputError(f"{flag} {path}: cannot create directories in {ancestor} "
                     f"({e.strerror})") from None



def check_readable(path, flag: str) -> None:
  """That `path` can be read: it exists (a gs:// path also gets the bucket checks first)."""
  path = os.fspath(path)
  if is_remote(path):
    _check_bucket(path, flag)
  if not exists(path):
    raise InputError(f"{flag} {path}: no such file or directory")



def read_json(path):
  return json.loads(read_text(path))



def write_json(path, value) -> None:
  write_text(path, json.dumps(value, indent=2))

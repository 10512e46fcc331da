"""Storage primitives, on a local disk and on GCS (the emulator of tests/emulated_gcs.py) alike."""

import concurrent.futures
import os

import pytest

from scaling import storage
from scaling.errors import InputError


def test_whole_writes_read_back_and_create_parents(root):
  path = storage.join(root, "a", "b.json")
  storage.write_json(path, {"x": 1})
  storage.write_json(path, {"x": 2})
  assert storage.read_json(path) == {"x": 2}
  assert storage.list_names(storage.join(root, "a")) == ["b.json"]  # no temporary left behind
  assert storage.list_names(storage.join(root, "nothing")) == []
  storage.remove(path)
  storage.remove(path)
  assert not storage.exists(path)


def test_writers_never_share_a_temporary_and_a_failed_write_leaves_nothing(tmp_path):
  path = str(tmp_path / "shared.json")

  def write(i):
    for _ in range(20):
      storage.write_json(path, {"writer": i})

  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(write, range(8)))  # each rename finds its own temporary: none fails
  assert storage.read_json(path)["writer"] in range(8)
  assert os.listdir(tmp_path) == ["shared.json"]
  (tmp_path / "folder").mkdir()
  with pytest.raises(IsADirectoryError):
    storage.write_text(str(tmp_path / "folder"), "report")
  assert sorted(os.listdir(tmp_path)) == ["folder", "shared.json"]
  assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)


def test_exclusive_create_has_exactly_one_winner(root):
  path = storage.join(root, "lease")
  storage.create_exclusive(path, "first")
  with pytest.raises(FileExistsError):
    storage.create_exclusive(path, "second")
  assert storage.read_text(path) == "first"

  contested = storage.join(root, "contested")

  def claim(i):
    try:
      storage.create_exclusive(contested, f"claimant {i}")
      return i
    except FileExistsError:
      return None

  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    winners = [i for i in pool.map(claim, range(8)) if i is not None]
  assert len(winners) == 1 and storage.read_text(contested) == f"claimant {winners[0]}"


def test_local_checks(tmp_path):
  storage.check_writable(str(tmp_path / "new" / "deeper"))
  (tmp_path / "file").write_text("")
  with pytest.raises(InputError, match="exists and is not a directory"):
    storage.check_writable(str(tmp_path / "file" / "run"))
  assert os.listdir(tmp_path) == ["file"]


def test_bucket_problems_are_one_line(gcs, monkeypatch):
  with pytest.raises(InputError, match="bucket gs://no-such-bucket does not exist"):
    storage.check_writable("gs://no-such-bucket/run")
  storage.check_writable(f"{gcs}/run")  # the emulator's bucket: fine
  with pytest.raises(InputError, match="no bucket name"):
    storage.check_writable("gs:///run")
  with monkeypatch.context() as patch:  # nobody listens there
    patch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    with pytest.raises(InputError, match="cannot reach the storage API at http://127.0.0.1:9"):
      storage.check_writable(f"{gcs}/run")
  with monkeypatch.context() as patch:  # no token, and the credentials file named does not exist
    patch.delenv("GOOGLE_AUTH_TOKEN_FOR_TESTING")
    patch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")
    with pytest.raises(InputError, match="no Google credentials") as error:
      storage.check_writable(f"{gcs}/run")
    assert "\n" not in str(error.value)

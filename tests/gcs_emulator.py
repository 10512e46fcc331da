"""gcp-storage-emulator with GCS's generation preconditions and generation headers, as a command.

  python tests/gcs_emulator.py start --host 127.0.0.1 --port P --default-bucket test --in-memory

The emulator (PyPI) ignores `ifGenerationMatch` / `ifGenerationNotMatch` and sends no
`x-goog-generation` header on downloads. Real GCS does both, and tensorstore's OCDBT (how orbax
writes checkpoints) depends on them: it re-reads its manifest with ifGenerationNotMatch and expects
304 or a generation, and creates it with ifGenerationMatch=0. So before the server starts, its
object handlers get what GCS documents (https://cloud.google.com/storage/docs/request-preconditions):
a write whose precondition fails is 412, a read is 412 (ifGenerationMatch) or 304
(ifGenerationNotMatch), and every read carries its object's generation.
"""

import sys
import threading
from http import HTTPStatus

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects
from gcp_storage_emulator.storage import Storage

_upload = threading.local()  # the query of the upload request being handled on this thread


class _PreconditionFailed(Exception):
  pass


def _generation(storage, bucket: str, name: str) -> str | None:
  try:
    return storage.get_file_obj(bucket, name)["generation"]
  except NotFound:
    return None


def _unmet(query: dict, current: str | None) -> str | None:
  """Which precondition of `query` the object's `current` generation fails (None: object absent)."""
  match, not_match = query.get("ifGenerationMatch"), query.get("ifGenerationNotMatch")
  if match and (current or "0") != match[0]:
    return "ifGenerationMatch"
  if not_match and current is not None and current == not_match[0]:
    return "ifGenerationNotMatch"
  return None


def _fail(response, status: HTTPStatus, message: str) -> None:
  response.status = status
  if status != HTTPStatus.NOT_MODIFIED:
    response.json({"error": {"code": status.value, "message": message}})


_create_file = Storage.create_file


def create_file(self, bucket_name, file_name, content, file_obj, file_id=None):
  query = getattr(_upload, "query", None) or {}
  if _unmet(query, _generation(self, bucket_name, file_name)):
    raise _PreconditionFailed(file_name)
  return _create_file(self, bucket_name, file_name, content, file_obj, file_id)


_insert = objects.insert


def insert(request, response, storage, *args, **kwargs):
  _upload.query = request.query
  try:
    return _insert(request, response, storage, *args, **kwargs)
  except _PreconditionFailed as e:
    _fail(response, HTTPStatus.PRECONDITION_FAILED, f"At least one of the pre-conditions you "
          f"specified did not hold: {e}")
  finally:
    _upload.query = None


def _with_preconditions(handler):
  def handle(request, response, storage, *args, **kwargs):
    current = _generation(storage, request.params["bucket_name"], request.params["object_id"])
    unmet = _unmet(request.query, current)
    if unmet == "ifGenerationNotMatch":
      return _fail(response, HTTPStatus.NOT_MODIFIED, "")
    if unmet:
      return _fail(response, HTTPStatus.PRECONDITION_FAILED, f"{unmet} did not hold")
    if current is not None:
      response["x-goog-generation"] = current
      response["x-goog-metageneration"] = "1"
    return handler(request, response, storage, *args, **kwargs)

  return handle


Storage.create_file = create_file
objects.insert = insert
objects.download = _with_preconditions(objects.download)  # objects.get(alt=media) calls it too
objects.get = _with_preconditions(objects.get)

if __name__ == "__main__":
  from gcp_storage_emulator.__main__ import main  # imports the server, which routes to the above

  sys.exit(main(sys.argv[1:]))

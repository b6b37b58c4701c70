"""Writing a file so that a reader, a crash or a full disk never leaves
part of it: the one way the project writes files it will read again.

`write_atomically(path, data)` writes a temporary file beside `path`,
flushes it to the disk (fsync), renames it over `path` and syncs the folder,
so that after any crash `path` holds the old bytes or the new ones. A
failure removes the temporary file and leaves `path` as it was.
"""

import os
from pathlib import Path


def write_atomically(path: str | Path, data: str | bytes) -> None:
  """Replaces `path` with `data` (text as UTF-8), whole or not at all."""
  path = str(path)
  partial = f"{path}.partial{os.getpid()}"
  blob = data.encode("utf-8") if isinstance(data, str) else data
  try:
    with open(partial, "wb") as f:
      f.write(blob)
      f.flush()
      os.fsync(f.fileno())
    os.replace(partial, path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)
  _sync_folder(os.path.dirname(os.path.abspath(path)))


def _sync_folder(folder: str) -> None:
  """Makes a rename inside `folder` durable (where the system allows)."""
  try:
    fd = os.open(folder, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:  # some file systems refuse to sync a folder
    pass
  finally:
    os.close(fd)

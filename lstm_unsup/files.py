"""Writing a file so that a reader, a crash or a full disk never leaves
part of it: the one way the project writes files it will read again.

`write_atomically(path, data)` writes a temporary file beside `path`,
flushes it to the disk (fsync), renames it over `path` and syncs the folder,
so that after any crash `path` holds the old bytes or the new ones. A
failure removes the temporary file and leaves `path` as it was.
`rename_durably(source, path)` is its last half, for a file that another
program wrote (the compiled kernel of `optim/fused_adam.py`).

An OSError of a write or a flush names no file ("[Errno 27] File too
large"); `naming(path)` makes one raised inside it name `path`, and
`advice(errno)` says what "File too large" means.
"""

import contextlib
import errno
import os
from pathlib import Path

# What an error number means for a file we write, beyond its strerror.
_ADVICE = {
  errno.EFBIG: "a file-size limit: `ulimit -f`, or the file system's largest "
  "file",
}


def write_atomically(
  path: str | Path, data: str | bytes, mode: int | None = None
) -> None:
  """Replaces `path` with `data` (text as UTF-8), whole or not at all;
  with `mode` (0o600, say) the file has that mode, whatever the umask."""
  path = str(path)
  partial = f"{path}.partial{os.getpid()}"
  blob = data.encode("utf-8") if isinstance(data, str) else data
  try:
    with naming(path):
      with open(partial, "wb") as f:
        if mode is not None:
          os.fchmod(f.fileno(), mode)
        f.write(blob)
      rename_durably(partial, path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)


def rename_durably(source: str | Path, path: str | Path) -> None:
  """Flushes the file `source` to the disk, renames it over `path` (in the
  same folder) and syncs the folder, so the rename survives a power cut."""
  fd = os.open(source, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)
  os.replace(source, path)
  _sync_folder(os.path.dirname(os.path.abspath(path)))


@contextlib.contextmanager
def naming(path: str | Path):
  """Re-raises an OSError that names no file (a write's, a flush's) as one
  that names `path`, with the same error number."""
  try:
    yield
  except OSError as e:
    if e.filename is not None or e.errno is None:
      raise
    raise OSError(e.errno, e.strerror, str(path)) from e


def advice(code: int | None) -> str:
  """What error number `code` means for a file, in parentheses, or ""."""
  return f" ({_ADVICE[code]})" if code in _ADVICE else ""


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

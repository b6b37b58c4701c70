"""SHA-256 checksums of the files we write and later trust.

A checksum list is a text file in `sha256sum`'s format, one line per file,
named relative to the list's folder, so `sha256sum -c LIST` checks it by
hand too:

  9f86d081884c7d65...  settings.json
  2c26b46b68ffc68f...  params.msgpack

Used beside each cached evaluation set (`<cache>.npy.sha256`, test_sets.py)
and in each saved `SequenceAutoencoder` folder (`checksums.sha256`). Write
the list before the files it names: a save cut short then leaves files that
do not match it, which is seen, rather than files that nothing checks.
"""

import hashlib
from pathlib import Path

from lstm_unsup import files as files_lib

CHUNK = 1 << 20  # bytes hashed per read


def sha256(data: bytes | Path) -> str:
  """The hex SHA-256 of bytes, or of a file's contents (read in chunks)."""
  if isinstance(data, bytes):
    return hashlib.sha256(data).hexdigest()
  digest = hashlib.sha256()
  with open(data, "rb") as f:
    while chunk := f.read(CHUNK):
      digest.update(chunk)
  return digest.hexdigest()


def sidecar(path: Path) -> Path:
  """Where the checksum of one file lives: beside it, `<name>.sha256`."""
  return path.with_name(path.name + ".sha256")


def write(
  checksums: Path, files: dict[str, bytes | Path], mode: int | None = None
) -> None:
  """Records the SHA-256 of each file (its bytes, or a path to read) under
  its name in `checksums`, written atomically (with `mode`, if given)."""
  text = "".join(f"{sha256(data)}  {name}\n" for name, data in files.items())
  files_lib.write_atomically(checksums, text, mode=mode)


def mismatch(checksums: Path, files: dict[str, bytes | Path]) -> str | None:
  """None if each file (its bytes, or a path to read) has the SHA-256 that
  `checksums` records for its name; else why not, in words."""
  try:
    lines = checksums.read_text().splitlines()
  except (OSError, UnicodeDecodeError) as e:
    return f"{checksums} cannot be read ({e})"
  recorded = {}
  for line in lines:
    digest, separator, name = line.partition("  ")
    if not separator:
      return f"{checksums} is not a checksum list (line {line!r})"
    recorded[name] = digest
  folder = checksums.parent
  for name, data in files.items():
    if name not in recorded:
      return f"{folder / name} has no checksum in {checksums.name}"
    if sha256(data) != recorded[name]:
      return (
        f"{folder / name} does not match its checksum in {checksums.name}: "
        "the file was changed or damaged"
      )
  return None

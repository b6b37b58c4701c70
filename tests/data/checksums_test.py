"""Tests for the checksum lists (lstm_unsup/data/checksums.py)."""

import hashlib
import shutil
import subprocess

import pytest

from lstm_unsup.data import checksums


def test_a_list_records_bytes_and_files_as_sha256sum_does(tmp_path):
  (tmp_path / "a.bin").write_bytes(b"abc")
  listed = tmp_path / "list.sha256"
  checksums.write(listed, {"a.bin": tmp_path / "a.bin", "b.json": b"{}"})
  assert listed.read_text() == (
    f"{hashlib.sha256(b'abc').hexdigest()}  a.bin\n"
    f"{hashlib.sha256(b'{}').hexdigest()}  b.json\n"
  )
  names = {p.name for p in tmp_path.iterdir()}
  assert names == {"a.bin", "list.sha256"}  # no temporary file left behind
  assert checksums.mismatch(listed, {"a.bin": tmp_path / "a.bin"}) is None
  assert checksums.mismatch(listed, {"b.json": b"{}"}) is None
  if shutil.which("sha256sum"):
    (tmp_path / "b.json").write_bytes(b"{}")
    subprocess.run(
      ["sha256sum", "-c", "--quiet", listed.name], cwd=tmp_path, check=True
    )


@pytest.mark.parametrize(
  "files, text, why",
  [
    ({"a.bin": b"abd"}, None, "a.bin does not match its checksum in list"),
    ({"c.bin": b"abc"}, None, "c.bin has no checksum in list.sha256"),
    ({"a.bin": b"abc"}, "not a list\n", "is not a checksum list"),
    ({"a.bin": b"abc"}, b"\xff\n", "cannot be read"),
  ],
)
def test_each_failure_says_which_file_and_why(tmp_path, files, text, why):
  listed = tmp_path / "list.sha256"
  checksums.write(listed, {"a.bin": b"abc"})
  if isinstance(text, str):
    listed.write_text(text)
  elif text is not None:
    listed.write_bytes(text)
  assert why in checksums.mismatch(listed, files)


def test_a_sidecar_sits_beside_its_file(tmp_path):
  assert checksums.sidecar(tmp_path / "x.npy") == tmp_path / "x.npy.sha256"

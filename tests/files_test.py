"""The one way the project writes a file it reads again (files.py)."""

import os

import pytest

from lstm_unsup import files


def test_text_and_bytes_replace_the_file_whole(tmp_path):
  path = tmp_path / "a.json"
  files.write_atomically(path, "first")
  files.write_atomically(str(path), b"second")
  assert path.read_bytes() == b"second"
  assert os.listdir(tmp_path) == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial(
  tmp_path, monkeypatch
):
  path = tmp_path / "a.json"
  files.write_atomically(path, "old")

  def full_disk(fd):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(os, "fsync", full_disk)
  with pytest.raises(OSError, match="No space"):
    files.write_atomically(path, "new")
  assert path.read_text() == "old"
  assert os.listdir(tmp_path) == ["a.json"]


def test_a_mode_is_kept_whatever_the_umask(tmp_path):
  path = tmp_path / "record.sha256"
  umask = os.umask(0o002)  # new files would be group-writable
  try:
    files.write_atomically(path, "private", mode=0o600)
  finally:
    os.umask(umask)
  assert path.read_text() == "private"
  assert path.stat().st_mode & 0o777 == 0o600
  assert os.listdir(tmp_path) == ["record.sha256"]


def test_rename_durably_flushes_then_replaces_the_file(tmp_path, monkeypatch):
  source, path = tmp_path / "built.tmp", tmp_path / "built.so"
  source.write_bytes(b"new")
  path.write_bytes(b"old")
  synced = []
  fsync = os.fsync
  monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or fsync(fd))
  files.rename_durably(source, path)
  assert path.read_bytes() == b"new" and not source.exists()
  assert len(synced) == 2  # the file, then its folder


def test_a_failed_write_names_the_file_not_its_temporary(tmp_path, monkeypatch):
  path = tmp_path / "a.json"

  def full_disk(fd):
    raise OSError(28, "No space left on device")  # names no file

  monkeypatch.setattr(os, "fsync", full_disk)
  with pytest.raises(OSError) as caught:
    files.write_atomically(path, "new")
  assert caught.value.errno == 28 and caught.value.filename == str(path)
  assert str(caught.value) == f"[Errno 28] No space left on device: '{path}'"
  assert os.listdir(tmp_path) == []

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

"""Tests for config.json and metrics.jsonl (lstm_unsup/metrics_io.py): a
kill at any moment leaves both readable."""

import json
import os

import pytest

from lstm_unsup import metrics_io


def test_a_torn_last_line_is_dropped_and_truncation_rewrites_the_rest(tmp_path):
  writer = metrics_io.MetricWriter(str(tmp_path))
  for step in (1, 2, 3):
    writer.write(step, "train", {"loss": float(step)})
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 4, "split": "tra')  # a kill mid-append
  assert [r["step"] for r in metrics_io.read_metrics(str(tmp_path))] == [
    1,
    2,
    3,
  ]
  writer.truncate_after(2)
  text = (tmp_path / "metrics.jsonl").read_text()
  assert [json.loads(line)["step"] for line in text.splitlines()] == [1, 2]
  writer.write(3, "train", {"loss": 3.0})  # appends after a whole line
  assert [r["step"] for r in metrics_io.read_metrics(str(tmp_path))] == [
    1,
    2,
    3,
  ]


def test_a_bad_line_before_the_last_is_an_error_naming_it(tmp_path):
  (tmp_path / "metrics.jsonl").write_text(
    '{"step": 1}\nnot json\n{"step": 2}\n'
  )
  with pytest.raises(ValueError, match="metrics.jsonl, line 2, is not JSON"):
    metrics_io.read_metrics(str(tmp_path))


def test_a_failed_config_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
  metrics_io.write_config(str(tmp_path), {"seed": 0})

  def fail(*args):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(os, "replace", fail)
  with pytest.raises(OSError):
    metrics_io.write_config(str(tmp_path), {"seed": 1, "more": "x" * 1000})
  assert metrics_io.read_config(str(tmp_path)) == {"seed": 0}
  assert os.listdir(tmp_path) == ["config.json"]  # no temporary file left

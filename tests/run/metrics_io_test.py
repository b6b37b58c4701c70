"""Tests for metrics.jsonl (lstm_unsup/metrics_io.py): a kill at any moment
leaves it readable, and a damaged line is named, never a traceback."""

import json
import logging
import os

import pytest

from lstm_unsup.run import metrics_io


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


DAMAGE = {
  "garbage": b"garbage\n",
  "a number": b"42\n",
  "no split": b'{"step": 9}\n',
  "a string step": b'{"step": "9", "split": "train"}\n',
  "non-UTF-8 bytes": b'{"step": 9, "split": "tr\xff\xfein"}\n',
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_line_is_skipped_naming_it_or_refused_in_one_line(
  tmp_path, caplog, kind
):
  good = [
    json.dumps({"step": s, "split": "train", "loss": 1.0}) for s in (1, 2)
  ]
  path = tmp_path / "metrics.jsonl"
  text = good[0].encode() + b"\n" + DAMAGE[kind] + good[1].encode() + b"\n"
  path.write_bytes(text)
  with caplog.at_level(logging.WARNING):  # readers: what can be read
    records = metrics_io.read_metrics(str(tmp_path))
  assert [r["step"] for r in records] == [1, 2]
  assert f"{path}, line 2: " in caplog.text and "skipping it" in caplog.text
  with pytest.raises(metrics_io.MetricsError) as error:
    metrics_io.read_metrics(str(tmp_path), damaged="refuse")
  message = str(error.value)
  assert message.startswith(f"{path}, line 2: ") and "\n" not in message
  # The trainer's truncation would rewrite the file without that line.
  with pytest.raises(metrics_io.MetricsError, match="line 2"):
    metrics_io.MetricWriter(str(tmp_path)).truncate_after(1)
  assert path.read_bytes() == text


def test_a_failed_append_names_metrics_jsonl(tmp_path):
  if not os.path.exists("/dev/full"):
    pytest.skip("no /dev/full here")
  writer = metrics_io.MetricWriter(str(tmp_path))
  path = tmp_path / "metrics.jsonl"
  path.symlink_to("/dev/full")  # every write fails: "No space left"
  with pytest.raises(OSError) as caught:
    writer.write(1, "train", {"loss": 1.0})
  writer.close()
  assert caught.value.filename == str(path)
  assert str(caught.value) == (f"[Errno 28] No space left on device: '{path}'")

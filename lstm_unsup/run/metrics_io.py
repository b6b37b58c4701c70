"""A run's metrics.jsonl: one JSON record per line, appended as training
goes, mirrored to TensorBoard event files when tensorboardX is installed
(no TensorFlow). `folder.RunDir` says where it lives.

A kill at any moment leaves it readable: a shortened file is written to a
temporary file and renamed over the old one, and a last line torn by a kill
mid-append is dropped when read. Any other line that is not a record (not
JSON, not UTF-8, not an object with an integer "step" and a string "split")
is named with its line number: readers skip it with a warning
(`damaged="skip"`: plots and tables show what can be read), and whoever
would rewrite the file refuses it with a MetricsError (`damaged="refuse"`:
the trainer on resume, which would otherwise drop it for good). An append
that fails (a full disk, "File too large") raises an OSError that names
the file.
"""

import json
import math
import os
from typing import Any

from absl import logging

from lstm_unsup import files

FILENAME = "metrics.jsonl"
TENSORBOARD = "tensorboard"  # the folder of the event files


def path(workdir: str) -> str:
  """Where a run's metrics.jsonl is."""
  return os.path.join(workdir, FILENAME)


class MetricsError(ValueError):
  """A line of metrics.jsonl is not a record; the message names it."""


def read_metrics(workdir: str, damaged: str = "skip") -> list[dict[str, Any]]:
  """Every record of a run's metrics.jsonl, in order. A damaged line is
  skipped with a warning, or (`damaged="refuse"`) raises MetricsError."""
  return [record for _, record in _records(workdir, damaged)]


def last_record(
  workdir: str, split: str, step: int | None = None
) -> dict[str, Any] | None:
  """The last record of `split` (at `step`, if given), or None."""
  records = [
    r
    for r in read_metrics(workdir)
    if r["split"] == split and step in (None, r["step"])
  ]
  return records[-1] if records else None


def _records(workdir: str, damaged: str) -> list[tuple[bytes, dict]]:
  """(line, record) of each record; see `read_metrics`."""
  if damaged not in ("skip", "refuse"):
    raise ValueError(f"damaged={damaged!r} is not 'skip' or 'refuse'.")
  path = os.path.join(workdir, FILENAME)
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    lines = f.read().splitlines(keepends=True)
  records = []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      records.append((line, _parse(line)))
    except ValueError as e:
      if number == len(lines) and not line.endswith(b"\n"):
        logging.warning("Dropping a torn last line of %s.", path)
        continue
      where = f"{path}, line {number}: {e}"
      if damaged == "refuse":
        raise MetricsError(
          f"{where}. Resuming rewrites this file and would lose that line: "
          "delete or mend that line (or move the file away to start the "
          "records over), then rerun."
        ) from e
      logging.warning("%s; skipping it.", where)
  return records


def _parse(line: bytes) -> dict[str, Any]:
  """The record of one line; ValueError saying why it is not one."""
  try:
    record = json.loads(line.decode("utf-8"))
  except UnicodeDecodeError as e:
    raise ValueError(f"not UTF-8 text ({e.reason} at byte {e.start})") from e
  except json.JSONDecodeError as e:
    raise ValueError(f"not JSON ({e})") from e
  if not isinstance(record, dict):
    raise ValueError(f"not a record but {type(record).__name__} {record!r:.40}")
  step, split = record.get("step"), record.get("split")
  if type(step) is not int or step < 0:
    raise ValueError(f'"step" is {step!r}, not a step number')
  if not isinstance(split, str):
    raise ValueError(f'"split" is {split!r}, not a split name')
  return record


def _scalars(record: dict[str, Any], prefix: str = ""):
  for key, value in record.items():
    if isinstance(value, dict):
      yield from _scalars(value, f"{prefix}{key}/")
    elif isinstance(value, int | float) and not isinstance(value, bool):
      yield prefix + key, float(value)


class NoWriter:
  """A MetricWriter's place on the processes that do not write (all but
  process 0 of a run on several processes)."""

  def write(self, step: int, split: str, record: dict[str, Any]) -> None:
    del step, split, record

  def truncate_after(self, step: int) -> None:
    del step

  def close(self) -> None:
    pass


class MetricWriter:
  """Appends one JSON line per record; mirrors scalars to TensorBoard."""

  def __init__(self, workdir: str):
    os.makedirs(workdir, exist_ok=True)
    self._workdir = workdir
    self._path = os.path.join(workdir, FILENAME)
    self._tb = None
    try:
      from tensorboardX import SummaryWriter  # noqa: PLC0415

      self._tb = SummaryWriter(os.path.join(workdir, TENSORBOARD))
    except ImportError:
      logging.info("tensorboardX is not installed: no TensorBoard files.")

  def write(self, step: int, split: str, record: dict[str, Any]) -> None:
    record = {"step": int(step), "split": split, **record}
    line = json.dumps(record, default=_jsonable) + "\n"
    with files.naming(self._path), open(self._path, "a") as f:
      f.write(line)  # a full disk or "File too large" names the file
    if self._tb is not None:
      for name, value in _scalars(record):
        if name != "step" and math.isfinite(value):
          self._tb.add_scalar(f"{split}/{name}", value, step)
      self._tb.flush()

  def truncate_after(self, step: int) -> None:
    """Drops records past `step` (written after the checkpoint resumed);
    MetricsError, changing nothing, if a line is damaged. A negative step
    drops every record, whatever they hold."""
    if not os.path.exists(self._path):
      return
    if step < 0:
      files.write_atomically(self._path, "")
      return
    records = _records(self._workdir, damaged="refuse")
    kept = [
      line.rstrip(b"\n") + b"\n" for line, r in records if r["step"] <= step
    ]
    text = b"".join(kept)
    if len(text) != os.path.getsize(self._path):
      files.write_atomically(self._path, text.decode("utf-8"))

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def _jsonable(value):
  if hasattr(value, "tolist"):
    return value.tolist()
  raise TypeError(f"Cannot write {type(value).__name__} to metrics.jsonl.")

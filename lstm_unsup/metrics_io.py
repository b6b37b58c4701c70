"""Where a run writes what it measured: config.json, metrics.jsonl and,
when tensorboardX is installed, TensorBoard event files (no TensorFlow).

A kill at any moment leaves both files readable: config.json and a
shortened metrics.jsonl are written to a temporary file and renamed over
the old one, and a last line torn by a kill mid-append is dropped when read.
"""

import json
import math
import os
from typing import Any

from absl import logging


def _write_atomically(path: str, text: str) -> None:
  """Writes `text` to `path` through a temporary file and a rename."""
  partial = f"{path}.partial{os.getpid()}"
  try:
    with open(partial, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(partial, path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)


def write_config(workdir: str, config_dict: dict[str, Any]) -> None:
  os.makedirs(workdir, exist_ok=True)
  text = json.dumps(config_dict, indent=2, sort_keys=True)
  _write_atomically(os.path.join(workdir, "config.json"), text)


def read_config(workdir: str) -> dict[str, Any] | None:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  """Every record of a run's metrics.jsonl, in order."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  return [json.loads(line) for line in _complete_lines(path)]


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


def _complete_lines(path: str) -> list[str]:
  """The non-empty lines of a JSONL file, less a last line torn by a kill
  (no newline, not valid JSON); a bad line elsewhere is an error."""
  with open(path) as f:
    lines = [line for line in f if line.strip()]
  if lines and not lines[-1].endswith("\n"):
    try:
      json.loads(lines[-1])
      lines[-1] += "\n"
    except json.JSONDecodeError:
      logging.warning("Dropping a torn last line of %s.", path)
      lines.pop()
  for number, line in enumerate(lines, 1):
    try:
      json.loads(line)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}, line {number}, is not JSON: {e}") from e
  return lines


def _scalars(record: dict[str, Any], prefix: str = ""):
  for key, value in record.items():
    if isinstance(value, dict):
      yield from _scalars(value, f"{prefix}{key}/")
    elif isinstance(value, int | float) and not isinstance(value, bool):
      yield prefix + key, float(value)


class MetricWriter:
  """Appends one JSON line per record; mirrors scalars to TensorBoard."""

  def __init__(self, workdir: str):
    os.makedirs(workdir, exist_ok=True)
    self._path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    try:
      from tensorboardX import SummaryWriter  # noqa: PLC0415

      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
    except ImportError:
      logging.info("tensorboardX is not installed: no TensorBoard files.")

  def write(self, step: int, split: str, record: dict[str, Any]) -> None:
    record = {"step": int(step), "split": split, **record}
    with open(self._path, "a") as f:
      f.write(json.dumps(record, default=_jsonable) + "\n")
    if self._tb is not None:
      for name, value in _scalars(record):
        if name != "step" and math.isfinite(value):
          self._tb.add_scalar(f"{split}/{name}", value, step)
      self._tb.flush()

  def truncate_after(self, step: int) -> None:
    """Drops records past `step` (written after the checkpoint resumed)."""
    if not os.path.exists(self._path):
      return
    with open(self._path) as f:
      size = len(f.read())
    kept = [
      line
      for line in _complete_lines(self._path)
      if json.loads(line)["step"] <= step
    ]
    if sum(map(len, kept)) != size:
      _write_atomically(self._path, "".join(kept))

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def _jsonable(value):
  if hasattr(value, "tolist"):
    return value.tolist()
  raise TypeError(f"Cannot write {type(value).__name__} to metrics.jsonl.")

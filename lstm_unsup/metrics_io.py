"""Where a run writes what it measured: config.json, metrics.jsonl and,
when tensorboardX is installed, TensorBoard event files (no TensorFlow)."""

import json
import math
import os
from typing import Any

from absl import logging


def write_config(workdir: str, config_dict: dict[str, Any]) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump(config_dict, f, indent=2, sort_keys=True)


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
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


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
      lines = [ln for ln in f if ln.strip()]
    kept = [ln for ln in lines if json.loads(ln)["step"] <= step]
    if len(kept) != len(lines):
      with open(self._path, "w") as f:
        f.writelines(kept)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def _jsonable(value):
  if hasattr(value, "tolist"):
    return value.tolist()
  raise TypeError(f"Cannot write {type(value).__name__} to metrics.jsonl.")

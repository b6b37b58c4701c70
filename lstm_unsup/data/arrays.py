"""Videos as arrays: the `Videos` type every reader returns, and videos
given as one array or an .npy / .npz file (`from_array`), with the layout
("NT", "TN") found from how frames correlate when not stated.
"""

import dataclasses
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from absl import logging

from lstm_unsup.data.errors import DataError

LAYOUTS = ("auto", "NT", "TN")


@dataclasses.dataclass(frozen=True, eq=False)
class Videos:
  """Videos (T, H, W, C) with their names; `lazy`: read when indexed."""

  frames: Sequence[np.ndarray]
  names: tuple[str, ...]
  description: str
  lazy: bool = False

  def __len__(self) -> int:
    return len(self.names)

  @property
  def channels(self) -> int:
    return int(self.frames[0].shape[-1])


def check_pixels(array: np.ndarray, what: str) -> None:
  if array.dtype == np.uint8:
    return
  if array.dtype.kind != "f":
    raise DataError(
      f"{what} has dtype {array.dtype}; expected uint8, or float in [0, 1]."
    )
  low, high = float(np.min(array)), float(np.max(array))
  if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or high > 1:
    raise DataError(
      f"{what} holds values in [{low:g}, {high:g}]; float pixels must be "
      "finite and in [0, 1] (or give uint8)."
    )


def make_videos(frames, names, description: str) -> Videos:
  """Videos after checking that they agree on channels (1 or 3)."""
  channels = {}
  for name, video in zip(names, frames):
    channels.setdefault(int(video.shape[-1]), name)
  if len(channels) > 1:
    (c1, a), (c2, b) = sorted(channels.items())[:2]
    raise DataError(
      f"Videos differ in channels: {a} has {c1}, {b} has {c2}; convert "
      "them all to grey or all to colour."
    )
  return Videos(tuple(frames), tuple(names), description)


def _time_correlation(array: np.ndarray, axis: int) -> float:
  """Mean correlation of neighbouring frames along `axis` (0 or 1) of a
  small sample of an (A, B, H, W, C) array."""
  sample = np.asarray(array[:16, :16], np.float32)
  flat = sample.reshape(*sample.shape[:2], -1)
  flat = flat[..., :: max(1, flat.shape[-1] // 4096)]
  flat = np.moveaxis(flat, axis, 0)
  flat = flat - flat.mean(-1, keepdims=True)
  x, y = flat[:-1], flat[1:]
  norm = np.sqrt((x * x).sum(-1) * (y * y).sum(-1))
  return float(((x * y).sum(-1) / np.maximum(norm, 1e-12)).mean())


def detect_layout(array: np.ndarray, what: str) -> str:
  """ "NT" or "TN" for an (A, B, H, W, C) array, or a DataError asking to
  state it when the data do not tell."""
  A, B = array.shape[:2]
  if A == 1 or B == 1:  # a one-frame video is no video: the other is time
    return "TN" if B == 1 < A else "NT"
  along_0, along_1 = _time_correlation(array, 0), _time_correlation(array, 1)
  if abs(along_1 - along_0) < 0.1:
    raise DataError(
      f"{what} has shape {tuple(array.shape)}, and its data do not tell "
      f"whether axis 0 is videos or time (neighbouring frames correlate "
      f"{along_0:.2f} along axis 0, {along_1:.2f} along axis 1); state the "
      "layout: 'NT' for (N, T, ...) or 'TN' for (T, N, ...) "
      "(--config.data.layout or --layout)."
    )
  layout = "NT" if along_1 > along_0 else "TN"
  logging.info(
    "%s: layout %s detected (neighbouring frames correlate %.2f along "
    "axis 0, %.2f along axis 1).",
    what,
    layout,
    along_0,
    along_1,
  )
  return layout


def from_array(array, layout: str = "auto", what: str = "The array"):
  """Videos from an (N, T, H, W[, C]) array, or (T, N, ...) with "TN"."""
  array = np.asarray(array)
  if layout not in LAYOUTS:
    raise DataError(f"layout={layout!r} is not one of {LAYOUTS}.")
  if array.ndim not in (4, 5) or (array.ndim == 5 and array.shape[-1] > 3):
    raise DataError(
      f"{what} has shape {tuple(array.shape)}; expected (N, T, H, W) grey "
      "or (N, T, H, W, C) with C = 1 or 3 (time-major: (T, N, ...)); one "
      "video (T, H, W, C) needs a leading axis."
    )
  if array.ndim == 5 and array.shape[-1] == 2:
    raise DataError(f"{what} has 2 channels; expected 1 (grey) or 3.")
  if array.ndim == 4 and array.shape[-1] == 3:  # frames 3 pixels wide?
    raise DataError(
      f"{what} has shape {tuple(array.shape)}: grey frames 3 pixels wide, or "
      "one colour video (T, H, W, 3)? Give one video a leading axis: (1, T, "
      "H, W, 3)."
    )
  check_pixels(array, what)
  array = array[..., None] if array.ndim == 4 else array
  if min(array.shape[:2]) == 0:
    raise DataError(f"{what} has shape {tuple(array.shape)}: no frames.")
  layout = detect_layout(array, what) if layout == "auto" else layout
  array = array.swapaxes(0, 1) if layout == "TN" else array
  N, T, H, W, C = array.shape
  major = "time-major" if layout == "TN" else "batch-major"
  return Videos(
    tuple(array),
    tuple(f"{what}[video {i}]" for i in range(N)),
    f"{N} videos of {T} frames of {W}x{H}, {C} channel(s), in {what} ({major})",
  )


def _read_array_file(path: Path, layout: str) -> Videos:
  try:
    if path.suffix == ".npy":
      array, what = np.load(path, mmap_mode="r"), str(path)
    else:
      with np.load(path) as archive:
        keys = list(archive.keys())
        key = keys[0] if len(keys) == 1 else "videos"
        array = archive[key] if key in keys else None
      what = f"{path}[{key}]"
  except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
    raise DataError(f"{path} is not a readable {path.suffix} file: {e}") from e
  if array is None:
    raise DataError(
      f"{path} holds arrays {keys}; name the videos 'videos' or save only them."
    )
  return from_array(array, layout, what)

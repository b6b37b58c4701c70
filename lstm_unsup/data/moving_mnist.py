"""Moving MNIST as the authors generate it: bouncing digits, a pure function.

`generate(digits, seed, batch_size)` returns `frames_BxTxHxW`, float32 in
[0, 1], following the authors' BouncingMNISTDataHandler (data_handler.py of
mansimov/unsupervised-videos; paper section 2):

  * a digit's top-left corner starts uniformly in the unit square, which maps
    to the free range image_size - digit_size (64 - 28 = 36 px);
  * its direction is uniform on the circle, with velocity (row, column) =
    speed * (sin a, cos a) and fixed speed `step_length` = 0.1 of the free
    range (3.6 px per frame);
  * each frame first takes a step, then clamps any coordinate that left
    [0, 1] to the wall and flips that velocity component; the position is
    recorded after the step, so the drawn start is never shown;
  * pixels are floor(position * 36), and overlapping digits combine by an
    elementwise max.

Options: `bounce="reflect"` swaps clamp-and-flip for exact mirror reflection
(the TFDS moving_sequence rule; floor and step-then-record stay, so only the
wall rule changes); `speed_range=(lo, hi)` draws each digit's speed uniformly,
as the paper's text says, and then `step_length` is unused; any number of
digits and any frame size.

Where we differ from the handler on purpose: it uses numpy's global seed,
while each batch here has its own generator from (seed, stream, index), so a
batch is the same on any machine and the train / valid / test streams are
independent; and digits are drawn uniformly with replacement per batch,
where the handler walks a shuffled list (each digit is equally likely both
ways).

Speed: the two loops of the rules, stepping trajectories and pasting digits
(paste.py), run as compiled numba kernels (kernels.py), the paste split over
threads; without numba, numpy versions give identical batches about half as
fast. benchmarks/data_generator.py compares both with the same rules as a
plain Python loop (reference_loop.py); the README has its numbers.

Shapes: B batch, M digits per sequence, T frames, H x W frame, h x w digit.

See it: `python -m lstm_unsup.data.moving_mnist --preview out.gif`.
"""

import argparse
import dataclasses
import numbers
from collections.abc import Iterator, Sequence

import numpy as np

from lstm_unsup.data import kernels
from lstm_unsup.data.digits import Digits
from lstm_unsup.data.paste import paste_from_pool

STREAMS = {"train": 0, "valid": 1, "test": 2}
BOUNCES = ("authors", "reflect")
SeedLike = int | Sequence[int]


def batch_rng(
  seed: SeedLike, stream: str | int = "train", index: int = 0
) -> np.random.Generator:
  """The random generator of one batch, independent per (seed, stream, index).

  numpy's SeedSequence spawn keys give statistically independent streams, so
  no training batch shares its draws with a validation or test batch.
  """
  if isinstance(seed, numbers.Integral):
    entropy = int(seed)
  else:
    entropy = tuple(int(s) for s in seed)
  if np.any(np.asarray(entropy) < 0):
    raise ValueError(f"Seeds must be non-negative integers; got {seed!r}.")
  if isinstance(stream, str):
    if stream not in STREAMS:
      raise ValueError(f"Unknown stream {stream!r}; choose one of {STREAMS}.")
    stream = STREAMS[stream]
  if stream < 0 or index < 0:
    raise ValueError(f"stream and index must be >= 0; got {stream}, {index}.")
  sequence = np.random.SeedSequence(entropy, spawn_key=(stream, index))
  return np.random.Generator(np.random.PCG64(sequence))


@dataclasses.dataclass(frozen=True)
class Motion:
  """The random draws behind one batch; everything else is deterministic."""

  digit_ids_BxM: np.ndarray  # indices into the digit pool
  start_BxMx2: np.ndarray  # (row, column) of the top-left corner in [0, 1)
  velocity_BxMx2: np.ndarray  # step per frame, in units of the free range


def draw_motion(
  rng: np.random.Generator,
  batch_size: int,
  num_digits: int,
  pool_size: int,
  *,
  step_length: float = 0.1,
  speed_range: tuple[float, float] | None = None,
) -> Motion:
  """Draws digits, starts, directions (and speeds), in this fixed order."""
  shape = (batch_size, num_digits)
  digit_ids = rng.integers(0, pool_size, size=shape)
  start = rng.random(shape + (2,))
  angle = 2 * np.pi * rng.random(shape)
  if speed_range is None:
    speed = np.full(shape, float(step_length))
  else:
    speed = rng.uniform(speed_range[0], speed_range[1], size=shape)
  direction = np.stack([np.sin(angle), np.cos(angle)], axis=-1)
  return Motion(digit_ids, start, speed[..., None] * direction)


def trajectories(
  start_BxMx2: np.ndarray,
  velocity_BxMx2: np.ndarray,
  num_frames: int,
  bounce: str = "authors",
  backend: str = "auto",
) -> np.ndarray:
  """Positions in the unit square after each of the T steps: BxMxTx2.

  The authors' rule is sequential in time: with numba (backend "auto" or
  "numba") a compiled loop runs it, else numpy steps all digits at once;
  the two agree exactly.
  """
  if bounce == "reflect":  # mirror at 0 and 1: fold the straight line
    steps_T = np.arange(1, num_frames + 1, dtype=np.float64)
    line = start_BxMx2[..., None, :] + (
      velocity_BxMx2[..., None, :] * steps_T[:, None]
    )
    folded = np.mod(line, 2.0)
    return np.minimum(folded, 2.0 - folded)
  if bounce != "authors":
    raise ValueError(f"Unknown bounce {bounce!r}; choose one of {BOUNCES}.")
  position = np.array(start_BxMx2, dtype=np.float64)
  velocity = np.array(velocity_BxMx2, dtype=np.float64)
  compiled = kernels.for_backend(backend)
  if compiled is not None:
    return compiled.authors_steps(position, velocity, num_frames)
  out_BxMxTx2 = np.empty(position.shape[:-1] + (num_frames, 2))
  for t in range(num_frames):  # sequential in time, vectorised over digits
    position += velocity
    at_wall = (position <= 0.0) | (position >= 1.0)
    np.clip(position, 0.0, 1.0, out=position)
    np.negative(velocity, out=velocity, where=at_wall)
    out_BxMxTx2[..., t, :] = position
  return out_BxMxTx2


def to_pixels(unit_BxMxTx2: np.ndarray, free_range: tuple[int, int]):
  """Top-left (row, column) in pixels: floor(position * free range)."""
  return np.floor(unit_BxMxTx2 * np.asarray(free_range)).astype(np.int64)


def _digit_pool(digits: Digits | np.ndarray) -> np.ndarray:
  pool = digits.images_Nx28x28 if isinstance(digits, Digits) else digits
  pool = np.asarray(pool, dtype=np.float32)
  if pool.ndim != 3 or 0 in pool.shape:
    raise ValueError(
      f"digits must be a non-empty (N, h, w) array of images; got shape "
      f"{pool.shape}."
    )
  return pool


def generate(
  digits: Digits | np.ndarray,
  seed: SeedLike,
  batch_size: int,
  *,
  num_frames: int = 20,
  num_digits: int = 2,
  image_size: int | tuple[int, int] = 64,
  step_length: float = 0.1,
  return_info: bool = False,
  bounce: str = "authors",
  speed_range: tuple[float, float] | None = None,
  stream: str | int = "train",
  index: int = 0,
  backend: str = "auto",
  rows: slice | None = None,
):
  """One batch of Moving MNIST, a pure function of (seed, stream, index).

  Args:
    digits: a `Digits` or an (N, h, w) array with values in [0, 1].
    seed: an int or a tuple of ints.
    image_size: H = W, or (H, W).
    stream, index: which batch ("train", "valid", "test" or an int; and its
      number in that stream).
    backend: how digits are pasted: "auto", "numba" or "numpy" (identical
      frames; see paste.py).
    rows: only these sequences of the batch (each of several processes
      pastes its own; the motion of the whole batch is drawn, which is
      cheap, so they are the same rows as in the whole batch).

  Returns:
    frames_BxTxHxW (float32), and with `return_info` also a dict holding
    `positions` (BxMxTx2 int, top-left row and column in pixels),
    `digit_ids` (BxM, indices into `digits`), `unit_positions` (BxMxTx2,
    the same in the unit square) and `velocity` (BxMx2, the initial step).
  """
  pool = _digit_pool(digits)
  H, W = (image_size, image_size) if np.isscalar(image_size) else image_size
  h, w = pool.shape[1:]
  if batch_size < 1 or num_frames < 1 or num_digits < 1:
    raise ValueError(
      f"batch_size, num_frames and num_digits must be >= 1; got "
      f"{batch_size}, {num_frames}, {num_digits}."
    )
  if H < h or W < w:
    raise ValueError(f"A {H}x{W} frame cannot hold {h}x{w} digits.")
  if bounce not in BOUNCES:
    raise ValueError(f"Unknown bounce {bounce!r}; choose one of {BOUNCES}.")
  if speed_range is not None and not 0 <= speed_range[0] <= speed_range[1]:
    raise ValueError(f"speed_range must be 0 <= lo <= hi; got {speed_range}.")
  if step_length < 0:
    raise ValueError(f"step_length must be >= 0; got {step_length}.")
  rng = batch_rng(seed, stream, index)
  motion = draw_motion(
    rng,
    batch_size,
    num_digits,
    len(pool),
    step_length=step_length,
    speed_range=speed_range,
  )
  unit = trajectories(
    motion.start_BxMx2, motion.velocity_BxMx2, num_frames, bounce, backend
  )
  positions = to_pixels(unit, (H - h, W - w))
  rows = slice(None) if rows is None else rows
  frames = paste_from_pool(
    pool, motion.digit_ids_BxM[rows], positions[rows], (H, W), backend
  )
  if not return_info:
    return frames
  info = {
    "positions": positions[rows],
    "digit_ids": motion.digit_ids_BxM[rows],
    "unit_positions": unit[rows],
    "velocity": motion.velocity_BxMx2[rows],
  }
  return frames, info


def batches(
  digits: Digits | np.ndarray,
  seed: SeedLike,
  batch_size: int,
  *,
  stream: str | int = "train",
  start_index: int = 0,
  **options,
) -> Iterator[np.ndarray]:
  """Batches `start_index`, `start_index + 1`, ... of one stream, forever."""
  index = start_index
  while True:
    yield generate(
      digits, seed, batch_size, stream=stream, index=index, **options
    )
    index += 1


def main(argv: Sequence[str] | None = None) -> None:
  """Writes a GIF and a PNG strip of a few sequences (see --help)."""
  from absl import logging

  from lstm_unsup.data import preview
  from lstm_unsup.data.digits import SOURCES, load_digits

  parser = argparse.ArgumentParser(description=main.__doc__)
  parser.add_argument("--preview", required=True, help="output .gif path")
  parser.add_argument("--source", default="auto", choices=SOURCES)
  parser.add_argument("--split", default="train")
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--num_sequences", type=int, default=4)
  parser.add_argument("--num_digits", type=int, default=2)
  parser.add_argument("--num_frames", type=int, default=20)
  parser.add_argument("--bounce", default="authors", choices=BOUNCES)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.INFO)
  digits = load_digits(args.source, args.split, args.data_dir)
  frames = generate(
    digits,
    args.seed,
    args.num_sequences,
    num_frames=args.num_frames,
    num_digits=args.num_digits,
    bounce=args.bounce,
    stream=args.split,
  )
  gif, png = preview.save_preview(frames, args.preview)
  print(f"Digit source: {digits.source}")
  print(f"Wrote {gif} and {png}: {args.num_sequences} sequences.")


if __name__ == "__main__":
  main()

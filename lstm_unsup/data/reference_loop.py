"""The authors' rules as a plain loop: one digit, one frame at a time.

`generate_loop` builds the same batch as `moving_mnist.generate` from the
same random draws, written the straightforward way (a Python trajectory per
digit, one slice paste per digit per frame), much as the authors' handler
does. It is the test oracle for the vectorised generator (the two must agree
exactly) and the baseline in benchmarks/data_generator.py. Use `generate`.
"""

import numpy as np

from lstm_unsup.data.digits import Digits
from lstm_unsup.data.moving_mnist import batch_rng, draw_motion


def trajectory_loop(
  start: tuple[float, float],
  velocity: tuple[float, float],
  num_frames: int,
  bounce: str = "authors",
) -> list[tuple[float, float]]:
  """Unit-square (row, column) after each step, one step at a time."""
  y, x = float(start[0]), float(start[1])
  v_y, v_x = float(velocity[0]), float(velocity[1])
  out = []
  for t in range(num_frames):
    if bounce == "authors":  # step, then clamp to the wall and flip
      y += v_y
      x += v_x
      if y <= 0:
        y, v_y = 0.0, -v_y
      if y >= 1:
        y, v_y = 1.0, -v_y
      if x <= 0:
        x, v_x = 0.0, -v_x
      if x >= 1:
        x, v_x = 1.0, -v_x
      out.append((y, x))
    else:  # exact reflection: fold the straight line into [0, 1]
      folded = []
      for p0, v in ((start[0], velocity[0]), (start[1], velocity[1])):
        p = (float(p0) + float(v) * (t + 1)) % 2.0
        folded.append(min(p, 2.0 - p))
      out.append((folded[0], folded[1]))
  return out


def generate_loop(
  digits: Digits | np.ndarray,
  seed,
  batch_size: int,
  *,
  num_frames: int = 20,
  num_digits: int = 2,
  image_size: int | tuple[int, int] = 64,
  step_length: float = 0.1,
  bounce: str = "authors",
  speed_range: tuple[float, float] | None = None,
  stream: str | int = "train",
  index: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
  """Frames (BxTxHxW) and pixel positions (BxMxTx2), digit by digit."""
  pool = digits.images_Nx28x28 if isinstance(digits, Digits) else digits
  pool = np.asarray(pool, dtype=np.float32)
  H, W = (image_size, image_size) if np.isscalar(image_size) else image_size
  h, w = pool.shape[1:]
  rng = batch_rng(seed, stream, index)
  motion = draw_motion(
    rng,
    batch_size,
    num_digits,
    len(pool),
    step_length=step_length,
    speed_range=speed_range,
  )
  frames = np.zeros((batch_size, num_frames, H, W), np.float32)
  positions = np.zeros((batch_size, num_digits, num_frames, 2), np.int64)
  for b in range(batch_size):
    for m in range(num_digits):
      digit = pool[motion.digit_ids_BxM[b, m]]
      path = trajectory_loop(
        motion.start_BxMx2[b, m],
        motion.velocity_BxMx2[b, m],
        num_frames,
        bounce,
      )
      for t, (y, x) in enumerate(path):
        top, left = int(y * (H - h)), int(x * (W - w))
        positions[b, m, t] = top, left
        window = frames[b, t, top : top + h, left : left + w]
        np.maximum(window, digit, out=window)
  return frames, positions

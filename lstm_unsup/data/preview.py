"""Pictures of the data: an animated GIF and a PNG strip of a few sequences.

`save_preview(frames, "out.gif")` writes `out.gif` (the sequences side by
side, one animation frame per time step) and `out.png` (one row per
sequence, time running left to right), so a person can see what the model
will see. Frames are BxTxHxW grey levels in [0, 1] or BxTxHxWx3 colour;
values outside [0, 1] (normalised patches) are rescaled for display.
"""

from pathlib import Path

import numpy as np
from PIL import Image

GAP = 2  # pixels between tiles
GAP_LEVEL = 128  # mid-grey, so black digits' borders stay visible


def _to_uint8(frames: np.ndarray) -> np.ndarray:
  frames = np.asarray(frames, dtype=np.float32)
  low, high = float(frames.min()), float(frames.max())
  if low < 0 or high > 1:  # e.g. per-channel normalised patches
    frames = (frames - low) / max(high - low, 1e-8)
  return np.round(np.clip(frames, 0, 1) * 255).astype(np.uint8)


def _tile(tiles_RxCxHxW, gap: int = GAP) -> np.ndarray:
  """A grid image from R x C tiles (trailing colour axis allowed)."""
  R, C, H, W = tiles_RxCxHxW.shape[:4]
  extra = tiles_RxCxHxW.shape[4:]
  shape = (R * (H + gap) - gap, C * (W + gap) - gap) + extra
  grid = np.full(shape, GAP_LEVEL, np.uint8)
  for r in range(R):
    for c in range(C):
      top, left = r * (H + gap), c * (W + gap)
      grid[top : top + H, left : left + W] = tiles_RxCxHxW[r, c]
  return grid


def strip(frames: np.ndarray, scale: int = 1) -> np.ndarray:
  """One row per sequence, time left to right, as a uint8 image."""
  image = _tile(_to_uint8(frames))
  return image.repeat(scale, axis=0).repeat(scale, axis=1)


def save_preview(
  frames: np.ndarray, gif_path: str | Path, *, scale: int = 2, ms: int = 100
) -> tuple[Path, Path]:
  """Writes the GIF at `gif_path` and a PNG strip with the same stem."""
  frames = np.asarray(frames)
  if frames.ndim not in (4, 5) or (frames.ndim == 5 and frames.shape[-1] != 3):
    raise ValueError(
      f"Expected BxTxHxW or BxTxHxWx3 frames; got shape {frames.shape}."
    )
  gif_path = Path(gif_path).with_suffix(".gif")
  png_path = gif_path.with_suffix(".png")
  gif_path.parent.mkdir(parents=True, exist_ok=True)
  pixels = _to_uint8(frames)
  # Animation step t: all sequences' frame t side by side.
  steps = [
    _tile(pixels[None, :, t]).repeat(scale, axis=0).repeat(scale, axis=1)
    for t in range(pixels.shape[1])
  ]
  images = [Image.fromarray(step) for step in steps]
  images[0].save(
    gif_path, save_all=True, append_images=images[1:], duration=ms, loop=0
  )
  Image.fromarray(strip(frames, scale)).save(png_path)
  return gif_path, png_path

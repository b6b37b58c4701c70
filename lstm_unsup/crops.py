"""Crops of a run's frame size cut from larger videos, for `features`:
"grid" (every tile, row-major from the top-left), "centre" (one) or
"random" (`num_crops` from a seed, placed as training places its crops).
features.py's docstring says what each gives.
"""

import numpy as np

from lstm_unsup.data.errors import DataError

CROPS = ("grid", "centre", "random")


def check_crops(crops: str, num_crops: int) -> None:
  if crops not in CROPS:
    raise ValueError(f"crops={crops!r} is not one of {CROPS}.")
  if num_crops < 1 or (crops != "random" and num_crops != 1):
    raise ValueError(
      f"num_crops={num_crops}: give a number >= 1, and only with "
      'crops="random" (grid and centre choose their crops).'
    )


def crop_corners(
  frame_sizes, size: int, crops: str, num_crops: int = 1, *, seed: int = 0
) -> list[np.ndarray]:
  """Top-left corners (N x 2: row, column) of the size x size crops of
  each video, given its frames' (H, W); `crops` as the module says.
  Random corners are drawn per video from one stream of `seed` (video b's
  depend on b and the seed, not on the other videos), uniformly over every
  position, as training's crops are (data/patches.py)."""
  check_crops(crops, num_crops)
  rng = np.random.default_rng(seed)
  fractions_BxNx2 = rng.random((len(frame_sizes), num_crops, 2))
  corners = []
  for (H, W), fraction_Nx2 in zip(frame_sizes, fractions_BxNx2):
    free_2 = np.array([H - size, W - size])
    if crops == "grid":
      corner_Nx2 = size * np.argwhere(np.ones((H // size, W // size)))
    elif crops == "centre":
      corner_Nx2 = free_2[None] // 2
    else:
      corner_Nx2 = np.floor(fraction_Nx2 * (free_2 + 1)).astype(int)
    corners.append(corner_Nx2)
  return corners


def cut_crops(
  videos, names, size: int, crops: str, num_crops: int = 1, *, seed: int = 0
) -> np.ndarray:
  """Crops (B, N, T, S, S, C) of videos (each T x H x W x C, H and W >= S,
  sizes may differ) at `crop_corners`. Videos whose frames make grids of
  different shapes are refused, naming the first two."""
  sizes = [tuple(v.shape[1:3]) for v in videos]
  if crops == "grid":
    grids = {}  # each grid's shape: the first video that makes it
    for name, (H, W) in zip(names, sizes):
      grids.setdefault((H // size, W // size), name)
    if len(grids) > 1:
      (g1, a), (g2, b) = list(grids.items())[:2]
      raise DataError(
        f"{a} makes a {g1[0]}x{g1[1]} grid of {size}x{size} tiles and {b} "
        f"a {g2[0]}x{g2[1]} one: --crops=grid needs frames that make one "
        "grid; give --crops=centre or --crops=random instead."
      )
  corners = crop_corners(sizes, size, crops, num_crops, seed=seed)
  return np.stack(
    [
      np.stack([v[:, r : r + size, c : c + size] for r, c in corner_Nx2])
      for v, corner_Nx2 in zip(videos, corners)
    ]
  )


def describe_crops(
  frame_sizes, size: int, crops: str, num_crops: int = 1, seed: int = 0
) -> str:
  """What `crops` cuts from frames of these (H, W), in words."""
  if crops == "centre":
    return f"the centre {size}x{size} crop of each video"
  if crops == "random":
    return (
      f"{num_crops} random {size}x{size} crop(s) of each video (seed {seed})"
    )
  (H, W), *rest = frame_sizes
  rows, cols = H // size, W // size
  grid = (
    f"{rows * cols} tiles of {size}x{size} per video ({rows} rows x {cols} "
    "columns of tiles, row-major from the top-left)"
  )
  if any(tuple(hw) != (H, W) for hw in rest):
    left = f"H mod {size} rows and W mod {size} columns of each frame"
  elif H % size == W % size == 0:
    return f"{grid}, covering each frame of (H, W) = ({H}, {W})"
  else:
    left = f"{H % size} row(s) and {W % size} column(s) of each frame"
  return f"{grid}; the last {left} are not encoded"

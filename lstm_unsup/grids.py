"""Frames as grids of patches, the ConvLSTM models' input and output.

Shi et al. 2015 (section 4.1) feed a ConvLSTM each 64x64 Moving MNIST frame
as a 16x16 grid of 4x4 patches, 16 values deep ("space to depth"); its
predictions come back in the same layout and are put back into frames.
The rest of the pipeline (data, losses, metrics, figures) sees flat frames
of D = S x S x C values, laid out as rows, columns, channels; this module
converts between the two:

  frames_BxTxD  <->  grid_BxTxHxWxP,  H = W = S / p,  P = p * p * C

Frames are square (every data set here makes S x S frames) with 1 or 3
channels: D = S^2 or 3 S^2, which tells S and C apart (3 S^2 is never a
square).
"""

import math

import jax
import jax.numpy as jnp

Array = jax.Array


def frame_geometry(D: int) -> tuple[int, int]:
  """(S, C) of flat square frames of D values: grey or colour."""
  for C in (1, 3):
    S = math.isqrt(D // C)
    if D % C == 0 and S * S * C == D:
      return S, C
  raise ValueError(
    f"Frames of {D} values are neither S x S grey nor S x S x 3 colour; "
    "a ConvLSTM model reads square frames."
  )


def grid_shape(D: int, patch: int) -> tuple[int, int, int]:
  """(H, W, P): the grid of p x p patches that frames of D values make."""
  S, C = frame_geometry(D)
  if S % patch:
    raise ValueError(
      f"Frames of {S}x{S} pixels do not split into patches of {patch}x"
      f"{patch} (config.model.patch_size): choose a divisor of {S}."
    )
  return S // patch, S // patch, patch * patch * C


def to_grid(frames_BxTxD: Array, patch: int) -> Array:
  """Flat frames as grids of patches, B x T x H x W x P."""
  B, T, D = frames_BxTxD.shape
  H, W, P = grid_shape(D, patch)
  C = P // (patch * patch)
  x = frames_BxTxD.reshape(B, T, H, patch, W, patch, C)
  x = jnp.transpose(x, (0, 1, 2, 4, 3, 5, 6))  # B T H W (p p C)
  return x.reshape(B, T, H, W, P)


def from_grid(grid_BxTxHxWxP: Array, patch: int) -> Array:
  """Grids of patches back as flat frames, B x T x D (inverse of to_grid)."""
  B, T, H, W, P = grid_BxTxHxWxP.shape
  C = P // (patch * patch)
  x = grid_BxTxHxWxP.reshape(B, T, H, W, patch, patch, C)
  x = jnp.transpose(x, (0, 1, 2, 4, 3, 5, 6))  # B T H p W p C
  return x.reshape(B, T, H * patch * W * patch * C)

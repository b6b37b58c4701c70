"""Tests of frames as grids of patches (space to depth and back)."""

import numpy as np
import pytest

from lstm_unsup import grids


def test_grey_frames_become_a_grid_of_patches_and_come_back():
  frames = np.arange(2 * 3 * 8 * 8, dtype=np.float32).reshape(2, 3, 64)
  grid = np.asarray(grids.to_grid(frames, 4))
  assert grid.shape == (2, 3, 2, 2, 16)
  # Grid cell (0, 1) holds rows 0..3 and columns 4..7, row by row.
  picture = frames.reshape(2, 3, 8, 8)
  np.testing.assert_array_equal(
    grid[1, 2, 0, 1], picture[1, 2, 0:4, 4:8].reshape(-1)
  )
  np.testing.assert_array_equal(grids.from_grid(grid, 4), frames)


def test_colour_frames_keep_their_channels_in_each_patch():
  frames = np.random.default_rng(0).random((1, 2, 6 * 6 * 3), np.float32)
  assert grids.frame_geometry(frames.shape[-1]) == (6, 3)
  grid = np.asarray(grids.to_grid(frames, 2))
  assert grid.shape == (1, 2, 3, 3, 12)
  picture = frames.reshape(1, 2, 6, 6, 3)
  np.testing.assert_array_equal(
    grid[0, 1, 2, 0], picture[0, 1, 4:6, 0:2].reshape(-1)
  )
  np.testing.assert_array_equal(grids.from_grid(grid, 2), frames)


def test_frames_that_make_no_grid_are_refused():
  with pytest.raises(ValueError, match="square"):
    grids.frame_geometry(4 * 5)
  with pytest.raises(ValueError, match="patch_size"):
    grids.grid_shape(64 * 64, 5)

"""Pasting digits: both backends, the thread split, errors and fallback."""

import numpy as np
import pytest

from lstm_unsup.data import kernels, paste


def _digits_and_positions(B=7, M=3, T=23, h=5, w=4, H=12, W=9, seed=0):
  rng = np.random.default_rng(seed)
  digits = rng.random((B, M, h, w), dtype=np.float32)
  rows = rng.integers(0, H - h + 1, (B, M, T))
  cols = rng.integers(0, W - w + 1, (B, M, T))
  return digits, np.stack([rows, cols], -1), (H, W)


def _loop(digits, positions, frame_shape):
  B, M, h, w = digits.shape
  frames = np.zeros((B, positions.shape[2], *frame_shape), np.float32)
  for b in range(B):
    for m in range(M):
      for t, (r, c) in enumerate(positions[b, m]):
        window = frames[b, t, r : r + h, c : c + w]
        np.maximum(window, digits[b, m], out=window)
  return frames


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_backends_equal_a_plain_loop(backend):
  # 7 x 23 = 161 frames: the numba path splits them over threads.
  digits, positions, frame_shape = _digits_and_positions()
  frames = paste.paste_max(digits, positions, frame_shape, backend=backend)
  assert frames.shape == (7, 23, 12, 9) and frames.dtype == np.float32
  np.testing.assert_array_equal(frames, _loop(digits, positions, frame_shape))


def test_thread_split_does_not_change_frames(monkeypatch):
  digits, positions, frame_shape = _digits_and_positions()
  threaded = paste.paste_max(digits, positions, frame_shape, backend="numba")
  monkeypatch.setattr(paste, "FRAMES_PER_THREAD", 10**9)  # one part
  single = paste.paste_max(digits, positions, frame_shape, backend="numba")
  np.testing.assert_array_equal(threaded, single)


def test_negative_pixels_paste_as_black_in_both():
  digits, positions, frame_shape = _digits_and_positions(seed=1)
  digits -= 0.5
  frames = [
    paste.paste_max(digits, positions, frame_shape, backend=b)
    for b in ("numba", "numpy")
  ]
  np.testing.assert_array_equal(frames[0], frames[1])
  assert frames[0].min() == 0.0


def test_auto_uses_numba_when_it_imports():
  assert paste.backend_in_use() == "numba"


def test_falls_back_to_numpy_without_numba(monkeypatch):
  digits, positions, frame_shape = _digits_and_positions()
  expected = paste.paste_max(digits, positions, frame_shape, backend="numpy")
  monkeypatch.setattr(kernels, "compiled", lambda: None)  # numba missing
  assert paste.backend_in_use() == "numpy"
  frames = paste.paste_max(digits, positions, frame_shape)
  np.testing.assert_array_equal(frames, expected)
  with pytest.raises(ImportError, match="pip install numba"):
    paste.paste_max(digits, positions, frame_shape, backend="numba")


def test_bad_arguments_get_clear_errors():
  digits, positions, frame_shape = _digits_and_positions()
  with pytest.raises(ValueError, match="Unknown backend"):
    paste.paste_max(digits, positions, frame_shape, backend="cuda")
  outside = positions.copy()
  outside[0, 0, 0, 1] = frame_shape[1] - digits.shape[3] + 1
  with pytest.raises(ValueError, match="leaves the 12x9 frame"):
    paste.paste_max(digits, outside, frame_shape)
  with pytest.raises(ValueError, match="positions must be"):
    paste.paste_max(digits, positions[:, :2], frame_shape)
  with pytest.raises(ValueError, match="integer pixels"):
    paste.paste_max(digits, positions.astype(np.float32), frame_shape)
  pool = digits.reshape(-1, *digits.shape[2:])
  ids = np.arange(pool.shape[0]).reshape(digits.shape[:2])
  for bad in (ids + 1, ids - 1):  # one past the end; one below zero
    with pytest.raises(ValueError, match="must index the pool of 21"):
      paste.paste_from_pool(pool, bad, positions, frame_shape)


def test_streamed_frames_equal_a_plain_loop():
  # 16 x 16 frames: the numba path writes them by non-temporal stores.
  digits, positions, frame_shape = _digits_and_positions(H=16, W=16, seed=2)
  frames = paste.paste_max(digits, positions, frame_shape, backend="numba")
  assert frames.ctypes.data % 64 == 0
  np.testing.assert_array_equal(frames, _loop(digits, positions, frame_shape))

"""Pasting digits into frames: max-combined, a compiled kernel or numpy.

`paste_max(digits_BxMxhxw, positions_BxMxTx2, (H, W))` returns frames
(BxTxHxW, float32): every frame starts black and each digit is pasted at its
top-left pixel position, overlapping digits combined by an elementwise max.
Two implementations give identical frames (tests check both against the
plain loop of reference_loop.py):

  * "numba": a compiled kernel (kernels.py) that writes each frame once,
    while it sits in cache, reading each digit straight from the pool. It
    releases the GIL, so the frames are split across a few Python threads
    (one per core, at most MAX_THREADS); numba's own threading layer is not
    used, because its default layer aborts when two threads launch parallel
    kernels at once (a training and a validation iterator could).
  * "numpy": a strided view of the frames that holds every window a digit
    can occupy, pasted by one fancy-index read-max-write per digit slot per
    chunk of sequences. No compiler needed; about 2x slower.

"auto" takes numba when it imports (it is a dependency of this package),
else numpy.
"""

import concurrent.futures
import functools
import os

import numpy as np
from numpy.lib.stride_tricks import as_strided

from lstm_unsup.data import kernels
from lstm_unsup.data.kernels import VECTOR

CHUNK_BYTES = 2**21  # numpy path: frames pasted per chunk, 2 MiB in cache
MAX_THREADS = 4
FRAMES_PER_THREAD = 64  # below this a thread costs more than it saves


def paste_max(
  digits_BxMxhxw: np.ndarray,
  positions_BxMxTx2: np.ndarray,
  frame_shape: tuple[int, int],
  backend: str = "auto",
) -> np.ndarray:
  """Frames (BxTxHxW, float32) with every digit pasted, max-combined.

  Args:
    digits_BxMxhxw: the digit images of each sequence's M slots.
    positions_BxMxTx2: top-left (row, column) in pixels per slot and frame;
      every digit must lie inside the frame.
    frame_shape: (H, W).
    backend: "auto", "numba" or "numpy" (see the module docstring).
  """
  B, M, h, w = digits_BxMxhxw.shape
  ids_BxM = np.arange(B * M).reshape(B, M)
  pool_Nxhxw = digits_BxMxhxw.reshape(B * M, h, w)
  return paste_from_pool(
    pool_Nxhxw, ids_BxM, positions_BxMxTx2, frame_shape, backend
  )


def paste_from_pool(
  pool_Nxhxw: np.ndarray,
  ids_BxM: np.ndarray,
  positions_BxMxTx2: np.ndarray,
  frame_shape: tuple[int, int],
  backend: str = "auto",
) -> np.ndarray:
  """`paste_max` of the digits pool_Nxhxw[ids_BxM], without gathering them
  first: the compiled kernel reads each digit from the pool."""
  compiled = kernels.for_backend(backend)
  _, h, w = pool_Nxhxw.shape
  B, M = ids_BxM.shape
  H, W = frame_shape
  if positions_BxMxTx2.shape[:2] != (B, M) or positions_BxMxTx2.shape[3] != 2:
    raise ValueError(
      f"positions must be (B, M, T, 2) = ({B}, {M}, T, 2); got shape "
      f"{positions_BxMxTx2.shape}."
    )
  if not np.issubdtype(positions_BxMxTx2.dtype, np.integer):
    raise ValueError(
      f"positions must be integer pixels; got {positions_BxMxTx2.dtype}."
    )
  if ids_BxM.size and (ids_BxM.min() < 0 or ids_BxM.max() >= len(pool_Nxhxw)):
    raise ValueError(f"Digit ids must index the pool of {len(pool_Nxhxw)}.")
  rows, cols = positions_BxMxTx2[..., 0], positions_BxMxTx2[..., 1]
  if rows.size and (
    rows.min() < 0 or cols.min() < 0 or rows.max() > H - h or cols.max() > W - w
  ):
    raise ValueError(f"A {h}x{w} digit position leaves the {H}x{W} frame.")
  if compiled is None:
    digits_BxMxhxw = pool_Nxhxw[ids_BxM]
    return paste_max_numpy(digits_BxMxhxw, positions_BxMxTx2, frame_shape)
  return _paste_numba(
    compiled.paste_frames, pool_Nxhxw, ids_BxM, positions_BxMxTx2, frame_shape
  )


def backend_in_use() -> str:
  """The backend that "auto" resolves to in this process."""
  return "numba" if kernels.for_backend("auto") is not None else "numpy"


def _pool() -> concurrent.futures.ThreadPoolExecutor:
  """The paste threads of this process (a forked child gets its own)."""
  return _pool_of_process(os.getpid())


@functools.cache
def _pool_of_process(pid: int) -> concurrent.futures.ThreadPoolExecutor:
  del pid  # the cache key only
  return concurrent.futures.ThreadPoolExecutor(
    _workers(), thread_name_prefix="paste"
  )


def _workers() -> int:
  return min(MAX_THREADS, os.cpu_count() or 1)


def _paste_numba(kernel, pool_Nxhxw, ids_BxM, positions_BxMxTx2, frame_shape):
  """Runs the kernel on contiguous ranges of frames, one per thread."""
  B, T = ids_BxM.shape[0], positions_BxMxTx2.shape[2]
  H, W = frame_shape
  frames_NxHxW = _aligned_empty(B * T * H * W).reshape(B * T, H, W)
  stream = (H * W) % VECTOR == 0  # every frame starts on a 64-byte line
  arrays = (
    frames_NxHxW,
    np.ascontiguousarray(pool_Nxhxw, np.float32),
    np.ascontiguousarray(ids_BxM, np.int64),
    np.ascontiguousarray(positions_BxMxTx2, np.int64),
  )
  pool = _pool()
  parts = max(1, min(_workers(), B * T // FRAMES_PER_THREAD))
  bounds = np.linspace(0, B * T, parts + 1).astype(int)
  if parts == 1:
    kernel(*arrays, 0, B * T, stream)
  else:
    jobs = [
      pool.submit(kernel, *arrays, n0, n1, stream)
      for n0, n1 in zip(bounds[:-1], bounds[1:])
    ]
    for job in jobs:
      job.result()
  return frames_NxHxW.reshape(B, T, H, W)


def _aligned_empty(size: int) -> np.ndarray:
  """An uninitialised float32 vector whose data starts on a 64-byte line."""
  raw = np.empty(size + VECTOR, np.float32)
  skip = (-raw.ctypes.data % 64) // raw.itemsize
  return raw[skip : skip + size]


def paste_max_numpy(
  digits_BxMxhxw: np.ndarray,
  positions_BxMxTx2: np.ndarray,
  frame_shape: tuple[int, int],
) -> np.ndarray:
  """The numpy implementation of `paste_max` (same arguments and frames).

  A strided view of the frames holds every h x w window that a digit can
  occupy, indexed by (frame, row, column) without copying. One fancy-index
  read-max-write per digit slot then pastes that slot in every frame of a
  chunk of sequences at once (a slot never overlaps itself within a frame;
  the first slot lands on a black canvas, so it is just written). Chunks of
  about CHUNK_BYTES stay in cache.
  """
  B, M, h, w = digits_BxMxhxw.shape
  T = positions_BxMxTx2.shape[2]
  H, W = frame_shape
  frames = np.empty((B * T, H, W), np.float32)
  s = frames.itemsize
  windows = as_strided(
    frames,
    (B * T, H - h + 1, W - w + 1, h, w),
    (H * W * s, W * s, s, W * s, s),
  )
  frame_BxT = np.arange(B)[:, None] * T + np.arange(T)
  rows_BxMxT, cols_BxMxT = positions_BxMxTx2[..., 0], positions_BxMxTx2[..., 1]
  digits_BxMxhxw = np.maximum(digits_BxMxhxw, 0.0).astype(np.float32)
  chunk = max(1, CHUNK_BYTES // (T * H * W * s))
  for b0 in range(0, B, chunk):
    b1 = min(B, b0 + chunk)
    frames[b0 * T : b1 * T] = 0.0
    for m in range(M):
      where = (frame_BxT[b0:b1], rows_BxMxT[b0:b1, m], cols_BxMxT[b0:b1, m])
      digit_Cx1xhxw = digits_BxMxhxw[b0:b1, m, None]
      if m == 0:
        windows[where] = digit_Cx1xhxw
        continue
      region_CxTxhxw = windows[where]
      np.maximum(region_CxTxhxw, digit_Cx1xhxw, out=region_CxTxhxw)
      windows[where] = region_CxTxhxw
  return frames.reshape(B, T, H, W)

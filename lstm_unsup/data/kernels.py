"""Compiled (numba) kernels of the Moving MNIST generator.

Two loops that numpy can only run as many small array operations:

  * `paste_frames`: build a range of frames, one at a time in a scratch
    frame that stays in cache, and write each out once, by non-temporal
    stores where the layout allows (the output is not read into cache
    first: at batch 80 this takes a third off the paste);
  * `authors_steps`: the authors' step-then-clamp-and-flip trajectories,
    one digit coordinate at a time.

Each has a numpy twin that gives identical results (paste.paste_max_numpy,
moving_mnist.trajectories with backend="numpy"), used when numba is missing
and as the oracle in the tests. `compiled()` returns the kernels, or None
when numba does not import, and `for_backend` picks by the generator's
"auto", "numba" or "numpy" argument. They compile on first use (a second or
two) and are cached beside this file, so later processes load them at once.
Both release the GIL.
"""

import functools
from typing import NamedTuple


class Kernels(NamedTuple):
  paste_frames: object
  authors_steps: object


BACKENDS = ("auto", "numba", "numpy")
VECTOR = 16  # float32 values per streaming store (64 bytes, a cache line)


def for_backend(backend: str) -> Kernels | None:
  """The kernels that `backend` asks for: the compiled ones for "numba", or
  for "auto" when numba imports; None means "use the numpy twins"."""
  if backend not in BACKENDS:
    raise ValueError(f"Unknown backend {backend!r}; choose one of {BACKENDS}.")
  kernels = compiled() if backend != "numpy" else None
  if kernels is None and backend == "numba":
    raise ImportError("backend='numba' needs numba: pip install numba")
  return kernels


@functools.cache
def compiled() -> Kernels | None:
  """The numba kernels, or None when numba is not installed."""
  try:
    import numba
    import numpy as np
    from llvmlite import ir
    from numba.extending import intrinsic
  except ImportError:
    return None

  @intrinsic
  def stream_line(typingctx, dst, dst_index, src, src_index):
    """dst[dst_index:+VECTOR] = src[src_index:+VECTOR] for 1-D float32
    arrays, with a non-temporal store: the line goes to memory without
    first being read into cache. dst_index must be 64-byte aligned."""
    float32 = numba.types.float32
    if dst.dtype != float32 or src.dtype != float32:
      return None  # numba then reports a typing error

    def codegen(context, builder, signature, args):
      dst_array = context.make_array(signature.args[0])(
        context, builder, args[0]
      )
      src_array = context.make_array(signature.args[2])(
        context, builder, args[2]
      )
      line = ir.VectorType(ir.FloatType(), VECTOR).as_pointer()
      source = builder.gep(src_array.data, [args[3]])
      target = builder.gep(dst_array.data, [args[1]])
      values = builder.load(builder.bitcast(source, line), align=4)
      store = builder.store(values, builder.bitcast(target, line), align=64)
      flag = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
      store.set_metadata("nontemporal", flag)
      return context.get_dummy_value()

    return numba.types.void(dst, dst_index, src, src_index), codegen

  @numba.njit(nogil=True, cache=True)
  def paste_frames(
    frames_NxHxW, pool_Nxhxw, ids_BxM, positions_BxMxTx2, n0, n1, stream
  ):
    """Frames n0..n1-1 (flat index b * T + t): each is built in a scratch
    frame that stays in cache (cleared, then the digits pool_Nxhxw[ids_BxM[b]]
    max-pasted at their positions), then written out once; with `stream`
    by non-temporal stores (frames_NxHxW 64-byte aligned, H * W a multiple
    of VECTOR), which halves the memory traffic of a large batch."""
    M = ids_BxM.shape[1]
    h, w = pool_Nxhxw.shape[1:]
    H, W = frames_NxHxW.shape[1:]
    T = positions_BxMxTx2.shape[2]
    scratch_HW = np.empty(H * W, np.float32)
    scratch_HxW = scratch_HW.reshape(H, W)
    frames_NHW = frames_NxHxW.reshape(-1)
    for n in range(n0, n1):
      b, t = n // T, n % T
      scratch_HW[:] = 0.0
      for m in range(M):
        r, c = positions_BxMxTx2[b, m, t, 0], positions_BxMxTx2[b, m, t, 1]
        digit_hxw = pool_Nxhxw[ids_BxM[b, m]]
        for i in range(h):
          row_w = scratch_HxW[r + i, c : c + w]
          digit_row_w = digit_hxw[i]
          for j in range(w):
            row_w[j] = max(row_w[j], digit_row_w[j])
      if stream:
        for k in range(0, H * W, VECTOR):
          stream_line(frames_NHW, n * H * W + k, scratch_HW, k)
      else:
        frames_NxHxW[n] = scratch_HxW

  @numba.njit(nogil=True, cache=True)
  def authors_steps(start_BxMx2, velocity_BxMx2, num_frames):
    """Unit-square positions after each step (BxMxTx2), float64."""
    B, M, _ = start_BxMx2.shape
    out_BxMxTx2 = np.empty((B, M, num_frames, 2))
    for b in range(B):
      for m in range(M):
        for k in range(2):
          p, v = start_BxMx2[b, m, k], velocity_BxMx2[b, m, k]
          for t in range(num_frames):
            p += v
            if p <= 0.0 or p >= 1.0:  # at or past a wall: clamp and flip
              p = min(max(p, 0.0), 1.0)
              v = -v
            out_BxMxTx2[b, m, t, k] = p
    return out_BxMxTx2

  return Kernels(paste_frames, authors_steps)

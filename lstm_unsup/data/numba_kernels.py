"""The numba kernels of `kernels.py`, defined at module level.

Imported only when numba is (`kernels.compiled()`). Module-level functions
give numba's on-disk cache one stable key: as closures of a function, each
process added another compiled copy of `paste_frames` to the cache (about
195 kB a process). See `kernels.py` for what each kernel does.
"""

import numba
import numpy as np
from llvmlite import ir
from numba.extending import intrinsic

from lstm_unsup.data.kernels import VECTOR


@intrinsic
def stream_line(typingctx, dst, dst_index, src, src_index):
  """dst[dst_index:+VECTOR] = src[src_index:+VECTOR] for 1-D float32
  arrays, with a non-temporal store: the line goes to memory without
  first being read into cache. dst_index must be 64-byte aligned."""
  float32 = numba.types.float32
  if dst.dtype != float32 or src.dtype != float32:
    return None  # numba then reports a typing error

  def codegen(context, builder, signature, args):
    dst_array = context.make_array(signature.args[0])(context, builder, args[0])
    src_array = context.make_array(signature.args[2])(context, builder, args[2])
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

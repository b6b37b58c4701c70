// One pass of clipped Adam over one float32 parameter, as an XLA FFI kernel
// for the CPU. lstm_unsup/fused_adam.py compiles this file on first use and
// calls it from optimizers.clipped_adam; the maths is the same as there:
//
//   g' = scale * g                      (scale: global-norm clipping)
//   m  = (1 - b1) * g' + b1 * m         (1 - b1, 1 - b2: rounded as in
//   v  = (1 - b2) * g'^2 + b2 * v        Python, passed in, not recomputed)
//   p  = p - lr * (m / c1) / (sqrt(v / c2) + eps)   (c1, c2: bias corrections)
//
// XLA:CPU makes about ten passes over memory for this update (each
// single-output fusion rereads the gradient and moments); this kernel reads
// p, m, v, g once and writes p, m, v once, in place when the caller aliases
// them. The work is split into chunks shared by the calling thread and XLA's
// intra-op thread pool.

#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <thread>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kChunk = 1 << 16;  // elements: 256 KiB of each array

struct Work {
  const float* p;
  const float* m;
  const float* v;
  const float* g;
  float* p_out;
  float* m_out;
  float* v_out;
  int64_t n;
  int64_t num_chunks;
  float scale, lr, c1, c2, b1, b2, one_minus_b1, one_minus_b2, eps;
  std::atomic<int64_t> next{0};  // the next chunk to claim
  std::atomic<int64_t> done{0};  // chunks finished
};

void UpdateRange(const Work& w, int64_t lo, int64_t hi) {
  const float* __restrict p = w.p;
  const float* __restrict m = w.m;
  const float* __restrict v = w.v;
  const float* __restrict g = w.g;
  float* __restrict p_out = w.p_out;
  float* __restrict m_out = w.m_out;
  float* __restrict v_out = w.v_out;
  const float scale = w.scale, lr = w.lr, c1 = w.c1, c2 = w.c2;
  const float b1 = w.b1, b2 = w.b2, eps = w.eps;
  const float a1 = w.one_minus_b1, a2 = w.one_minus_b2;
#pragma omp simd
  for (int64_t i = lo; i < hi; ++i) {
    const float gs = g[i] * scale;
    const float mi = a1 * gs + b1 * m[i];
    const float vi = a2 * (gs * gs) + b2 * v[i];
    m_out[i] = mi;
    v_out[i] = vi;
    p_out[i] = p[i] - lr * (mi / c1) / (std::sqrt(vi / c2) + eps);
  }
}

// Claims chunks until none are left. A thread that starts late finds none.
void RunChunks(Work& w) {
  for (;;) {
    const int64_t c = w.next.fetch_add(1, std::memory_order_relaxed);
    if (c >= w.num_chunks) return;
    const int64_t lo = c * kChunk;
    UpdateRange(w, lo, lo + kChunk < w.n ? lo + kChunk : w.n);
    w.done.fetch_add(1, std::memory_order_release);
  }
}

ffi::Error ClippedAdamImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> p,
                           ffi::Buffer<ffi::F32> m, ffi::Buffer<ffi::F32> v,
                           ffi::Buffer<ffi::F32> g,
                           ffi::BufferR1<ffi::F32> coefficients,
                           ffi::ResultBuffer<ffi::F32> p_out,
                           ffi::ResultBuffer<ffi::F32> m_out,
                           ffi::ResultBuffer<ffi::F32> v_out, float b1,
                           float b2, float one_minus_b1, float one_minus_b2,
                           float eps) {
  if (coefficients.element_count() != 4) {
    return ffi::Error::InvalidArgument(
        "coefficients must be [scale, lr, c1, c2]");
  }
  // Shared with the helper tasks, which may outlive this call.
  auto w = std::make_shared<Work>();
  w->p = p.typed_data();
  w->m = m.typed_data();
  w->v = v.typed_data();
  w->g = g.typed_data();
  w->p_out = p_out->typed_data();
  w->m_out = m_out->typed_data();
  w->v_out = v_out->typed_data();
  w->n = static_cast<int64_t>(p.element_count());
  w->num_chunks = (w->n + kChunk - 1) / kChunk;
  const float* k = coefficients.typed_data();
  w->scale = k[0];
  w->lr = k[1];
  w->c1 = k[2];
  w->c2 = k[3];
  w->b1 = b1;
  w->b2 = b2;
  w->one_minus_b1 = one_minus_b1;
  w->one_minus_b2 = one_minus_b2;
  w->eps = eps;

  int64_t helpers = pool.num_threads() - 1;
  if (helpers > w->num_chunks - 1) helpers = w->num_chunks - 1;
  for (int64_t i = 0; i < helpers; ++i) {
    pool.Schedule([w] { RunChunks(*w); });
  }
  RunChunks(*w);
  // Every chunk is claimed; wait for those that running helpers still hold.
  while (w->done.load(std::memory_order_acquire) < w->num_chunks) {
    std::this_thread::yield();
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(LstmUnsupClippedAdam, ClippedAdamImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // p
                                  .Arg<ffi::Buffer<ffi::F32>>()  // m
                                  .Arg<ffi::Buffer<ffi::F32>>()  // v
                                  .Arg<ffi::Buffer<ffi::F32>>()  // g
                                  .Arg<ffi::BufferR1<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()  // p
                                  .Ret<ffi::Buffer<ffi::F32>>()  // m
                                  .Ret<ffi::Buffer<ffi::F32>>()  // v
                                  .Attr<float>("b1")
                                  .Attr<float>("b2")
                                  .Attr<float>("one_minus_b1")
                                  .Attr<float>("one_minus_b2")
                                  .Attr<float>("eps"));

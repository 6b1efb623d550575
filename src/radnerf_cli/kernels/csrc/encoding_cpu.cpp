// OpenMP launchers of the encoding kernels over raw pointers (no torch headers).
// The per-element math lives in encoding.h; this file only loops over points.
#include <omp.h>

#include <cstring>
#include <vector>

#include "encoding.h"

namespace radnerf {
namespace enc {
namespace {

// Small batches are not worth waking a thread team for (the same grain as torch's parallel_for).
inline int threads_for(int64_t work, int requested) {
  if (work < 32768 || requested < 1) return 1;
  return requested;
}

// Loops hand out chunks dynamically: on a machine shared with other jobs a thread that loses its
// core does not hold up the others, as a static split would.
constexpr int kChunk = 512;

// Grid loops run over blocks of points, and inside a block level by level: one level's table rows
// (at most 2^log2_hashmap_size) stay in the core's cache while a block's points read or update them.
constexpr int64_t kBlock = 4096;

template <typename T, int D, int C>
void grid_forward_impl(const GridArgs& a, const T* inputs, const T* table, T* out, int nt) {
  const int L = a.L;
  const int64_t nblocks = (a.B + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t b0 = blk * kBlock, b1 = b0 + kBlock < a.B ? b0 + kBlock : a.B;
    for (int l = 0; l < L; ++l) {
      const uint32_t size = (uint32_t)(a.offsets[l + 1] - a.offsets[l]);
      const T* level_table = table + (int64_t)a.offsets[l] * C;
      const double scale = a.scales[l];
      for (int64_t b = b0; b < b1; ++b) {
        T x[D];
        bool inside[D];
        load_point<T, D>(inputs + b * D, x, inside);
        grid_level_forward<T, D, C>(x, level_table, size, scale, a.gridtype, a.align_corners, a.interp,
                                    out + (b * L + l) * C);
      }
    }
  }
}

// Race-free scatter to the table: either each thread accumulates into its own copy of the table
// (thread 0 into grad_table itself) and the copies are summed at the end, or all threads add into
// grad_table with atomics. Which is faster depends on the table size against the number of updates.
template <typename T, int D, int C>
void grid_backward_impl(const GridArgs& a, const T* grad, const T* inputs, const T* table, T* grad_table,
                        T* grad_inputs, int strategy, int nt) {
  const int L = a.L;
  const int64_t numel = (int64_t)a.offsets[L] * C;
  const int64_t updates = a.B * L * (1 << D) * C;
  bool per_thread = strategy == 2;
  if (strategy == 0) per_thread = (int64_t)(nt - 1) * numel <= updates;  // copies cost less than the scatter
  std::vector<T*> copies(nt, nullptr);
  int team = 1;

#pragma omp parallel num_threads(nt)
  {
    const int tid = omp_get_thread_num();
    const int nth = omp_get_num_threads();
#pragma omp single
    team = nth;
    const bool use_copy = grad_table && per_thread && nth > 1;
    const bool atomic = grad_table && !per_thread && nth > 1;
    T* acc = grad_table;
    if (use_copy && tid > 0) {
      acc = new T[numel];
      std::memset(acc, 0, sizeof(T) * numel);
      copies[tid] = acc;
    }
    const int64_t nblocks = (a.B + kBlock - 1) / kBlock;
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t b0 = blk * kBlock, b1 = b0 + kBlock < a.B ? b0 + kBlock : a.B;
      for (int l = 0; l < L; ++l) {
        const uint32_t size = (uint32_t)(a.offsets[l + 1] - a.offsets[l]);
        const double scale = a.scales[l];
        const uint32_t resolution = level_resolution(scale);
        const T* level_table = table + (int64_t)a.offsets[l] * C;
        T* level_acc = grad_table ? acc + (int64_t)a.offsets[l] * C : nullptr;
        for (int64_t b = b0; b < b1; ++b) {
          T x[D];
          bool inside[D];
          load_point<T, D>(inputs + b * D, x, inside);
          uint32_t rows[1 << D];
          T w[1 << D];
          T dw[(1 << D) * D];
          grid_corners<T, D>(x, inside, (T)scale, resolution, size, a.gridtype, a.align_corners, a.interp, rows,
                             w, grad_inputs ? dw : nullptr);
          const T* g = grad + (b * L + l) * C;
          if (grad_table) {
            for (int idx = 0; idx < (1 << D); ++idx) {
              T* dst = level_acc + (int64_t)rows[idx] * C;
              for (int c = 0; c < C; ++c) {
                const T v = w[idx] * g[c];
                if (atomic) {
#pragma omp atomic
                  dst[c] += v;
                } else {
                  dst[c] += v;
                }
              }
            }
          }
          if (grad_inputs) {
            T dx[D];
            for (int d = 0; d < D; ++d) dx[d] = T(0);
            grid_level_grad_x<T, D, C>(level_table, rows, dw, g, dx);
            for (int d = 0; d < D; ++d) grad_inputs[b * D + d] += dx[d];  // a block belongs to one thread
          }
        }
      }
    }
    if (use_copy) {
      // The implicit barrier of the loop above makes every copy complete before the sum.
#pragma omp for schedule(dynamic, 64 * kChunk)
      for (int64_t i = 0; i < numel; ++i) {
        T s = grad_table[i];
        for (int t = 1; t < team; ++t) s += copies[t][i];
        grad_table[i] = s;
      }
      if (tid > 0) delete[] acc;
    }
  }
}

template <typename T, int D>
int grid_forward_d(const GridArgs& a, const T* inputs, const T* table, T* out, int nt) {
  switch (a.C) {
    case 1: grid_forward_impl<T, D, 1>(a, inputs, table, out, nt); return 0;
    case 2: grid_forward_impl<T, D, 2>(a, inputs, table, out, nt); return 0;
    case 4: grid_forward_impl<T, D, 4>(a, inputs, table, out, nt); return 0;
    case 8: grid_forward_impl<T, D, 8>(a, inputs, table, out, nt); return 0;
    default: return kErrUnsupported;
  }
}

template <typename T, int D>
int grid_backward_d(const GridArgs& a, const T* grad, const T* inputs, const T* table, T* grad_table,
                    T* grad_inputs, int strategy, int nt) {
  switch (a.C) {
    case 1: grid_backward_impl<T, D, 1>(a, grad, inputs, table, grad_table, grad_inputs, strategy, nt); return 0;
    case 2: grid_backward_impl<T, D, 2>(a, grad, inputs, table, grad_table, grad_inputs, strategy, nt); return 0;
    case 4: grid_backward_impl<T, D, 4>(a, grad, inputs, table, grad_table, grad_inputs, strategy, nt); return 0;
    case 8: grid_backward_impl<T, D, 8>(a, grad, inputs, table, grad_table, grad_inputs, strategy, nt); return 0;
    default: return kErrUnsupported;
  }
}

}  // namespace

template <typename T>
int grid_forward(const GridArgs& a, const T* inputs, const T* table, T* out, const LaunchCtx& ctx) {
  if (a.B == 0 || a.L == 0) return 0;
  const int nt = threads_for(a.B * a.L / 2, ctx.num_threads);
  if (a.D == 2) return grid_forward_d<T, 2>(a, inputs, table, out, nt);
  if (a.D == 3) return grid_forward_d<T, 3>(a, inputs, table, out, nt);
  return kErrUnsupported;
}

template <typename T>
int grid_backward(const GridArgs& a, const T* grad, const T* inputs, const T* table, T* grad_table,
                  T* grad_inputs, int strategy, const LaunchCtx& ctx) {
  if (a.B == 0 || a.L == 0) return 0;
  const int nt = threads_for(a.B * a.L / 2, ctx.num_threads);
  if (a.D == 2) return grid_backward_d<T, 2>(a, grad, inputs, table, grad_table, grad_inputs, strategy, nt);
  if (a.D == 3) return grid_backward_d<T, 3>(a, grad, inputs, table, grad_table, grad_inputs, strategy, nt);
  return kErrUnsupported;
}

template <typename T>
int sh_forward(int64_t B, int degree, const T* inputs, T* out, const LaunchCtx& ctx) {
  if (degree < 1 || degree > kMaxShDegree) return kErrUnsupported;
  const int nt = threads_for(B * degree * degree / 8, ctx.num_threads);
  const int K = degree * degree;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 8 * kChunk)
  for (int64_t b = 0; b < B; ++b) {
    const T* p = inputs + b * 3;
    sh_forward_point<T>(p[0], p[1], p[2], degree, out + b * K);
  }
  return 0;
}

template <typename T>
int sh_backward(int64_t B, int degree, const T* grad, const T* inputs, T* grad_inputs, const LaunchCtx& ctx) {
  if (degree < 1 || degree > kMaxShDegree) return kErrUnsupported;
  const int nt = threads_for(B * degree * degree / 8, ctx.num_threads);
  const int K = degree * degree;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 8 * kChunk)
  for (int64_t b = 0; b < B; ++b) {
    const T* p = inputs + b * 3;
    sh_backward_point<T>(p[0], p[1], p[2], degree, grad + b * K, grad_inputs + b * 3);
  }
  return 0;
}

template <typename T>
int freq_forward(int64_t B, int D, int n_freqs, const T* inputs, T* out, const LaunchCtx& ctx) {
  const int64_t W = (int64_t)D * (1 + 2 * n_freqs);
  const int nt = threads_for(B * W, ctx.num_threads);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 8 * kChunk)
  for (int64_t b = 0; b < B; ++b)
    for (int d = 0; d < D; ++d) freq_forward_coord<T>(inputs[b * D + d], d, D, n_freqs, out + b * W);
  return 0;
}

template <typename T>
int freq_backward(int64_t B, int D, int n_freqs, const T* grad, const T* inputs, T* grad_inputs,
                  const LaunchCtx& ctx) {
  const int64_t W = (int64_t)D * (1 + 2 * n_freqs);
  const int nt = threads_for(B * W, ctx.num_threads);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 8 * kChunk)
  for (int64_t b = 0; b < B; ++b)
    for (int d = 0; d < D; ++d)
      grad_inputs[b * D + d] = freq_backward_coord<T>(inputs[b * D + d], d, D, n_freqs, grad + b * W);
  return 0;
}

const char* error_string(int code) {
  return code == kErrUnsupported ? "unsupported input dimension, level dimension or degree" : "unknown error";
}

#define RN_INSTANTIATE(T)                                                                                   \
  template int grid_forward<T>(const GridArgs&, const T*, const T*, T*, const LaunchCtx&);                  \
  template int grid_backward<T>(const GridArgs&, const T*, const T*, const T*, T*, T*, int, const LaunchCtx&); \
  template int sh_forward<T>(int64_t, int, const T*, T*, const LaunchCtx&);                                 \
  template int sh_backward<T>(int64_t, int, const T*, const T*, T*, const LaunchCtx&);                      \
  template int freq_forward<T>(int64_t, int, int, const T*, T*, const LaunchCtx&);                          \
  template int freq_backward<T>(int64_t, int, int, const T*, const T*, T*, const LaunchCtx&);

RN_INSTANTIATE(float)
RN_INSTANTIATE(double)

}  // namespace enc
}  // namespace radnerf

// CUDA launchers of the encoding kernels (no torch headers: nvcc compiles this file alone).
// The per-element math lives in encoding.h; these kernels only map threads to points and levels.
#include <cuda_runtime.h>

#include "cuda_check.cuh"
#include "encoding.h"

namespace radnerf {
namespace enc {
namespace {

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n) { return (unsigned)((n + kThreads - 1) / kThreads); }

__device__ __forceinline__ void atomic_add(float* addr, float v) { atomicAdd(addr, v); }

__device__ __forceinline__ void atomic_add(double* addr, double v) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 600
  atomicAdd(addr, v);
#else
  unsigned long long* p = reinterpret_cast<unsigned long long*>(addr);
  unsigned long long old = *p, assumed;
  do {
    assumed = old;
    old = atomicCAS(p, assumed, __double_as_longlong(v + __longlong_as_double(assumed)));
  } while (assumed != old);
#endif
}

// One thread per (point, level); blockIdx.y is the level, so a block reads one level's table.
template <typename T, int D, int C>
__global__ void grid_forward_kernel(const GridArgs a, const T* __restrict__ inputs, const T* __restrict__ table,
                                    T* __restrict__ out) {
  const int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= a.B) return;
  const int l = blockIdx.y;
  T x[D];
  bool inside[D];
  load_point<T, D>(inputs + b * D, x, inside);
  const uint32_t size = (uint32_t)(a.offsets[l + 1] - a.offsets[l]);
  grid_level_forward<T, D, C>(x, table + (int64_t)a.offsets[l] * C, size, a.scales[l], a.gridtype, a.align_corners,
                              a.interp, out + (b * a.L + l) * C);
}

// One thread per (point, level): atomics into the table gradient and into the input gradient.
template <typename T, int D, int C>
__global__ void grid_backward_kernel(const GridArgs a, const T* __restrict__ grad, const T* __restrict__ inputs,
                                     const T* __restrict__ table, T* __restrict__ grad_table,
                                     T* __restrict__ grad_inputs) {
  const int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= a.B) return;
  const int l = blockIdx.y;
  T x[D];
  bool inside[D];
  load_point<T, D>(inputs + b * D, x, inside);
  const uint32_t size = (uint32_t)(a.offsets[l + 1] - a.offsets[l]);
  const double scale = a.scales[l];
  uint32_t rows[1 << D];
  T w[1 << D];
  T dw[(1 << D) * D];
  grid_corners<T, D>(x, inside, (T)scale, level_resolution(scale), size, a.gridtype, a.align_corners, a.interp, rows,
                     w, grad_inputs ? dw : nullptr);
  T g[C];
  RN_UNROLL
  for (int c = 0; c < C; ++c) g[c] = grad[(b * a.L + l) * C + c];
  const int64_t base = (int64_t)a.offsets[l] * C;
  if (grad_table) {
    RN_UNROLL
    for (int idx = 0; idx < (1 << D); ++idx) {
      RN_UNROLL
      for (int c = 0; c < C; ++c) atomic_add(grad_table + base + (int64_t)rows[idx] * C + c, w[idx] * g[c]);
    }
  }
  if (grad_inputs) {
    T dx[D];
    RN_UNROLL
    for (int d = 0; d < D; ++d) dx[d] = T(0);
    grid_level_grad_x<T, D, C>(table + base, rows, dw, g, dx);
    RN_UNROLL
    for (int d = 0; d < D; ++d) atomic_add(grad_inputs + b * D + d, dx[d]);
  }
}

template <typename T>
__global__ void sh_forward_kernel(int64_t B, int degree, const T* __restrict__ inputs, T* __restrict__ out) {
  const int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= B) return;
  const T* p = inputs + b * 3;
  sh_forward_point<T>(p[0], p[1], p[2], degree, out + b * degree * degree);
}

template <typename T>
__global__ void sh_backward_kernel(int64_t B, int degree, const T* __restrict__ grad, const T* __restrict__ inputs,
                                   T* __restrict__ grad_inputs) {
  const int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= B) return;
  const T* p = inputs + b * 3;
  sh_backward_point<T>(p[0], p[1], p[2], degree, grad + b * degree * degree, grad_inputs + b * 3);
}

// One thread per (point, coordinate).
template <typename T>
__global__ void freq_forward_kernel(int64_t B, int D, int n_freqs, const T* __restrict__ inputs, T* __restrict__ out) {
  const int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= B * D) return;
  const int64_t b = t / D;
  const int d = (int)(t - b * D);
  freq_forward_coord<T>(inputs[t], d, D, n_freqs, out + b * (int64_t)D * (1 + 2 * n_freqs));
}

template <typename T>
__global__ void freq_backward_kernel(int64_t B, int D, int n_freqs, const T* __restrict__ grad,
                                     const T* __restrict__ inputs, T* __restrict__ grad_inputs) {
  const int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= B * D) return;
  const int64_t b = t / D;
  const int d = (int)(t - b * D);
  grad_inputs[t] = freq_backward_coord<T>(inputs[t], d, D, n_freqs, grad + b * (int64_t)D * (1 + 2 * n_freqs));
}

template <typename T, int D, int C>
int grid_forward_launch(const GridArgs& a, const T* inputs, const T* table, T* out, cudaStream_t s) {
  const dim3 grid(blocks_for(a.B), (unsigned)a.L);
  grid_forward_kernel<T, D, C><<<grid, kThreads, 0, s>>>(a, inputs, table, out);
  return launch_status(s);
}

template <typename T, int D, int C>
int grid_backward_launch(const GridArgs& a, const T* grad, const T* inputs, const T* table, T* grad_table,
                         T* grad_inputs, cudaStream_t s) {
  const dim3 grid(blocks_for(a.B), (unsigned)a.L);
  grid_backward_kernel<T, D, C><<<grid, kThreads, 0, s>>>(a, grad, inputs, table, grad_table, grad_inputs);
  return launch_status(s);
}

template <typename T, int D>
int grid_forward_d(const GridArgs& a, const T* inputs, const T* table, T* out, cudaStream_t s) {
  switch (a.C) {
    case 1: return grid_forward_launch<T, D, 1>(a, inputs, table, out, s);
    case 2: return grid_forward_launch<T, D, 2>(a, inputs, table, out, s);
    case 4: return grid_forward_launch<T, D, 4>(a, inputs, table, out, s);
    case 8: return grid_forward_launch<T, D, 8>(a, inputs, table, out, s);
    default: return kErrUnsupported;
  }
}

template <typename T, int D>
int grid_backward_d(const GridArgs& a, const T* grad, const T* inputs, const T* table, T* grad_table,
                    T* grad_inputs, cudaStream_t s) {
  switch (a.C) {
    case 1: return grid_backward_launch<T, D, 1>(a, grad, inputs, table, grad_table, grad_inputs, s);
    case 2: return grid_backward_launch<T, D, 2>(a, grad, inputs, table, grad_table, grad_inputs, s);
    case 4: return grid_backward_launch<T, D, 4>(a, grad, inputs, table, grad_table, grad_inputs, s);
    case 8: return grid_backward_launch<T, D, 8>(a, grad, inputs, table, grad_table, grad_inputs, s);
    default: return kErrUnsupported;
  }
}

}  // namespace

template <typename T>
int grid_forward(const GridArgs& a, const T* inputs, const T* table, T* out, const LaunchCtx& ctx) {
  if (a.B == 0 || a.L == 0) return 0;
  const cudaStream_t s = (cudaStream_t)ctx.stream;
  if (a.D == 2) return grid_forward_d<T, 2>(a, inputs, table, out, s);
  if (a.D == 3) return grid_forward_d<T, 3>(a, inputs, table, out, s);
  return kErrUnsupported;
}

template <typename T>
int grid_backward(const GridArgs& a, const T* grad, const T* inputs, const T* table, T* grad_table,
                  T* grad_inputs, int /*strategy*/, const LaunchCtx& ctx) {
  if (a.B == 0 || a.L == 0 || (!grad_table && !grad_inputs)) return 0;
  const cudaStream_t s = (cudaStream_t)ctx.stream;
  if (a.D == 2) return grid_backward_d<T, 2>(a, grad, inputs, table, grad_table, grad_inputs, s);
  if (a.D == 3) return grid_backward_d<T, 3>(a, grad, inputs, table, grad_table, grad_inputs, s);
  return kErrUnsupported;
}

template <typename T>
int sh_forward(int64_t B, int degree, const T* inputs, T* out, const LaunchCtx& ctx) {
  if (degree < 1 || degree > kMaxShDegree) return kErrUnsupported;
  if (B == 0) return 0;
  sh_forward_kernel<T><<<blocks_for(B), kThreads, 0, (cudaStream_t)ctx.stream>>>(B, degree, inputs, out);
  return launch_status((cudaStream_t)ctx.stream);
}

template <typename T>
int sh_backward(int64_t B, int degree, const T* grad, const T* inputs, T* grad_inputs, const LaunchCtx& ctx) {
  if (degree < 1 || degree > kMaxShDegree) return kErrUnsupported;
  if (B == 0) return 0;
  sh_backward_kernel<T><<<blocks_for(B), kThreads, 0, (cudaStream_t)ctx.stream>>>(B, degree, grad, inputs,
                                                                                   grad_inputs);
  return launch_status((cudaStream_t)ctx.stream);
}

template <typename T>
int freq_forward(int64_t B, int D, int n_freqs, const T* inputs, T* out, const LaunchCtx& ctx) {
  if (B * D == 0) return 0;
  freq_forward_kernel<T><<<blocks_for(B * D), kThreads, 0, (cudaStream_t)ctx.stream>>>(B, D, n_freqs, inputs, out);
  return launch_status((cudaStream_t)ctx.stream);
}

template <typename T>
int freq_backward(int64_t B, int D, int n_freqs, const T* grad, const T* inputs, T* grad_inputs,
                  const LaunchCtx& ctx) {
  if (B * D == 0) return 0;
  freq_backward_kernel<T><<<blocks_for(B * D), kThreads, 0, (cudaStream_t)ctx.stream>>>(B, D, n_freqs, grad, inputs,
                                                                                         grad_inputs);
  return launch_status((cudaStream_t)ctx.stream);
}

const char* error_string(int code) {
  if (code == kErrUnsupported) return "unsupported input dimension, level dimension or degree";
  return cudaGetErrorString((cudaError_t)code);
}

#define RN_INSTANTIATE(T)                                                                                      \
  template int grid_forward<T>(const GridArgs&, const T*, const T*, T*, const LaunchCtx&);                     \
  template int grid_backward<T>(const GridArgs&, const T*, const T*, const T*, T*, T*, int, const LaunchCtx&); \
  template int sh_forward<T>(int64_t, int, const T*, T*, const LaunchCtx&);                                    \
  template int sh_backward<T>(int64_t, int, const T*, const T*, T*, const LaunchCtx&);                         \
  template int freq_forward<T>(int64_t, int, int, const T*, T*, const LaunchCtx&);                             \
  template int freq_backward<T>(int64_t, int, int, const T*, const T*, T*, const LaunchCtx&);

RN_INSTANTIATE(float)
RN_INSTANTIATE(double)

}  // namespace enc
}  // namespace radnerf

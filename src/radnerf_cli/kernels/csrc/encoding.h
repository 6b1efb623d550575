// Per-element math of the encoding kernels (grid, spherical harmonics, frequency), written once and
// compiled by g++ (encoding_cpu.cpp) and nvcc (encoding.cu). Semantics match ref_encoding.py exactly:
// same clamping, indexing, hashing and operation order, so the backends agree to rounding.
#pragma once

#include <cmath>
#include <cstdint>

#include "common.h"

// Full unrolling of the small fixed-size loops (D, C, corners) under nvcc; g++ -O3 unrolls them itself.
#ifdef __CUDACC__
#define RN_UNROLL _Pragma("unroll")
#else
#define RN_UNROLL
#endif

namespace radnerf {
namespace enc {

enum GridType : int { kGridHash = 0, kGridTiled = 1 };
enum Interp : int { kInterpLinear = 0, kInterpSmoothstep = 1 };

constexpr int kMaxShDegree = 8;
constexpr int kErrUnsupported = -1;  // launcher status: D, C or degree outside the compiled set

// ----------------------------------------------------------------------------------------------------
// Launch parameters shared by the CPU and CUDA launchers.

struct LaunchCtx {
  void* stream;     // cudaStream_t for CUDA launchers, unused on CPU
  int num_threads;  // OpenMP threads for CPU launchers, unused on CUDA
};

struct GridArgs {
  int64_t B;               // number of points
  int D;                   // input dimension (2 or 3)
  int C;                   // features per level (1, 2, 4 or 8)
  int L;                   // number of levels
  const int32_t* offsets;  // [L+1] row offsets of each level in the table (same device as the data)
  const double* scales;    // [L] grid scale of each level (same device as the data)
  int gridtype;            // kGridHash | kGridTiled
  bool align_corners;      // grid points at cell corners (true) or cell centres (false)
  int interp;              // kInterpLinear | kInterpSmoothstep
};

// Launchers: implemented by encoding_cpu.cpp (OpenMP) and by encoding.cu (CUDA) with the same
// signatures; a module links exactly one of them. They return 0 or a backend error code.
template <typename T>
int grid_forward(const GridArgs& a, const T* inputs, const T* table, T* out, const LaunchCtx& ctx);
// grad_table (zeroed, may be null) and grad_inputs (zeroed, may be null) are accumulated into.
// strategy (CPU only): 0 auto, 1 atomics, 2 per-thread tables.
template <typename T>
int grid_backward(const GridArgs& a, const T* grad, const T* inputs, const T* table, T* grad_table,
                  T* grad_inputs, int strategy, const LaunchCtx& ctx);
template <typename T>
int sh_forward(int64_t B, int degree, const T* inputs, T* out, const LaunchCtx& ctx);
template <typename T>
int sh_backward(int64_t B, int degree, const T* grad, const T* inputs, T* grad_inputs, const LaunchCtx& ctx);
template <typename T>
int freq_forward(int64_t B, int D, int n_freqs, const T* inputs, T* out, const LaunchCtx& ctx);
template <typename T>
int freq_backward(int64_t B, int D, int n_freqs, const T* grad, const T* inputs, T* grad_inputs,
                  const LaunchCtx& ctx);
const char* error_string(int code);

// ----------------------------------------------------------------------------------------------------
// Grid encoding.

// sin and cos of one angle in one call (glibc and CUDA both provide sincos/sincosf).
RN_HD void rn_sincos(float v, float* s, float* c) { sincosf(v, s, c); }
RN_HD void rn_sincos(double v, double* s, double* c) { sincos(v, s, c); }

// Resolution (grid points per side minus one) of a level with the given scale.
RN_HD uint32_t level_resolution(double scale) { return (uint32_t)ceil(scale) + 1u; }

// Hash primes per dimension (instant-ngp's; products wrap around at 32 bits).
RN_HD uint32_t hash_prime(int d) { return d == 0 ? 1u : (d == 1 ? 2654435761u : 805459861u); }

// Clamp to [0, 1]; NaN becomes 0 (so a NaN input can never index outside the table).
template <typename T>
RN_HD T clamp01(T v) { return !(v >= T(0)) ? T(0) : (v > T(1) ? T(1) : v); }

// Corners of the cell holding ``x`` (already clamped to [0,1]) in one level: the table rows and
// interpolation weights of the 2^D corners and, if ``dw`` is not null, d(weight)/d(x_d) as
// dw[corner * D + d] (x_inside[d] false -> 0: clamped coordinates get no gradient).
//
// Row of integer grid point p: dense index sum_d p_d * stride_d (stride_d = step^d, step = res+1, or
// res with align_corners) while the level fits in ``size`` rows; above that either the spatial hash
// xor_d p_d * prime_d (kGridHash) or the dense index of the dimensions whose stride still fits
// (kGridTiled), modulo size. The per-dimension terms of the low and high corner are computed once.
template <typename T, int D>
RN_HD void grid_corners(const T x[D], const bool x_inside[D], T scale, uint32_t resolution, uint32_t size,
                        int gridtype, bool align_corners, int interp, uint32_t rows[1 << D], T w[1 << D],
                        T* dw) {
  const uint64_t step = align_corners ? resolution : resolution + 1u;
  uint64_t stride[D];
  uint64_t total = 1;
  int nd = 0;  // dimensions in the dense index
RN_UNROLL
  for (int d = 0; d < D; ++d) {
    stride[d] = total;
    if (total <= size) {
      nd = d + 1;
      total *= step;
    }
  }
  const bool hashed = gridtype == kGridHash && total > size;
  const bool pow2 = (size & (size - 1u)) == 0u;

  T frac[D], deriv[D];
  uint64_t term[D][2];
RN_UNROLL
  for (int d = 0; d < D; ++d) {
    T pos = x[d] * scale;
    if (!align_corners) pos = pos + T(0.5);
    const uint32_t base = (uint32_t)pos;  // floor: pos >= 0
    T f = pos - (T)base;
    if (interp == kInterpSmoothstep) {
      deriv[d] = T(6) * f * (T(1) - f);
      f = f * f * (T(3) - T(2) * f);
    } else {
      deriv[d] = T(1);
    }
    frac[d] = f;
    if (hashed) {
      term[d][0] = (uint32_t)(base * hash_prime(d));
      term[d][1] = (uint32_t)((base + 1u) * hash_prime(d));
    } else if (d < nd) {
      term[d][0] = (uint64_t)base * stride[d];
      term[d][1] = (uint64_t)(base + 1u) * stride[d];
    } else {
      term[d][0] = term[d][1] = 0;
    }
  }
RN_UNROLL
  for (int idx = 0; idx < (1 << D); ++idx) {
    T wi = T(1);
    uint64_t index = 0;
RN_UNROLL
    for (int d = 0; d < D; ++d) {
      const int hi = (idx >> d) & 1;
      wi = wi * (hi ? frac[d] : T(1) - frac[d]);
      index = hashed ? (index ^ term[d][hi]) : (index + term[d][hi]);
    }
    w[idx] = wi;
    // Always reduced modulo size (cheaply when possible): the high corner of a point at the upper
    // border (weight 0) can lie one past a dense level's last grid point.
    if (index >= size) index = (hashed && pow2) ? (index & (size - 1u)) : index % size;
    rows[idx] = (uint32_t)index;
    if (dw) {
RN_UNROLL
      for (int gd = 0; gd < D; ++gd) {
        T v = x_inside[gd] ? scale * deriv[gd] : T(0);
RN_UNROLL
        for (int d = 0; d < D; ++d) {
          const bool hi = (idx >> d) & 1;
          if (d == gd) v = hi ? v : -v;
          else v = v * (hi ? frac[d] : T(1) - frac[d]);
        }
        dw[idx * D + gd] = v;
      }
    }
  }
}

// Clamp one point to [0,1]^D, remembering which coordinates were inside.
template <typename T, int D>
RN_HD void load_point(const T* in, T x[D], bool inside[D]) {
RN_UNROLL
  for (int d = 0; d < D; ++d) {
    const T v = in[d];
    inside[d] = v >= T(0) && v <= T(1);
    x[d] = clamp01(v);
  }
}

// Forward of one point in one level: out[C] = sum over corners of w * table[row].
template <typename T, int D, int C>
RN_HD void grid_level_forward(const T x[D], const T* level_table, uint32_t size, double scale, int gridtype,
                              bool align_corners, int interp, T out[C]) {
  uint32_t rows[1 << D];
  T w[1 << D];
  const bool inside[D] = {};
  grid_corners<T, D>(x, inside, (T)scale, level_resolution(scale), size, gridtype, align_corners, interp, rows,
                     w, nullptr);
  T acc[C];
RN_UNROLL
  for (int c = 0; c < C; ++c) acc[c] = T(0);
RN_UNROLL
  for (int idx = 0; idx < (1 << D); ++idx) {
    const T* e = level_table + (int64_t)rows[idx] * C;
RN_UNROLL
    for (int c = 0; c < C; ++c) acc[c] = acc[c] + w[idx] * e[c];
  }
RN_UNROLL
  for (int c = 0; c < C; ++c) out[c] = acc[c];
}

// d(loss)/d(x) contribution of one level: sum over corners and channels of g[c] * dw * table[row][c].
template <typename T, int D, int C>
RN_HD void grid_level_grad_x(const T* level_table, const uint32_t rows[1 << D], const T* dw, const T g[C],
                             T dx[D]) {
RN_UNROLL
  for (int idx = 0; idx < (1 << D); ++idx) {
    const T* e = level_table + (int64_t)rows[idx] * C;
    T ge = T(0);
RN_UNROLL
    for (int c = 0; c < C; ++c) ge = ge + g[c] * e[c];
RN_UNROLL
    for (int d = 0; d < D; ++d) dx[d] = dx[d] + dw[idx * D + d] * ge;
  }
}

// ----------------------------------------------------------------------------------------------------
// Spherical harmonics: real, Condon-Shortley phase, column l*l + l + m (torch-ngp's order and signs).
// Y_l^m = N(l,|m|) * Q_l^|m|(z) * (Re or Im of (x + i y)^|m|), polynomials in x, y, z.

// N(l, m) for m >= 0 at index l*(l+1)/2 + m; sqrt(2) folded in for m > 0. One copy per side.
#define RN_SH_NORMS \
      0.28209479177387814, \
      0.48860251190291992, 0.48860251190291998, \
      0.63078313050504009, 0.36418281019735976, 0.18209140509867988, \
      0.7463526651802308, 0.3046971996429772, 0.096353714754685155, 0.039336239328442907, \
      0.84628437532163447, 0.26761861742291571, 0.063078313050504001, 0.016858388283618388, 0.0059603403376112026, \
      0.9356025796273888, 0.24157154730437169, 0.045652731285460234, 0.0093188247511476283, 0.0021964680580751762, 0.00069458418713245519, \
      1.0171072362820548, 0.22195099524523101, 0.03509353369580661, 0.0058489222826344353, 0.0010678622237644956, 0.00022766899107568562, 6.5722376641838803e-05, \
      1.0925484305920792, 0.20647224590289676, 0.028097313806030647, 0.0039735602250741348, 0.00059903674311141165, 9.9839457185235285e-05, 1.9580128477462541e-05, 5.233009453691466e-06, \

#ifdef __CUDACC__
__device__ __constant__ static const double kShNormDevice[36] = {RN_SH_NORMS};
#endif
static const double kShNormHost[36] = {RN_SH_NORMS};

RN_HD double sh_norm(int l, int m) {
#ifdef __CUDA_ARCH__
  return kShNormDevice[l * (l + 1) / 2 + m];
#else
  return kShNormHost[l * (l + 1) / 2 + m];
#endif
}

template <typename T>
RN_HD void sh_forward_point(T x, T y, T z, int degree, T* out) {
  T cm = T(1), sm = T(0), qmm = T(1);
  for (int m = 0; m < degree; ++m) {
    if (m > 0) {
      const T c = x * cm - y * sm;
      const T s = x * sm + y * cm;
      cm = c;
      sm = s;
      qmm = qmm * T(-(2 * m - 1));
    }
    T q1 = T(0), q2 = T(0);
    for (int l = m; l < degree; ++l) {
      T q;
      if (l == m) q = qmm;
      else if (l == m + 1) q = T(2 * m + 1) * z * qmm;
      else q = (T(2 * l - 1) * z * q1 - T(l + m - 1) * q2) / T(l - m);
      q2 = q1;
      q1 = q;
      const T n = (T)sh_norm(l, m);
      if (m == 0) {
        out[l * l + l] = n * q;
      } else {
        out[l * l + l + m] = n * q * cm;
        out[l * l + l - m] = n * q * sm;
      }
    }
  }
}

// g: d(loss)/d(out) of one point [degree^2] -> d(loss)/d(x, y, z).
template <typename T>
RN_HD void sh_backward_point(T x, T y, T z, int degree, const T* g, T grad[3]) {
  T cm = T(1), sm = T(0), qmm = T(1);
  T cx = T(0), cy = T(0), sx = T(0), sy = T(0);  // derivatives of cm, sm w.r.t. x and y
  T gx = T(0), gy = T(0), gz = T(0);
  for (int m = 0; m < degree; ++m) {
    if (m > 0) {
      const T c = x * cm - y * sm;
      const T s = x * sm + y * cm;
      const T ncx = cm + x * cx - y * sx;
      const T ncy = x * cy - sm - y * sy;
      const T nsx = sm + x * sx + y * cx;
      const T nsy = x * sy + cm + y * cy;
      cm = c;
      sm = s;
      cx = ncx;
      cy = ncy;
      sx = nsx;
      sy = nsy;
      qmm = qmm * T(-(2 * m - 1));
    }
    T q1 = T(0), q2 = T(0), d1 = T(0), d2 = T(0);
    for (int l = m; l < degree; ++l) {
      T q, dq;
      if (l == m) {
        q = qmm;
        dq = T(0);
      } else if (l == m + 1) {
        q = T(2 * m + 1) * z * qmm;
        dq = T(2 * m + 1) * qmm;
      } else {
        q = (T(2 * l - 1) * z * q1 - T(l + m - 1) * q2) / T(l - m);
        dq = (T(2 * l - 1) * (q1 + z * d1) - T(l + m - 1) * d2) / T(l - m);
      }
      q2 = q1;
      q1 = q;
      d2 = d1;
      d1 = dq;
      const T n = (T)sh_norm(l, m);
      if (m == 0) {
        gz = gz + g[l * l + l] * n * dq;
      } else {
        const T gc = g[l * l + l + m] * n, gs = g[l * l + l - m] * n;
        gx = gx + q * (gc * cx + gs * sx);
        gy = gy + q * (gc * cy + gs * sy);
        gz = gz + dq * (gc * cm + gs * sm);
      }
    }
  }
  grad[0] = gx;
  grad[1] = gy;
  grad[2] = gz;
}

// ----------------------------------------------------------------------------------------------------
// Frequency encoding: out = [x, sin(2^0 x), cos(2^0 x), sin(2^1 x), ...], each block D wide.

// One coordinate d of one point: writes its D-strided columns of the row ``out``.
template <typename T>
RN_HD void freq_forward_coord(T v, int d, int D, int n_freqs, T* out) {
  out[d] = v;
  T s = T(1);
  for (int f = 0; f < n_freqs; ++f) {
    T sn, cs;
    rn_sincos(v * s, &sn, &cs);
    out[D * (1 + 2 * f) + d] = sn;
    out[D * (2 + 2 * f) + d] = cs;
    s = s * T(2);
  }
}

template <typename T>
RN_HD T freq_backward_coord(T v, int d, int D, int n_freqs, const T* g) {
  T acc = g[d];
  T s = T(1);
  for (int f = 0; f < n_freqs; ++f) {
    T sn, cs;
    rn_sincos(v * s, &sn, &cs);
    acc = acc + s * (g[D * (1 + 2 * f) + d] * cs - g[D * (2 + 2 * f) + d] * sn);
    s = s * T(2);
  }
  return acc;
}

}  // namespace enc
}  // namespace radnerf

// Per-ray math of the ray-marching kernels, written once and compiled by g++ (raymarch_cpu.cpp) and by
// nvcc (raymarch.cu). Semantics follow torch-ngp / RAD-NeRF's raymarching kernels.
//
// The marching math uses rn_mul/rn_add/rn_sub, which forbid fused multiply-adds on the device, so CPU and
// GPU (and the pure-torch reference) take identical float32 steps and make identical cell decisions.
#pragma once

#include <cfloat>
#include <cstddef>
#include <cmath>
#include <cstdint>

#include "common.h"

namespace radnerf {
namespace rm {

constexpr float kSqrt3 = 1.7320508075688772f;

// ---- float ops without contraction -------------------------------------------------------------
RN_HD float rn_mul(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}
RN_HD float rn_add(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}
RN_HD float rn_sub(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}
RN_HD float rn_clamp(float x, float lo, float hi) { return fminf(hi, fmaxf(lo, x)); }
// exp on the host: an inlined Cephes-style polynomial (max error ~2 ulp) that keeps the per-sample loops
// free of library calls; the device uses expf. NaN stays NaN; results below FLT_MIN flush to ~1e-38.
RN_HD float exp_poly(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float magic = 12582912.0f;  // 1.5 * 2^23: adding and subtracting rounds to the nearest integer
    const float n = (x * 1.44269504088896341f + magic) - magic;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float y = (p * r) * r + r + 1.0f;
    union { uint32_t u; float f; } scale;
    scale.u = (uint32_t)((int)n + 127) << 23;
    return y * scale.f;
}
RN_HD float rn_exp(float x) {
#ifdef __CUDA_ARCH__
    return expf(x);
#else
    return exp_poly(x);
#endif
}
RN_HD double rn_exp(double x) { return exp(x); }

// ---- ray / box ---------------------------------------------------------------------------------
// Slab test; a ray that misses gets near = far = FLT_MAX; near is raised to min_near.
RN_HD void ray_aabb(const float* o, const float* d, const float* aabb, float min_near, float& near, float& far) {
    float n = (aabb[0] - o[0]) * (1.0f / d[0]);
    float f = (aabb[3] - o[0]) * (1.0f / d[0]);
    if (n > f) { float s = n; n = f; f = s; }
    for (int k = 1; k < 3; ++k) {
        const float r = 1.0f / d[k];
        float nk = (aabb[k] - o[k]) * r;
        float fk = (aabb[k + 3] - o[k]) * r;
        if (nk > fk) { float s = nk; nk = fk; fk = s; }
        if (n > fk || nk > f) { near = far = FLT_MAX; return; }
        if (nk > n) n = nk;
        if (fk < f) f = fk;
    }
    if (n < min_near) n = min_near;
    near = n;
    far = f;
}

// ---- Z-order (Morton) codes of 10-bit coordinates ----------------------------------------------
RN_HD uint32_t expand_bits(uint32_t v) {
    v = (v * 0x00010001u) & 0xFF0000FFu;
    v = (v * 0x00000101u) & 0x0F00F00Fu;
    v = (v * 0x00000011u) & 0xC30C30C3u;
    v = (v * 0x00000005u) & 0x49249249u;
    return v;
}
RN_HD uint32_t compact_bits(uint32_t v) {
    v &= 0x49249249u;
    v = (v | (v >> 2)) & 0xC30C30C3u;
    v = (v | (v >> 4)) & 0x0F00F00Fu;
    v = (v | (v >> 8)) & 0xFF0000FFu;
    v = (v | (v >> 16)) & 0x0000FFFFu;
    return v;
}
RN_HD uint32_t morton3(uint32_t x, uint32_t y, uint32_t z) {
    return expand_bits(x & 1023u) | (expand_bits(y & 1023u) << 1) | (expand_bits(z & 1023u) << 2);
}
RN_HD void morton3_invert(uint32_t code, int* xyz) {
    code &= 0x3FFFFFFFu;
    xyz[0] = (int)compact_bits(code);
    xyz[1] = (int)compact_bits(code >> 1);
    xyz[2] = (int)compact_bits(code >> 2);
}

// ---- marching ----------------------------------------------------------------------------------
struct MarchParams {
    float bound;     // scene half-size: points are clamped to [-bound, bound]
    float dt_gamma;  // step grows as t * dt_gamma (0: constant steps)
    float dt_min;    // smallest step: min(dt_max, 2 sqrt(3) / max_steps)
    float dt_max;    // largest step: 2 sqrt(3) 2^(C-1) / H
    float rH;        // 1 / H
    int C;           // cascades (mip levels)
    int H;           // grid resolution per cascade
};

inline MarchParams make_params(float bound, float dt_gamma, int C, int H, int max_steps) {
    MarchParams p;
    p.bound = bound;
    p.dt_gamma = dt_gamma;
    p.dt_max = (2.0f * kSqrt3 * (float)(1 << (C - 1))) / (float)H;
    p.dt_min = fminf(p.dt_max, (2.0f * kSqrt3) / (float)max_steps);
    p.rH = 1.0f / (float)H;
    p.C = C;
    p.H = H;
    return p;
}

RN_HD float step_size(const MarchParams& P, float t) { return rn_clamp(rn_mul(t, P.dt_gamma), P.dt_min, P.dt_max); }

// Cascade from the largest coordinate: [0, 0.5) -> 0 (clamped), [0.5, 1) -> 0, [1, 2) -> 1, ...
RN_HD int mip_from_pos(float x, float y, float z, int C) {
    const float mx = fmaxf(fabsf(x), fmaxf(fabsf(y), fabsf(z)));
    int e;
    frexpf(mx, &e);
    return e < 0 ? 0 : (e > C - 1 ? C - 1 : e);
}
// Cascade whose cells are at least as large as the step.
RN_HD int mip_from_dt(float dt, int H, int C) {
    const float mx = rn_mul(rn_mul(dt, (float)H), 0.5f);
    int e;
    frexpf(mx, &e);
    return e < 0 ? 0 : (e > C - 1 ? C - 1 : e);
}

RN_HD int cell_coord(float x, float rbound, int H) {
    return (int)rn_clamp(rn_mul(rn_mul(rn_add(rn_mul(x, rbound), 1.0f), 0.5f), (float)H), 0.0f, (float)(H - 1));
}

// Ray parameter of the boundary of cell n (toward the sign of d) along one axis, measured from x.
RN_HD float to_cell_edge(int n, float sign_d, float x, float rd, float mip_bound, float rH) {
    const float e = rn_mul(rn_sub(rn_mul(rn_mul(rn_add(rn_add((float)n, 0.5f), rn_mul(0.5f, sign_d)), rH), 2.0f), 1.0f),
                           mip_bound);
    return rn_mul(rn_sub(e, x), rd);
}

// March one ray from t (already perturbed) while t < far, emitting at most max_n samples in occupied
// cells. With out_xyz == nullptr only counts. Returns the number of samples; t_end receives the final t.
RN_HD uint32_t march_ray(const MarchParams& P, const uint8_t* __restrict__ bits, const float* o, const float* d,
                         float t, float far, uint32_t max_n, float* out_xyz, float* out_dir, float* out_delta,
                         float* t_end) {
    const float rd[3] = {1.0f / d[0], 1.0f / d[1], 1.0f / d[2]};
    const float sd[3] = {copysignf(1.0f, d[0]), copysignf(1.0f, d[1]), copysignf(1.0f, d[2])};
    const uint32_t H3 = (uint32_t)P.H * (uint32_t)P.H * (uint32_t)P.H;
    uint32_t n = 0;
    while (t < far && n < max_n) {
        const float x = rn_clamp(rn_add(o[0], rn_mul(t, d[0])), -P.bound, P.bound);
        const float y = rn_clamp(rn_add(o[1], rn_mul(t, d[1])), -P.bound, P.bound);
        const float z = rn_clamp(rn_add(o[2], rn_mul(t, d[2])), -P.bound, P.bound);
        const float dt = step_size(P, t);
        const int lp = mip_from_pos(x, y, z, P.C), ld = mip_from_dt(dt, P.H, P.C);
        const int level = lp > ld ? lp : ld;
        const float mip_bound = fminf(scalbnf(1.0f, level), P.bound);
        const float rb = 1.0f / mip_bound;
        const int nx = cell_coord(x, rb, P.H), ny = cell_coord(y, rb, P.H), nz = cell_coord(z, rb, P.H);
        const uint32_t index = (uint32_t)level * H3 + morton3(nx, ny, nz);
        const bool occ = (bits[index >> 3] >> (index & 7u)) & 1u;
        if (occ) {
            const float tn = rn_add(t, dt);
            if (out_xyz != nullptr) {
                float* px = out_xyz + 3 * n;
                float* pd = out_dir + 3 * n;
                float* pl = out_delta + 2 * n;
                px[0] = x; px[1] = y; px[2] = z;
                pd[0] = d[0]; pd[1] = d[1]; pd[2] = d[2];
                pl[0] = dt; pl[1] = tn;
            }
            t = tn;
            ++n;
        } else {
            const float tx = to_cell_edge(nx, sd[0], x, rd[0], mip_bound, P.rH);
            const float ty = to_cell_edge(ny, sd[1], y, rd[1], mip_bound, P.rH);
            const float tz = to_cell_edge(nz, sd[2], z, rd[2], mip_bound, P.rH);
            const float tt = rn_add(t, fmaxf(0.0f, fminf(tx, fminf(ty, tz))));
            do {
                t = rn_add(t, step_size(P, t));
            } while (t < tt);
        }
    }
    if (t_end != nullptr) *t_end = t;
    return n;
}

RN_HD float perturb(const MarchParams& P, float t, float noise) { return rn_add(t, rn_mul(step_size(P, t), noise)); }

// ---- compositing (training) --------------------------------------------------------------------
// One ray's samples (pointers already at the ray's offset). out: weights_sum, ambient_sum, depth, r, g, b.
template <typename T>
RN_HD void composite_train_forward_ray(const T* sig, const T* rgb, const T* amb, const T* dlt, uint32_t count,
                                       T T_thresh, T* out) {
    T tr = 1, ws = 0, a = 0, dep = 0, r = 0, g = 0, b = 0;
    for (uint32_t j = 0; j < count; ++j) {
        const T alpha = T(1) - rn_exp(-sig[j] * dlt[2 * j]);
        const T w = alpha * tr;
        r += w * rgb[3 * j];
        g += w * rgb[3 * j + 1];
        b += w * rgb[3 * j + 2];
        dep += w * dlt[2 * j + 1];
        a += w * amb[j];
        ws += w;
        tr *= T(1) - alpha;
        if (tr < T_thresh) break;
    }
    out[0] = ws; out[1] = a; out[2] = dep; out[3] = r; out[4] = g; out[5] = b;
}

// Gradients of one ray. go: grads of (weights_sum, ambient_sum, depth, r, g, b); fo: the forward outputs.
// With s_j = go_rgb . rgb_j + go_amb * amb_j + go_depth * t_j and T_j the transmittance after step j:
//   d/d sigma_j = dt_j * (T_j s_j - sum_{k>j} w_k s_k + go_ws * (1 - weights_sum)).
template <typename T>
RN_HD void composite_train_backward_ray(const T* sig, const T* rgb, const T* amb, const T* dlt, uint32_t count,
                                        T T_thresh, const T* go, const T* fo, T* g_sig, T* g_rgb, T* g_amb) {
    const T s_final = go[1] * fo[1] + go[2] * fo[2] + go[3] * fo[3] + go[4] * fo[4] + go[5] * fo[5];
    const T ws_term = go[0] * (T(1) - fo[0]);
    T tr = 1, s_acc = 0;
    for (uint32_t j = 0; j < count; ++j) {
        const T alpha = T(1) - rn_exp(-sig[j] * dlt[2 * j]);
        const T w = alpha * tr;
        const T s = go[3] * rgb[3 * j] + go[4] * rgb[3 * j + 1] + go[5] * rgb[3 * j + 2] + go[1] * amb[j] +
                    go[2] * dlt[2 * j + 1];
        s_acc += w * s;
        tr *= T(1) - alpha;
        g_rgb[3 * j] = go[3] * w;
        g_rgb[3 * j + 1] = go[4] * w;
        g_rgb[3 * j + 2] = go[5] * w;
        g_amb[j] = go[1] * w;
        g_sig[j] = dlt[2 * j] * (tr * s - (s_final - s_acc) + ws_term);
        if (tr < T_thresh) break;
    }
}

// ---- compositing (inference) -------------------------------------------------------------------
// Continues one alive ray over its n_step slots. Returns true when the ray finished (T below T_thresh or
// a zero-delta slot); otherwise t is updated to the depth of the last slot.
RN_HD bool composite_infer_ray(const float* sig, const float* rgb, const float* dlt, uint32_t n_step, float T_thresh,
                               float& ws, float& dep, float* col, float& t) {
    uint32_t j = 0;
    float tt = t;
    for (; j < n_step; ++j) {
        if (dlt[2 * j] == 0.0f) break;
        const float alpha = 1.0f - rn_exp(-sig[j] * dlt[2 * j]);
        const float tr = 1.0f - ws;
        const float w = alpha * tr;
        ws += w;
        tt = dlt[2 * j + 1];
        dep += w * tt;
        col[0] += w * rgb[3 * j];
        col[1] += w * rgb[3 * j + 1];
        col[2] += w * rgb[3 * j + 2];
        if (tr < T_thresh) break;
    }
    if (j < n_step) return true;
    t = tt;
    return false;
}

}  // namespace rm
}  // namespace radnerf

// ---- launchers ---------------------------------------------------------------------------------
// Implemented twice over raw pointers with the same signatures: raymarch_cpu.cpp (namespace cpu, OpenMP)
// and raymarch.cu (namespace gpu, CUDA; `stream` is a cudaStream_t). The CPU versions ignore `stream`
// and the scan scratch space. Each returns a status: 0, kErrOverflow, or (CUDA) the cudaError_t of its
// first failing call; error_string(status) describes it.

namespace radnerf {
namespace rm {

constexpr int kErrOverflow = -2;  // launcher status: more samples than an int32 offset can address

inline const char* error_message(int code) {
    switch (code) {
        case 0: return "no error";
        case kErrOverflow: return "more ray samples than int32 offsets can address";
        default: return "unknown launcher error";
    }
}

}  // namespace rm
}  // namespace radnerf

#define RADNERF_RAYMARCH_LAUNCHERS                                                                              \
    int near_far_from_aabb(const float* rays_o, const float* rays_d, const float* aabb, int64_t N,             \
                           float min_near, float* nears, float* fars, void* stream);                           \
    int morton3d(const int* coords, int64_t N, int* indices, void* stream);                                    \
    int morton3d_invert(const int* indices, int64_t N, int* coords, void* stream);                             \
    int packbits(const float* grid, int64_t n_bytes, float thresh, uint8_t* bitfield, void* stream);           \
    /* pass 1: samples per ray -> counts [N] */                                                               \
    int march_train_count(const float* rays_o, const float* rays_d, const uint8_t* bitfield,                  \
                          const MarchParams& P, const float* nears, const float* fars, const float* noises,   \
                          int64_t N, uint32_t max_steps, int* counts, void* stream);                          \
    /* scratch bytes the scan needs for N counts -> *bytes */                                                \
    int scan_scratch_bytes(int64_t N, size_t* bytes);                                                          \
    /* offsets [N+1]: offsets[0] = 0, offsets[i+1] = counts[0] + ... + counts[i]; *total = offsets[N] */     \
    int scan_counts(const int* counts, int* offsets, int64_t N, void* scratch, size_t scratch_bytes,          \
                    int64_t* total, void* stream);                                                             \
    /* pass 2: write samples at the offsets, and rays [N, 3] = (index, offset, count) */                    \
    int march_train_write(const float* rays_o, const float* rays_d, const uint8_t* bitfield,                  \
                          const MarchParams& P, const float* nears, const float* fars, const float* noises,   \
                          int64_t N, uint32_t max_steps, const int* counts, const int* offsets, float* xyzs,  \
                          float* dirs, float* deltas, int* rays, void* stream);                               \
    template <typename T>                                                                                      \
    int composite_train_forward(const T* sigmas, const T* rgbs, const T* ambient, const T* deltas,            \
                                const int* rays, int64_t N, int64_t M, T T_thresh, T* weights_sum,             \
                                T* ambient_sum, T* depth, T* image, void* stream);                            \
    template <typename T>                                                                                      \
    int composite_train_backward(const T* grad_weights_sum, const T* grad_ambient_sum, const T* grad_depth,   \
                                 const T* grad_image, const T* sigmas, const T* rgbs, const T* ambient,       \
                                 const T* deltas, const int* rays, const T* weights_sum,                      \
                                 const T* ambient_sum, const T* depth, const T* image, int64_t N, int64_t M,  \
                                 T T_thresh, T* grad_sigmas, T* grad_rgbs, T* grad_ambient, void* stream);    \
    int march_infer(int64_t n_alive, int64_t n_step, const int* rays_alive, float* rays_t,                    \
                    const float* rays_o, const float* rays_d, const uint8_t* bitfield, const MarchParams& P,  \
                    const float* fars, const float* noises, float* xyzs, float* dirs, float* deltas,           \
                    void* stream);                                                                             \
    int composite_infer(int64_t n_alive, int64_t n_step, float T_thresh, int* rays_alive, float* rays_t,      \
                        const float* sigmas, const float* rgbs, const float* deltas, float* weights_sum,      \
                        float* depth, float* image, void* stream);                                            \
    const char* error_string(int code);

namespace radnerf {
namespace rm {
namespace cpu {
RADNERF_RAYMARCH_LAUNCHERS
}  // namespace cpu
namespace gpu {
RADNERF_RAYMARCH_LAUNCHERS
}  // namespace gpu
}  // namespace rm
}  // namespace radnerf

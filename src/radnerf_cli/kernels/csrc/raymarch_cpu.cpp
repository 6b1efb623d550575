// OpenMP launchers of the ray-marching kernels: one loop iteration per ray (or element) calling the
// shared math of raymarch.h. Per-ray loops use dynamic schedules: ray costs vary, and a busy machine
// should not leave one thread waiting for a descheduled other.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <omp.h>

#include "raymarch.h"

namespace radnerf {
namespace rm {
namespace cpu {

int near_far_from_aabb(const float* rays_o, const float* rays_d, const float* aabb, int64_t N, float min_near,
                        float* nears, float* fars, void*) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) ray_aabb(rays_o + 3 * n, rays_d + 3 * n, aabb, min_near, nears[n], fars[n]);
    return 0;
}

int morton3d(const int* coords, int64_t N, int* indices, void*) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n)
        indices[n] = (int)morton3((uint32_t)coords[3 * n], (uint32_t)coords[3 * n + 1], (uint32_t)coords[3 * n + 2]);
    return 0;
}

int morton3d_invert(const int* indices, int64_t N, int* coords, void*) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) morton3_invert((uint32_t)indices[n], coords + 3 * n);
    return 0;
}

int packbits(const float* grid, int64_t n_bytes, float thresh, uint8_t* bitfield, void*) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n_bytes; ++i) {
        uint8_t bits = 0;
        for (int k = 0; k < 8; ++k) bits |= (grid[8 * i + k] > thresh) ? (uint8_t)(1u << k) : (uint8_t)0;
        bitfield[i] = bits;
    }
    return 0;
}

static inline float start_t(const MarchParams& P, const float* nears, const float* noises, int64_t n) {
    return noises != nullptr ? perturb(P, nears[n], noises[n]) : nears[n];
}

int march_train_count(const float* rays_o, const float* rays_d, const uint8_t* bitfield, const MarchParams& P,
                       const float* nears, const float* fars, const float* noises, int64_t N, uint32_t max_steps,
                       int* counts, void*) {
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t n = 0; n < N; ++n) {
        counts[n] = (int)march_ray(P, bitfield, rays_o + 3 * n, rays_d + 3 * n, start_t(P, nears, noises, n), fars[n],
                                   max_steps, nullptr, nullptr, nullptr, nullptr);
    }
    return 0;
}

int scan_scratch_bytes(int64_t, size_t* bytes) {
    *bytes = 0;
    return 0;
}

int scan_counts(const int* counts, int* offsets, int64_t N, void*, size_t, int64_t* total, void*) {
    int64_t acc = 0;
    offsets[0] = 0;
    for (int64_t n = 0; n < N; ++n) {
        acc += counts[n];
        if (acc > INT32_MAX) return kErrOverflow;
        offsets[n + 1] = (int)acc;
    }
    *total = acc;
    return 0;
}

int march_train_write(const float* rays_o, const float* rays_d, const uint8_t* bitfield, const MarchParams& P,
                       const float* nears, const float* fars, const float* noises, int64_t N, uint32_t max_steps,
                       const int* counts, const int* offsets, float* xyzs, float* dirs, float* deltas, int* rays,
                       void*) {
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t n = 0; n < N; ++n) {
        const int64_t off = offsets[n];
        rays[3 * n] = (int)n;
        rays[3 * n + 1] = (int)off;
        rays[3 * n + 2] = counts[n];
        if (counts[n] == 0) continue;
        march_ray(P, bitfield, rays_o + 3 * n, rays_d + 3 * n, start_t(P, nears, noises, n), fars[n],
                  (uint32_t)counts[n], xyzs + 3 * off, dirs + 3 * off, deltas + 2 * off, nullptr);
    }
    return 0;
}

template <typename T>
int composite_train_forward(const T* sigmas, const T* rgbs, const T* ambient, const T* deltas, const int* rays,
                             int64_t N, int64_t M, T T_thresh, T* weights_sum, T* ambient_sum, T* depth, T* image,
                             void*) {
#pragma omp parallel for schedule(dynamic, 512)
    for (int64_t n = 0; n < N; ++n) {
        const int64_t idx = rays[3 * n], off = rays[3 * n + 1];
        int64_t cnt = rays[3 * n + 2];
        if (cnt < 0 || off < 0 || off + cnt > M) cnt = 0;
        if (idx < 0 || idx >= N) continue;  // malformed ray table: never write outside the outputs
        T out[6];
        composite_train_forward_ray<T>(sigmas + off, rgbs + 3 * off, ambient + off, deltas + 2 * off,
                                       (uint32_t)cnt, T_thresh, out);
        weights_sum[idx] = out[0];
        ambient_sum[idx] = out[1];
        depth[idx] = out[2];
        image[3 * idx] = out[3];
        image[3 * idx + 1] = out[4];
        image[3 * idx + 2] = out[5];
    }
    return 0;
}

template <typename T>
int composite_train_backward(const T* grad_weights_sum, const T* grad_ambient_sum, const T* grad_depth,
                              const T* grad_image, const T* sigmas, const T* rgbs, const T* ambient, const T* deltas,
                              const int* rays, const T* weights_sum, const T* ambient_sum, const T* depth,
                              const T* image, int64_t N, int64_t M, T T_thresh, T* grad_sigmas, T* grad_rgbs,
                              T* grad_ambient, void*) {
#pragma omp parallel for schedule(dynamic, 512)
    for (int64_t n = 0; n < N; ++n) {
        const int64_t idx = rays[3 * n], off = rays[3 * n + 1], cnt = rays[3 * n + 2];
        if (cnt <= 0 || off < 0 || off + cnt > M || idx < 0 || idx >= N) continue;
        const T go[6] = {grad_weights_sum[idx], grad_ambient_sum[idx], grad_depth[idx],
                         grad_image[3 * idx], grad_image[3 * idx + 1], grad_image[3 * idx + 2]};
        const T fo[6] = {weights_sum[idx], ambient_sum[idx], depth[idx],
                         image[3 * idx], image[3 * idx + 1], image[3 * idx + 2]};
        composite_train_backward_ray<T>(sigmas + off, rgbs + 3 * off, ambient + off, deltas + 2 * off,
                                        (uint32_t)cnt, T_thresh, go, fo, grad_sigmas + off, grad_rgbs + 3 * off,
                                        grad_ambient + off);
    }
    return 0;
}

template int composite_train_forward<float>(const float*, const float*, const float*, const float*, const int*,
                                             int64_t, int64_t, float, float*, float*, float*, float*, void*);
template int composite_train_forward<double>(const double*, const double*, const double*, const double*,
                                              const int*, int64_t, int64_t, double, double*, double*, double*,
                                              double*, void*);
template int composite_train_backward<float>(const float*, const float*, const float*, const float*, const float*,
                                              const float*, const float*, const float*, const int*, const float*,
                                              const float*, const float*, const float*, int64_t, int64_t, float,
                                              float*, float*, float*, void*);
template int composite_train_backward<double>(const double*, const double*, const double*, const double*,
                                               const double*, const double*, const double*, const double*,
                                               const int*, const double*, const double*, const double*,
                                               const double*, int64_t, int64_t, double, double*, double*, double*,
                                               void*);

int march_infer(int64_t n_alive, int64_t n_step, const int* rays_alive, float* rays_t, const float* rays_o,
                 const float* rays_d, const uint8_t* bitfield, const MarchParams& P, const float* fars,
                 const float* noises, float* xyzs, float* dirs, float* deltas, void*) {
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t n = 0; n < n_alive; ++n) {
        const int64_t r = rays_alive[n];
        if (r < 0) continue;
        float t = rays_t[r];
        if (noises != nullptr) t = perturb(P, t, noises[n]);
        float t_end = t;
        march_ray(P, bitfield, rays_o + 3 * r, rays_d + 3 * r, t, fars[r], (uint32_t)n_step, xyzs + 3 * n * n_step,
                  dirs + 3 * n * n_step, deltas + 2 * n * n_step, &t_end);
        rays_t[r] = t_end;
    }
    return 0;
}

int composite_infer(int64_t n_alive, int64_t n_step, float T_thresh, int* rays_alive, float* rays_t,
                     const float* sigmas, const float* rgbs, const float* deltas, float* weights_sum, float* depth,
                     float* image, void*) {
#pragma omp parallel for schedule(dynamic, 512)
    for (int64_t n = 0; n < n_alive; ++n) {
        const int64_t r = rays_alive[n];
        if (r < 0) continue;
        const bool done = composite_infer_ray(sigmas + n * n_step, rgbs + 3 * n * n_step, deltas + 2 * n * n_step,
                                              (uint32_t)n_step, T_thresh, weights_sum[r], depth[r], image + 3 * r,
                                              rays_t[r]);
        if (done) rays_alive[n] = -1;
    }
    return 0;
}

const char* error_string(int code) { return error_message(code); }

}  // namespace cpu
}  // namespace rm
}  // namespace radnerf

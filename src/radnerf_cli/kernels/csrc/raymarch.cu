// CUDA launchers of the ray-marching kernels: one thread per ray (or element) calling the shared math of
// raymarch.h. No torch headers: this file compiles with nvcc alone. Every launcher returns 0 or the CUDA
// error of its first failing call (see cuda_check.cuh).
#include <cuda_runtime.h>

#include <cub/device/device_scan.cuh>

#include "cuda_check.cuh"
#include "raymarch.h"

namespace radnerf {
namespace rm {
namespace gpu {

namespace {

constexpr int kThreads = 128;

inline unsigned int blocks_for(int64_t n) { return (unsigned int)div_round_up(n, kThreads); }
inline cudaStream_t as_stream(void* s) { return reinterpret_cast<cudaStream_t>(s); }

__global__ void k_near_far(const float* __restrict__ rays_o, const float* __restrict__ rays_d,
                           const float* __restrict__ aabb, int64_t N, float min_near, float* nears, float* fars) {
    const int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    ray_aabb(rays_o + 3 * n, rays_d + 3 * n, aabb, min_near, nears[n], fars[n]);
}

__global__ void k_morton(const int* __restrict__ coords, int64_t N, int* indices) {
    const int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    indices[n] = (int)morton3((uint32_t)coords[3 * n], (uint32_t)coords[3 * n + 1], (uint32_t)coords[3 * n + 2]);
}

__global__ void k_morton_invert(const int* __restrict__ indices, int64_t N, int* coords) {
    const int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    morton3_invert((uint32_t)indices[n], coords + 3 * n);
}

__global__ void k_packbits(const float* __restrict__ grid, int64_t n_bytes, float thresh, uint8_t* bitfield) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_bytes) return;
    uint8_t bits = 0;
#pragma unroll
    for (int k = 0; k < 8; ++k) bits |= (grid[8 * i + k] > thresh) ? (uint8_t)(1u << k) : (uint8_t)0;
    bitfield[i] = bits;
}

__device__ __forceinline__ float start_t(const MarchParams& P, const float* nears, const float* noises, int64_t n) {
    return noises != nullptr ? perturb(P, nears[n], noises[n]) : nears[n];
}

__global__ void k_march_train_count(const float* __restrict__ rays_o, const float* __restrict__ rays_d,
                                    const uint8_t* __restrict__ bitfield, MarchParams P,
                                    const float* __restrict__ nears, const float* __restrict__ fars,
                                    const float* __restrict__ noises, int64_t N, uint32_t max_steps, int* counts) {
    const int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    counts[n] = (int)march_ray(P, bitfield, rays_o + 3 * n, rays_d + 3 * n, start_t(P, nears, noises, n), fars[n],
                               max_steps, nullptr, nullptr, nullptr, nullptr);
}

__global__ void k_march_train_write(const float* __restrict__ rays_o, const float* __restrict__ rays_d,
                                    const uint8_t* __restrict__ bitfield, MarchParams P,
                                    const float* __restrict__ nears, const float* __restrict__ fars,
                                    const float* __restrict__ noises, int64_t N, const int* __restrict__ counts,
                                    const int* __restrict__ offsets, float* xyzs, float* dirs, float* deltas,
                                    int* rays) {
    const int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const int64_t off = offsets[n];
    const int cnt = counts[n];
    rays[3 * n] = (int)n;
    rays[3 * n + 1] = (int)off;
    rays[3 * n + 2] = cnt;
    if (cnt == 0) return;
    march_ray(P, bitfield, rays_o + 3 * n, rays_d + 3 * n, start_t(P, nears, noises, n), fars[n], (uint32_t)cnt,
              xyzs + 3 * off, dirs + 3 * off, deltas + 2 * off, nullptr);
}

template <typename T>
__global__ void k_composite_train_forward(const T* __restrict__ sigmas, const T* __restrict__ rgbs,
                                          const T* __restrict__ ambient, const T* __restrict__ deltas,
                                          const int* __restrict__ rays, int64_t N, int64_t M, T T_thresh,
                                          T* weights_sum, T* ambient_sum, T* depth, T* image) {
    const int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const int64_t idx = rays[3 * n], off = rays[3 * n + 1];
    int64_t cnt = rays[3 * n + 2];
    if (cnt < 0 || off < 0 || off + cnt > M) cnt = 0;
    if (idx < 0 || idx >= N) return;  // malformed ray table: never write outside the outputs
    T out[6];
    composite_train_forward_ray<T>(sigmas + off, rgbs + 3 * off, ambient + off, deltas + 2 * off, (uint32_t)cnt,
                                   T_thresh, out);
    weights_sum[idx] = out[0];
    ambient_sum[idx] = out[1];
    depth[idx] = out[2];
    image[3 * idx] = out[3];
    image[3 * idx + 1] = out[4];
    image[3 * idx + 2] = out[5];
}

template <typename T>
__global__ void k_composite_train_backward(const T* __restrict__ grad_weights_sum, const T* __restrict__ grad_ambient_sum,
                                           const T* __restrict__ grad_depth, const T* __restrict__ grad_image,
                                           const T* __restrict__ sigmas, const T* __restrict__ rgbs,
                                           const T* __restrict__ ambient, const T* __restrict__ deltas,
                                           const int* __restrict__ rays, const T* __restrict__ weights_sum,
                                           const T* __restrict__ ambient_sum, const T* __restrict__ depth,
                                           const T* __restrict__ image, int64_t N, int64_t M, T T_thresh,
                                           T* grad_sigmas, T* grad_rgbs, T* grad_ambient) {
    const int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const int64_t idx = rays[3 * n], off = rays[3 * n + 1], cnt = rays[3 * n + 2];
    if (cnt <= 0 || off < 0 || off + cnt > M || idx < 0 || idx >= N) return;
    const T go[6] = {grad_weights_sum[idx], grad_ambient_sum[idx], grad_depth[idx],
                     grad_image[3 * idx], grad_image[3 * idx + 1], grad_image[3 * idx + 2]};
    const T fo[6] = {weights_sum[idx], ambient_sum[idx], depth[idx], image[3 * idx], image[3 * idx + 1],
                     image[3 * idx + 2]};
    composite_train_backward_ray<T>(sigmas + off, rgbs + 3 * off, ambient + off, deltas + 2 * off, (uint32_t)cnt,
                                    T_thresh, go, fo, grad_sigmas + off, grad_rgbs + 3 * off, grad_ambient + off);
}

__global__ void k_march_infer(int64_t n_alive, int64_t n_step, const int* __restrict__ rays_alive, float* rays_t,
                              const float* __restrict__ rays_o, const float* __restrict__ rays_d,
                              const uint8_t* __restrict__ bitfield, MarchParams P, const float* __restrict__ fars,
                              const float* __restrict__ noises, float* xyzs, float* dirs, float* deltas) {
    const int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= n_alive) return;
    const int64_t r = rays_alive[n];
    if (r < 0) return;
    float t = rays_t[r];
    if (noises != nullptr) t = perturb(P, t, noises[n]);
    float t_end = t;
    march_ray(P, bitfield, rays_o + 3 * r, rays_d + 3 * r, t, fars[r], (uint32_t)n_step, xyzs + 3 * n * n_step,
              dirs + 3 * n * n_step, deltas + 2 * n * n_step, &t_end);
    rays_t[r] = t_end;
}

__global__ void k_composite_infer(int64_t n_alive, int64_t n_step, float T_thresh, int* rays_alive, float* rays_t,
                                  const float* __restrict__ sigmas, const float* __restrict__ rgbs,
                                  const float* __restrict__ deltas, float* weights_sum, float* depth, float* image) {
    const int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= n_alive) return;
    const int64_t r = rays_alive[n];
    if (r < 0) return;
    const bool done = composite_infer_ray(sigmas + n * n_step, rgbs + 3 * n * n_step, deltas + 2 * n * n_step,
                                          (uint32_t)n_step, T_thresh, weights_sum[r], depth[r], image + 3 * r,
                                          rays_t[r]);
    if (done) rays_alive[n] = -1;
}

}  // namespace

#define RN_LAUNCH(kernel, n, ...)                                                     \
    do {                                                                              \
        kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(__VA_ARGS__);       \
        return launch_status(as_stream(stream));                                      \
    } while (0)

int near_far_from_aabb(const float* rays_o, const float* rays_d, const float* aabb, int64_t N, float min_near,
                       float* nears, float* fars, void* stream) {
    RN_LAUNCH(k_near_far, N, rays_o, rays_d, aabb, N, min_near, nears, fars);
}

int morton3d(const int* coords, int64_t N, int* indices, void* stream) {
    RN_LAUNCH(k_morton, N, coords, N, indices);
}

int morton3d_invert(const int* indices, int64_t N, int* coords, void* stream) {
    RN_LAUNCH(k_morton_invert, N, indices, N, coords);
}

int packbits(const float* grid, int64_t n_bytes, float thresh, uint8_t* bitfield, void* stream) {
    RN_LAUNCH(k_packbits, n_bytes, grid, n_bytes, thresh, bitfield);
}

int march_train_count(const float* rays_o, const float* rays_d, const uint8_t* bitfield, const MarchParams& P,
                      const float* nears, const float* fars, const float* noises, int64_t N, uint32_t max_steps,
                      int* counts, void* stream) {
    RN_LAUNCH(k_march_train_count, N, rays_o, rays_d, bitfield, P, nears, fars, noises, N, max_steps, counts);
}

int scan_scratch_bytes(int64_t N, size_t* bytes) {
    *bytes = 0;
    RN_CUDA_TRY(cub::DeviceScan::InclusiveSum(nullptr, *bytes, (const int*)nullptr, (int*)nullptr, (int)N));
    return 0;
}

int scan_counts(const int* counts, int* offsets, int64_t N, void* scratch, size_t scratch_bytes, int64_t* total,
                void* stream) {
    cudaStream_t s = as_stream(stream);
    RN_CUDA_TRY(cudaMemsetAsync(offsets, 0, sizeof(int), s));
    size_t bytes = scratch_bytes;
    RN_CUDA_TRY(cub::DeviceScan::InclusiveSum(scratch, bytes, counts, offsets + 1, (int)N, s));
    int last = 0;
    RN_CUDA_TRY(cudaMemcpyAsync(&last, offsets + N, sizeof(int), cudaMemcpyDeviceToHost, s));
    RN_CUDA_TRY(cudaStreamSynchronize(s));
    if (last < 0) return kErrOverflow;  // the int32 scan wrapped
    *total = last;
    return 0;
}

int march_train_write(const float* rays_o, const float* rays_d, const uint8_t* bitfield, const MarchParams& P,
                      const float* nears, const float* fars, const float* noises, int64_t N, uint32_t,
                      const int* counts, const int* offsets, float* xyzs, float* dirs, float* deltas, int* rays,
                      void* stream) {
    RN_LAUNCH(k_march_train_write, N, rays_o, rays_d, bitfield, P, nears, fars, noises, N, counts, offsets, xyzs,
              dirs, deltas, rays);
}

template <typename T>
int composite_train_forward(const T* sigmas, const T* rgbs, const T* ambient, const T* deltas, const int* rays,
                            int64_t N, int64_t M, T T_thresh, T* weights_sum, T* ambient_sum, T* depth, T* image,
                            void* stream) {
    RN_LAUNCH(k_composite_train_forward<T>, N, sigmas, rgbs, ambient, deltas, rays, N, M, T_thresh, weights_sum,
              ambient_sum, depth, image);
}

template <typename T>
int composite_train_backward(const T* grad_weights_sum, const T* grad_ambient_sum, const T* grad_depth,
                             const T* grad_image, const T* sigmas, const T* rgbs, const T* ambient, const T* deltas,
                             const int* rays, const T* weights_sum, const T* ambient_sum, const T* depth,
                             const T* image, int64_t N, int64_t M, T T_thresh, T* grad_sigmas, T* grad_rgbs,
                             T* grad_ambient, void* stream) {
    RN_LAUNCH(k_composite_train_backward<T>, N, grad_weights_sum, grad_ambient_sum, grad_depth, grad_image, sigmas,
              rgbs, ambient, deltas, rays, weights_sum, ambient_sum, depth, image, N, M, T_thresh, grad_sigmas,
              grad_rgbs, grad_ambient);
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
                const float* noises, float* xyzs, float* dirs, float* deltas, void* stream) {
    RN_LAUNCH(k_march_infer, n_alive, n_alive, n_step, rays_alive, rays_t, rays_o, rays_d, bitfield, P, fars, noises,
              xyzs, dirs, deltas);
}

int composite_infer(int64_t n_alive, int64_t n_step, float T_thresh, int* rays_alive, float* rays_t,
                    const float* sigmas, const float* rgbs, const float* deltas, float* weights_sum, float* depth,
                    float* image, void* stream) {
    RN_LAUNCH(k_composite_infer, n_alive, n_alive, n_step, T_thresh, rays_alive, rays_t, sigmas, rgbs, deltas,
              weights_sum, depth, image);
}

const char* error_string(int code) {
    if (code == kErrOverflow) return error_message(code);
    return cudaGetErrorString((cudaError_t)code);
}

#undef RN_LAUNCH

}  // namespace gpu
}  // namespace rm
}  // namespace radnerf

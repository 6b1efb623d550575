// Shared by every kernel: compiled by g++ (OpenMP launchers) and by nvcc (CUDA launchers).
// Per-element math is written once as RN_HD functions and called from both.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define RN_HD __host__ __device__ __forceinline__
#define RN_DEVICE __device__
#else
#define RN_HD inline
#define RN_DEVICE
#endif

namespace radnerf {

template <typename T>
RN_HD T clampv(T v, T lo, T hi) { return v < lo ? lo : (v > hi ? hi : v); }

RN_HD int64_t div_round_up(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace radnerf

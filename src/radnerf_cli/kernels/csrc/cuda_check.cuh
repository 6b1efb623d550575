// Status checks of the CUDA launchers (nvcc only). A launcher returns 0 or the cudaError_t of its first
// failing call; the torch bindings turn a non-zero status into an error naming the kernel.
//
// A kernel launch reports configuration errors (no kernel image for this GPU, too many blocks) at once,
// but a fault while the kernel runs (an illegal address) only at a later synchronisation, so it would
// surface at whichever kernel comes next. With RADNERF_SYNC_KERNELS=1 every launch waits for its kernel,
// so such a fault is reported at the kernel that caused it (slower: for debugging).
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>

namespace radnerf {

inline bool sync_kernels() {
    static const bool on = [] {
        const char* v = std::getenv("RADNERF_SYNC_KERNELS");
        return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
    }();
    return on;
}

// Status of the launch just made on stream `s` (see above).
inline int launch_status(cudaStream_t s) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess && sync_kernels()) e = cudaStreamSynchronize(s);
    return (int)e;
}

}  // namespace radnerf

// Return the status of a CUDA runtime call from the enclosing launcher when it failed.
#define RN_CUDA_TRY(expr)                                  \
    do {                                                   \
        const cudaError_t rn_err_ = (expr);                \
        if (rn_err_ != cudaSuccess) return (int)rn_err_;   \
    } while (0)

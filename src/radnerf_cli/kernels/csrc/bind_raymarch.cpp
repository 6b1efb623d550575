// Torch bindings of the ray-marching kernels: argument checks, output allocation, and a call to the CUDA
// launchers (RADNERF_WITH_CUDA) or the OpenMP ones. Every launcher's status is checked (RN_CHECK_LAUNCH):
// a failure raises an error naming the kernel.
#include <torch/extension.h>

#include "raymarch.h"

#ifdef RADNERF_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
namespace L = radnerf::rm::gpu;
#define RN_DEVICE_NAME "CUDA"
static void* rn_stream() { return (void*)c10::cuda::getCurrentCUDAStream().stream(); }
static bool rn_on_device(const at::Tensor& t) { return t.is_cuda(); }
#define RN_GUARD(x) const c10::cuda::OptionalCUDAGuard rn_guard_(device_of(x))
#else
namespace L = radnerf::rm::cpu;
#define RN_DEVICE_NAME "CPU"
static void* rn_stream() { return nullptr; }
static bool rn_on_device(const at::Tensor& t) { return t.device().is_cpu(); }
#define RN_GUARD(x) (void)0
#endif

using at::Tensor;
using radnerf::rm::MarchParams;

#ifdef RADNERF_WITH_CUDA
#define RN_SYNC_HINT \
    "; a fault while a kernel runs is reported at the next launch: rerun with RADNERF_SYNC_KERNELS=1 to " \
    "report it at the kernel that caused it"
#else
#define RN_SYNC_HINT ""
#endif

// Raise (as a Python RuntimeError) when a launcher returned a non-zero status.
static void check_launch(int status, const char* kernel) {
    TORCH_CHECK(status == 0, kernel, " (", RN_DEVICE_NAME, " kernel) failed: ", L::error_string(status),
                " [status ", status, "]", RN_SYNC_HINT);
}
#define RN_CHECK_LAUNCH(kernel, call) check_launch((call), kernel)

#define CHECK_T(x, dtype, ...)                                                                        \
    do {                                                                                              \
        TORCH_CHECK(rn_on_device(x), #x " must be a " RN_DEVICE_NAME " tensor");                      \
        TORCH_CHECK((x).scalar_type() == (dtype), #x " must have dtype ", (dtype), ", got ", (x).scalar_type()); \
        TORCH_CHECK((x).is_contiguous(), #x " must be contiguous");                                   \
    } while (0)
#define CHECK_SHAPE(x, ...)                                                                           \
    TORCH_CHECK((x).sizes() == at::IntArrayRef({__VA_ARGS__}), #x " must have shape [" #__VA_ARGS__ "], got ", (x).sizes())

static const auto kF = at::kFloat;
static const auto kI = at::kInt;

static MarchParams params(double bound, double dt_gamma, int64_t C, int64_t H, int64_t max_steps) {
    TORCH_CHECK(C >= 1 && C <= 8, "C must be in [1, 8], got ", C);
    TORCH_CHECK(H >= 1 && H <= 1024, "H must be in [1, 1024], got ", H);
    TORCH_CHECK(max_steps >= 1, "max_steps must be >= 1, got ", max_steps);
    TORCH_CHECK(bound > 0, "bound must be > 0, got ", bound);
    return radnerf::rm::make_params((float)bound, (float)dt_gamma, (int)C, (int)H, (int)max_steps);
}

static void check_bitfield(const Tensor& density_bitfield, int64_t C, int64_t H) {
    CHECK_T(density_bitfield, at::kByte);
    TORCH_CHECK(density_bitfield.numel() * 8 == C * H * H * H, "density_bitfield must have C*H^3/8 = ",
                C * H * H * H / 8, " bytes, got ", density_bitfield.numel());
}

std::vector<Tensor> near_far_from_aabb(Tensor rays_o, Tensor rays_d, Tensor aabb, double min_near) {
    RN_GUARD(rays_o);
    CHECK_T(rays_o, kF);
    CHECK_T(rays_d, kF);
    CHECK_T(aabb, kF);
    const int64_t N = rays_o.size(0);
    CHECK_SHAPE(rays_o, N, 3);
    CHECK_SHAPE(rays_d, N, 3);
    CHECK_SHAPE(aabb, 6);
    auto nears = torch::empty({N}, rays_o.options()), fars = torch::empty({N}, rays_o.options());
    if (N > 0)
        RN_CHECK_LAUNCH("near_far_from_aabb",
                        L::near_far_from_aabb(rays_o.data_ptr<float>(), rays_d.data_ptr<float>(), aabb.data_ptr<float>(),
                                              N, (float)min_near, nears.data_ptr<float>(), fars.data_ptr<float>(),
                                              rn_stream()));
    return {nears, fars};
}

Tensor morton3D(Tensor coords) {
    RN_GUARD(coords);
    CHECK_T(coords, kI);
    const int64_t N = coords.size(0);
    CHECK_SHAPE(coords, N, 3);
    auto out = torch::empty({N}, coords.options());
    if (N > 0) RN_CHECK_LAUNCH("morton3D", L::morton3d(coords.data_ptr<int>(), N, out.data_ptr<int>(), rn_stream()));
    return out;
}

Tensor morton3D_invert(Tensor indices) {
    RN_GUARD(indices);
    CHECK_T(indices, kI);
    TORCH_CHECK(indices.dim() == 1, "indices must be 1-D, got ", indices.sizes());
    const int64_t N = indices.size(0);
    auto out = torch::empty({N, 3}, indices.options());
    if (N > 0)
        RN_CHECK_LAUNCH("morton3D_invert", L::morton3d_invert(indices.data_ptr<int>(), N, out.data_ptr<int>(), rn_stream()));
    return out;
}

Tensor packbits(Tensor grid, double thresh) {
    RN_GUARD(grid);
    CHECK_T(grid, kF);
    TORCH_CHECK(grid.numel() % 8 == 0, "grid must have a multiple of 8 elements, got ", grid.numel());
    const int64_t n_bytes = grid.numel() / 8;
    auto out = torch::empty({n_bytes}, grid.options().dtype(at::kByte));
    if (n_bytes > 0)
        RN_CHECK_LAUNCH("packbits",
                        L::packbits(grid.data_ptr<float>(), n_bytes, (float)thresh, out.data_ptr<uint8_t>(), rn_stream()));
    return out;
}

std::vector<Tensor> march_rays_train(Tensor rays_o, Tensor rays_d, double bound, Tensor density_bitfield, int64_t C,
                                     int64_t H, Tensor nears, Tensor fars, c10::optional<Tensor> noises,
                                     double dt_gamma, int64_t max_steps) {
    RN_GUARD(rays_o);
    CHECK_T(rays_o, kF);
    CHECK_T(rays_d, kF);
    CHECK_T(nears, kF);
    CHECK_T(fars, kF);
    const int64_t N = rays_o.size(0);
    CHECK_SHAPE(rays_o, N, 3);
    CHECK_SHAPE(rays_d, N, 3);
    CHECK_SHAPE(nears, N);
    CHECK_SHAPE(fars, N);
    const float* noise_ptr = nullptr;
    if (noises.has_value()) {
        const Tensor& ns = *noises;
        CHECK_T(ns, kF);
        CHECK_SHAPE(ns, N);
        noise_ptr = ns.data_ptr<float>();
    }
    const MarchParams P = params(bound, dt_gamma, C, H, max_steps);
    check_bitfield(density_bitfield, C, H);
    auto iopt = rays_o.options().dtype(kI);
    auto rays = torch::empty({N, 3}, iopt);
    auto counts = torch::empty({N}, iopt), offsets = torch::empty({N + 1}, iopt);
    int64_t M = 0;
    if (N > 0) {
        void* s = rn_stream();
        const uint8_t* bits = density_bitfield.data_ptr<uint8_t>();
        RN_CHECK_LAUNCH("march_rays_train (count)",
                        L::march_train_count(rays_o.data_ptr<float>(), rays_d.data_ptr<float>(), bits, P,
                                             nears.data_ptr<float>(), fars.data_ptr<float>(), noise_ptr, N,
                                             (uint32_t)max_steps, counts.data_ptr<int>(), s));
        size_t scratch_bytes = 0;
        RN_CHECK_LAUNCH("march_rays_train (scan size)", L::scan_scratch_bytes(N, &scratch_bytes));
        auto scratch = torch::empty({(int64_t)scratch_bytes + 1}, rays_o.options().dtype(at::kByte));
        RN_CHECK_LAUNCH("march_rays_train (scan)",
                        L::scan_counts(counts.data_ptr<int>(), offsets.data_ptr<int>(), N, scratch.data_ptr<uint8_t>(),
                                       scratch_bytes, &M, s));
        TORCH_CHECK(M < (int64_t)INT32_MAX, "march_rays_train produced too many samples (", M, ")");
    }
    auto xyzs = torch::empty({M, 3}, rays_o.options());
    auto dirs = torch::empty({M, 3}, rays_o.options());
    auto deltas = torch::empty({M, 2}, rays_o.options());
    if (N > 0)
        RN_CHECK_LAUNCH("march_rays_train (write)",
                        L::march_train_write(rays_o.data_ptr<float>(), rays_d.data_ptr<float>(),
                                             density_bitfield.data_ptr<uint8_t>(), P, nears.data_ptr<float>(),
                                             fars.data_ptr<float>(), noise_ptr, N, (uint32_t)max_steps,
                                             counts.data_ptr<int>(), offsets.data_ptr<int>(), xyzs.data_ptr<float>(),
                                             dirs.data_ptr<float>(), deltas.data_ptr<float>(), rays.data_ptr<int>(),
                                             rn_stream()));
    return {xyzs, dirs, deltas, rays};
}

static void check_composite_inputs(const Tensor& sigmas, const Tensor& rgbs, const Tensor& ambient,
                                   const Tensor& deltas, const Tensor& rays) {
    const auto dt = sigmas.scalar_type();
    TORCH_CHECK(dt == at::kFloat || dt == at::kDouble, "sigmas must be float32 or float64, got ", dt);
    CHECK_T(sigmas, dt);
    CHECK_T(rgbs, dt);
    CHECK_T(ambient, dt);
    CHECK_T(deltas, dt);
    CHECK_T(rays, kI);
    const int64_t M = sigmas.size(0), N = rays.size(0);
    CHECK_SHAPE(sigmas, M);
    CHECK_SHAPE(rgbs, M, 3);
    CHECK_SHAPE(ambient, M);
    CHECK_SHAPE(deltas, M, 2);
    CHECK_SHAPE(rays, N, 3);
}

std::vector<Tensor> composite_rays_train_forward(Tensor sigmas, Tensor rgbs, Tensor ambient, Tensor deltas,
                                                 Tensor rays, double T_thresh) {
    RN_GUARD(sigmas);
    check_composite_inputs(sigmas, rgbs, ambient, deltas, rays);
    const int64_t M = sigmas.size(0), N = rays.size(0);
    auto ws = torch::zeros({N}, sigmas.options()), amb = torch::zeros({N}, sigmas.options());
    auto depth = torch::zeros({N}, sigmas.options()), image = torch::zeros({N, 3}, sigmas.options());
    if (N > 0) {
        AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "composite_rays_train_forward", [&] {
            RN_CHECK_LAUNCH("composite_rays_train (forward)",
                            L::composite_train_forward<scalar_t>(
                                sigmas.data_ptr<scalar_t>(), rgbs.data_ptr<scalar_t>(), ambient.data_ptr<scalar_t>(),
                                deltas.data_ptr<scalar_t>(), rays.data_ptr<int>(), N, M, (scalar_t)T_thresh,
                                ws.data_ptr<scalar_t>(), amb.data_ptr<scalar_t>(), depth.data_ptr<scalar_t>(),
                                image.data_ptr<scalar_t>(), rn_stream()));
        });
    }
    return {ws, amb, depth, image};
}

std::vector<Tensor> composite_rays_train_backward(Tensor grad_weights_sum, Tensor grad_ambient_sum, Tensor grad_depth,
                                                  Tensor grad_image, Tensor sigmas, Tensor rgbs, Tensor ambient,
                                                  Tensor deltas, Tensor rays, Tensor weights_sum, Tensor ambient_sum,
                                                  Tensor depth, Tensor image, double T_thresh) {
    RN_GUARD(sigmas);
    check_composite_inputs(sigmas, rgbs, ambient, deltas, rays);
    const auto dt = sigmas.scalar_type();
    const int64_t M = sigmas.size(0), N = rays.size(0);
    for (const Tensor* t : {&grad_weights_sum, &grad_ambient_sum, &grad_depth, &weights_sum, &ambient_sum, &depth}) {
        TORCH_CHECK(rn_on_device(*t) && t->scalar_type() == dt && t->is_contiguous() && t->sizes() == at::IntArrayRef({N}),
                    "per-ray gradients and outputs of composite_rays_train must be contiguous [N] tensors of the "
                    "dtype of sigmas");
    }
    CHECK_T(grad_image, dt);
    CHECK_T(image, dt);
    CHECK_SHAPE(grad_image, N, 3);
    CHECK_SHAPE(image, N, 3);
    auto g_sig = torch::zeros({M}, sigmas.options()), g_rgb = torch::zeros({M, 3}, sigmas.options());
    auto g_amb = torch::zeros({M}, sigmas.options());
    if (N > 0) {
        AT_DISPATCH_FLOATING_TYPES(dt, "composite_rays_train_backward", [&] {
            RN_CHECK_LAUNCH("composite_rays_train (backward)",
                            L::composite_train_backward<scalar_t>(
                                grad_weights_sum.data_ptr<scalar_t>(), grad_ambient_sum.data_ptr<scalar_t>(),
                                grad_depth.data_ptr<scalar_t>(), grad_image.data_ptr<scalar_t>(),
                                sigmas.data_ptr<scalar_t>(), rgbs.data_ptr<scalar_t>(), ambient.data_ptr<scalar_t>(),
                                deltas.data_ptr<scalar_t>(), rays.data_ptr<int>(), weights_sum.data_ptr<scalar_t>(),
                                ambient_sum.data_ptr<scalar_t>(), depth.data_ptr<scalar_t>(),
                                image.data_ptr<scalar_t>(), N, M, (scalar_t)T_thresh, g_sig.data_ptr<scalar_t>(),
                                g_rgb.data_ptr<scalar_t>(), g_amb.data_ptr<scalar_t>(), rn_stream()));
        });
    }
    return {g_sig, g_rgb, g_amb};
}

std::vector<Tensor> march_rays(int64_t n_alive, int64_t n_step, Tensor rays_alive, Tensor rays_t, Tensor rays_o,
                               Tensor rays_d, double bound, Tensor density_bitfield, int64_t C, int64_t H,
                               Tensor nears, Tensor fars, c10::optional<Tensor> noises, double dt_gamma,
                               int64_t max_steps) {
    RN_GUARD(rays_o);
    CHECK_T(rays_alive, kI);
    CHECK_T(rays_t, kF);
    CHECK_T(rays_o, kF);
    CHECK_T(rays_d, kF);
    CHECK_T(nears, kF);
    CHECK_T(fars, kF);
    const int64_t N = rays_o.size(0);
    TORCH_CHECK(n_alive >= 0 && n_alive <= rays_alive.numel(), "n_alive must be in [0, rays_alive.numel()]");
    TORCH_CHECK(n_step >= 1, "n_step must be >= 1, got ", n_step);
    CHECK_SHAPE(rays_o, N, 3);
    CHECK_SHAPE(rays_d, N, 3);
    CHECK_SHAPE(rays_t, N);
    CHECK_SHAPE(nears, N);
    CHECK_SHAPE(fars, N);
    const float* noise_ptr = nullptr;
    if (noises.has_value()) {
        const Tensor& ns = *noises;
        CHECK_T(ns, kF);
        TORCH_CHECK(ns.numel() >= n_alive, "noises must have n_alive elements");
        noise_ptr = ns.data_ptr<float>();
    }
    const MarchParams P = params(bound, dt_gamma, C, H, max_steps);
    check_bitfield(density_bitfield, C, H);
    auto xyzs = torch::zeros({n_alive * n_step, 3}, rays_o.options());
    auto dirs = torch::zeros({n_alive * n_step, 3}, rays_o.options());
    auto deltas = torch::zeros({n_alive * n_step, 2}, rays_o.options());
    if (n_alive > 0)
        RN_CHECK_LAUNCH("march_rays",
                        L::march_infer(n_alive, n_step, rays_alive.data_ptr<int>(), rays_t.data_ptr<float>(),
                                       rays_o.data_ptr<float>(), rays_d.data_ptr<float>(),
                                       density_bitfield.data_ptr<uint8_t>(), P, fars.data_ptr<float>(), noise_ptr,
                                       xyzs.data_ptr<float>(), dirs.data_ptr<float>(), deltas.data_ptr<float>(),
                                       rn_stream()));
    return {xyzs, dirs, deltas};
}

void composite_rays(int64_t n_alive, int64_t n_step, Tensor rays_alive, Tensor rays_t, Tensor sigmas, Tensor rgbs,
                    Tensor deltas, Tensor weights_sum, Tensor depth, Tensor image, double T_thresh) {
    RN_GUARD(sigmas);
    CHECK_T(rays_alive, kI);
    CHECK_T(rays_t, kF);
    CHECK_T(sigmas, kF);
    CHECK_T(rgbs, kF);
    CHECK_T(deltas, kF);
    CHECK_T(weights_sum, kF);
    CHECK_T(depth, kF);
    CHECK_T(image, kF);
    const int64_t N = rays_t.size(0), S = n_alive * n_step;
    TORCH_CHECK(n_alive >= 0 && n_alive <= rays_alive.numel(), "n_alive must be in [0, rays_alive.numel()]");
    TORCH_CHECK(n_step >= 1, "n_step must be >= 1, got ", n_step);
    CHECK_SHAPE(sigmas, S);
    CHECK_SHAPE(rgbs, S, 3);
    CHECK_SHAPE(deltas, S, 2);
    CHECK_SHAPE(weights_sum, N);
    CHECK_SHAPE(depth, N);
    CHECK_SHAPE(image, N, 3);
    if (n_alive > 0)
        RN_CHECK_LAUNCH("composite_rays",
                        L::composite_infer(n_alive, n_step, (float)T_thresh, rays_alive.data_ptr<int>(),
                                           rays_t.data_ptr<float>(), sigmas.data_ptr<float>(), rgbs.data_ptr<float>(),
                                           deltas.data_ptr<float>(), weights_sum.data_ptr<float>(),
                                           depth.data_ptr<float>(), image.data_ptr<float>(), rn_stream()));
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("near_far_from_aabb", &near_far_from_aabb);
    m.def("morton3D", &morton3D);
    m.def("morton3D_invert", &morton3D_invert);
    m.def("packbits", &packbits);
    m.def("march_rays_train", &march_rays_train);
    m.def("composite_rays_train_forward", &composite_rays_train_forward);
    m.def("composite_rays_train_backward", &composite_rays_train_backward);
    m.def("march_rays", &march_rays);
    m.def("composite_rays", &composite_rays);
    // The status check itself, for tests: raises as a failed launch of `kernel` with `status` would.
    m.def("_check_launch", [](int64_t status, const std::string& kernel) { check_launch((int)status, kernel.c_str()); });
}

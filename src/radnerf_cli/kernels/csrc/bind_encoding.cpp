// Torch bindings of the encoding kernels: argument checks, allocation, dispatch on dtype.
// Built with RADNERF_WITH_CUDA the module calls the CUDA launchers (encoding.cu) and accepts CUDA
// tensors only; otherwise it calls the OpenMP launchers (encoding_cpu.cpp) and accepts CPU tensors.
#include <torch/extension.h>

#ifdef RADNERF_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "encoding.h"

namespace enc = radnerf::enc;

namespace {

#ifdef RADNERF_WITH_CUDA
constexpr bool kCuda = true;
#else
constexpr bool kCuda = false;
#endif

void check_tensor(const torch::Tensor& t, const char* fn, const char* name, int64_t ndim) {
  TORCH_CHECK(kCuda ? t.is_cuda() : t.device().is_cpu(), fn, ": ", name, " must be a ",
              kCuda ? "CUDA" : "CPU", " tensor for this module, got ", t.device());
  TORCH_CHECK(t.dim() == ndim, fn, ": ", name, " must have ", ndim, " dimensions, got shape ", t.sizes());
  TORCH_CHECK(t.is_contiguous(), fn, ": ", name, " must be contiguous");
}

void check_float(const torch::Tensor& t, const char* fn, const char* name) {
  TORCH_CHECK(t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kDouble, fn, ": ", name,
              " must be float32 or float64, got ", t.scalar_type());
}

enc::LaunchCtx make_ctx() {
  enc::LaunchCtx ctx{nullptr, 1};
#ifdef RADNERF_WITH_CUDA
  ctx.stream = (void*)c10::cuda::getCurrentCUDAStream().stream();
#else
  ctx.num_threads = at::get_num_threads();
#endif
  return ctx;
}

void check_status(int code, const char* fn) {
  TORCH_CHECK(code == 0, fn, " failed: ", enc::error_string(code));
}

enc::GridArgs grid_args(const char* fn, const torch::Tensor& inputs, const torch::Tensor& embeddings,
                        const torch::Tensor& offsets, const torch::Tensor& scales, int64_t gridtype,
                        bool align_corners, int64_t interpolation) {
  check_tensor(inputs, fn, "inputs", 2);
  check_tensor(embeddings, fn, "embeddings", 2);
  check_tensor(offsets, fn, "offsets", 1);
  check_tensor(scales, fn, "scales", 1);
  check_float(inputs, fn, "inputs");
  TORCH_CHECK(embeddings.scalar_type() == inputs.scalar_type(), fn, ": embeddings must have the dtype of inputs (",
              inputs.scalar_type(), "), got ", embeddings.scalar_type());
  TORCH_CHECK(offsets.scalar_type() == torch::kInt, fn, ": offsets must be int32, got ", offsets.scalar_type());
  TORCH_CHECK(scales.scalar_type() == torch::kDouble, fn, ": scales must be float64, got ", scales.scalar_type());
  TORCH_CHECK(embeddings.device() == inputs.device(), fn, ": embeddings must be on ", inputs.device(), ", got ",
              embeddings.device());
  TORCH_CHECK(offsets.device() == inputs.device(), fn, ": offsets must be on ", inputs.device(), ", got ",
              offsets.device());
  TORCH_CHECK(scales.device() == inputs.device(), fn, ": scales must be on ", inputs.device(), ", got ",
              scales.device());
  const int64_t D = inputs.size(1), C = embeddings.size(1), L = offsets.size(0) - 1;
  TORCH_CHECK(D == 2 || D == 3, fn, ": inputs must have 2 or 3 columns, got ", D);
  TORCH_CHECK(C == 1 || C == 2 || C == 4 || C == 8, fn, ": embeddings must have 1, 2, 4 or 8 columns, got ", C);
  TORCH_CHECK(L >= 1, fn, ": offsets must hold at least 2 values, got ", offsets.size(0));
  TORCH_CHECK(scales.size(0) == L, fn, ": scales must hold ", L, " values (one per level), got ", scales.size(0));
  TORCH_CHECK(gridtype == enc::kGridHash || gridtype == enc::kGridTiled, fn, ": gridtype must be 0 or 1, got ",
              gridtype);
  TORCH_CHECK(interpolation == enc::kInterpLinear || interpolation == enc::kInterpSmoothstep, fn,
              ": interpolation must be 0 or 1, got ", interpolation);
  enc::GridArgs a;
  a.B = inputs.size(0);
  a.D = (int)D;
  a.C = (int)C;
  a.L = (int)L;
  a.offsets = offsets.data_ptr<int32_t>();
  a.scales = scales.data_ptr<double>();
  a.gridtype = (int)gridtype;
  a.align_corners = align_corners;
  a.interp = (int)interpolation;
  return a;
}

// inputs [B, D], embeddings [offsets[-1], C], offsets [L+1] int32, scales [L] float64 -> [B, L*C]
torch::Tensor grid_encode_forward(torch::Tensor inputs, torch::Tensor embeddings, torch::Tensor offsets,
                                  torch::Tensor scales, int64_t gridtype, bool align_corners,
                                  int64_t interpolation) {
  const char* fn = "grid_encode";
  enc::GridArgs a = grid_args(fn, inputs, embeddings, offsets, scales, gridtype, align_corners, interpolation);
#ifdef RADNERF_WITH_CUDA
  const c10::cuda::OptionalCUDAGuard guard(inputs.device());
#endif
  auto out = torch::empty({a.B, (int64_t)a.L * a.C}, inputs.options());
  const auto ctx = make_ctx();
  AT_DISPATCH_FLOATING_TYPES(inputs.scalar_type(), "grid_encode_forward", [&] {
    check_status(enc::grid_forward<scalar_t>(a, inputs.data_ptr<scalar_t>(), embeddings.data_ptr<scalar_t>(),
                                             out.data_ptr<scalar_t>(), ctx),
                 fn);
  });
  return out;
}

// grad [B, L*C] -> (grad_embeddings [rows, C] or empty, grad_inputs [B, D] or empty)
std::vector<torch::Tensor> grid_encode_backward(torch::Tensor grad, torch::Tensor inputs, torch::Tensor embeddings,
                                                torch::Tensor offsets, torch::Tensor scales, int64_t gridtype,
                                                bool align_corners, int64_t interpolation, bool need_embeddings,
                                                bool need_inputs, int64_t strategy) {
  const char* fn = "grid_encode backward";
  enc::GridArgs a = grid_args(fn, inputs, embeddings, offsets, scales, gridtype, align_corners, interpolation);
  check_tensor(grad, fn, "grad", 2);
  TORCH_CHECK(grad.scalar_type() == inputs.scalar_type(), fn, ": grad must have the dtype of inputs");
  TORCH_CHECK(grad.size(0) == a.B && grad.size(1) == (int64_t)a.L * a.C, fn, ": grad must have shape [", a.B,
              ", ", (int64_t)a.L * a.C, "], got ", grad.sizes());
#ifdef RADNERF_WITH_CUDA
  const c10::cuda::OptionalCUDAGuard guard(inputs.device());
#endif
  torch::Tensor g_emb = need_embeddings ? torch::zeros_like(embeddings) : torch::empty({0}, inputs.options());
  torch::Tensor g_in = need_inputs ? torch::zeros_like(inputs) : torch::empty({0}, inputs.options());
  const auto ctx = make_ctx();
  AT_DISPATCH_FLOATING_TYPES(inputs.scalar_type(), "grid_encode_backward", [&] {
    check_status(enc::grid_backward<scalar_t>(a, grad.data_ptr<scalar_t>(), inputs.data_ptr<scalar_t>(),
                                              embeddings.data_ptr<scalar_t>(),
                                              need_embeddings ? g_emb.data_ptr<scalar_t>() : nullptr,
                                              need_inputs ? g_in.data_ptr<scalar_t>() : nullptr, (int)strategy, ctx),
                 fn);
  });
  return {g_emb, g_in};
}

void check_sh(const char* fn, const torch::Tensor& inputs, int64_t degree) {
  check_tensor(inputs, fn, "inputs", 2);
  check_float(inputs, fn, "inputs");
  TORCH_CHECK(inputs.size(1) == 3, fn, ": inputs must have 3 columns, got ", inputs.size(1));
  TORCH_CHECK(degree >= 1 && degree <= enc::kMaxShDegree, fn, ": degree must be in 1..", enc::kMaxShDegree,
              ", got ", degree);
}

// inputs [B, 3] -> [B, degree^2]
torch::Tensor sh_encode_forward(torch::Tensor inputs, int64_t degree) {
  const char* fn = "sh_encode";
  check_sh(fn, inputs, degree);
#ifdef RADNERF_WITH_CUDA
  const c10::cuda::OptionalCUDAGuard guard(inputs.device());
#endif
  auto out = torch::empty({inputs.size(0), degree * degree}, inputs.options());
  const auto ctx = make_ctx();
  AT_DISPATCH_FLOATING_TYPES(inputs.scalar_type(), "sh_encode_forward", [&] {
    check_status(enc::sh_forward<scalar_t>(inputs.size(0), (int)degree, inputs.data_ptr<scalar_t>(),
                                           out.data_ptr<scalar_t>(), ctx),
                 fn);
  });
  return out;
}

// grad [B, degree^2] -> grad_inputs [B, 3]
torch::Tensor sh_encode_backward(torch::Tensor grad, torch::Tensor inputs, int64_t degree) {
  const char* fn = "sh_encode backward";
  check_sh(fn, inputs, degree);
  check_tensor(grad, fn, "grad", 2);
  TORCH_CHECK(grad.scalar_type() == inputs.scalar_type(), fn, ": grad must have the dtype of inputs");
  TORCH_CHECK(grad.size(0) == inputs.size(0) && grad.size(1) == degree * degree, fn, ": grad must have shape [",
              inputs.size(0), ", ", degree * degree, "], got ", grad.sizes());
#ifdef RADNERF_WITH_CUDA
  const c10::cuda::OptionalCUDAGuard guard(inputs.device());
#endif
  auto g_in = torch::empty_like(inputs);
  const auto ctx = make_ctx();
  AT_DISPATCH_FLOATING_TYPES(inputs.scalar_type(), "sh_encode_backward", [&] {
    check_status(enc::sh_backward<scalar_t>(inputs.size(0), (int)degree, grad.data_ptr<scalar_t>(),
                                            inputs.data_ptr<scalar_t>(), g_in.data_ptr<scalar_t>(), ctx),
                 fn);
  });
  return g_in;
}

void check_freq(const char* fn, const torch::Tensor& inputs, int64_t n_freqs) {
  check_tensor(inputs, fn, "inputs", 2);
  check_float(inputs, fn, "inputs");
  TORCH_CHECK(n_freqs >= 0 && n_freqs <= 62, fn, ": n_freqs must be in 0..62, got ", n_freqs);
}

// inputs [B, D] -> [B, D*(1+2*n_freqs)]
torch::Tensor freq_encode_forward(torch::Tensor inputs, int64_t n_freqs) {
  const char* fn = "freq_encode";
  check_freq(fn, inputs, n_freqs);
#ifdef RADNERF_WITH_CUDA
  const c10::cuda::OptionalCUDAGuard guard(inputs.device());
#endif
  const int64_t D = inputs.size(1);
  auto out = torch::empty({inputs.size(0), D * (1 + 2 * n_freqs)}, inputs.options());
  const auto ctx = make_ctx();
  AT_DISPATCH_FLOATING_TYPES(inputs.scalar_type(), "freq_encode_forward", [&] {
    check_status(enc::freq_forward<scalar_t>(inputs.size(0), (int)D, (int)n_freqs, inputs.data_ptr<scalar_t>(),
                                             out.data_ptr<scalar_t>(), ctx),
                 fn);
  });
  return out;
}

// grad [B, D*(1+2*n_freqs)] -> grad_inputs [B, D]
torch::Tensor freq_encode_backward(torch::Tensor grad, torch::Tensor inputs, int64_t n_freqs) {
  const char* fn = "freq_encode backward";
  check_freq(fn, inputs, n_freqs);
  check_tensor(grad, fn, "grad", 2);
  TORCH_CHECK(grad.scalar_type() == inputs.scalar_type(), fn, ": grad must have the dtype of inputs");
  const int64_t D = inputs.size(1);
  TORCH_CHECK(grad.size(0) == inputs.size(0) && grad.size(1) == D * (1 + 2 * n_freqs), fn,
              ": grad must have shape [", inputs.size(0), ", ", D * (1 + 2 * n_freqs), "], got ", grad.sizes());
#ifdef RADNERF_WITH_CUDA
  const c10::cuda::OptionalCUDAGuard guard(inputs.device());
#endif
  auto g_in = torch::empty_like(inputs);
  const auto ctx = make_ctx();
  AT_DISPATCH_FLOATING_TYPES(inputs.scalar_type(), "freq_encode_backward", [&] {
    check_status(enc::freq_backward<scalar_t>(inputs.size(0), (int)D, (int)n_freqs, grad.data_ptr<scalar_t>(),
                                              inputs.data_ptr<scalar_t>(), g_in.data_ptr<scalar_t>(), ctx),
                 fn);
  });
  return g_in;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "radnerf encoding kernels (grid, spherical harmonics, frequency)";
  m.attr("device") = kCuda ? "cuda" : "cpu";
  m.def("grid_encode_forward", &grid_encode_forward, "multiresolution grid encoding, forward");
  m.def("grid_encode_backward", &grid_encode_backward, "multiresolution grid encoding, backward");
  m.def("sh_encode_forward", &sh_encode_forward, "spherical harmonics encoding, forward");
  m.def("sh_encode_backward", &sh_encode_backward, "spherical harmonics encoding, backward");
  m.def("freq_encode_forward", &freq_encode_forward, "frequency encoding, forward");
  m.def("freq_encode_backward", &freq_encode_backward, "frequency encoding, backward");
}

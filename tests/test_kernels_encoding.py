"""Encoding kernels: the compiled backends against the pure-torch reference, gradients, input checks."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from contextlib import contextmanager

import pytest
import torch

from radnerf_cli.errors import KernelError
from radnerf_cli.kernels import backend, loader
from radnerf_cli.kernels import ref_encoding as ref
from radnerf_cli.kernels.encoding import (
    FreqEncoder,
    GridEncoder,
    SHEncoder,
    freq_encode,
    grid_encode,
    level_scales,
    sh_encode,
)

CPU_OK = loader.availability("cpu").available
needs_cpu = pytest.mark.skipif(not CPU_OK, reason=f"cpu kernels unavailable: {loader.availability('cpu').reason}")


@contextmanager
def use_backend(name: str):
    previous = backend._choice
    backend.set_backend(name)
    try:
        yield
    finally:
        backend._choice = previous


def compiled_backends(device: str) -> list[str]:
    return ["cuda"] if device == "cuda" else ["cpu"]


# --------------------------------------------------------------------------------------------------
# Grid encoding


def make_grid(D: int, C: int, gridtype: str, align_corners: bool, interpolation: str, seed: int = 0):
    """A small encoder whose fine levels are hashed (tiled) with collisions: 5 levels, 2^7 rows max."""
    enc = GridEncoder(input_dim=D, num_levels=5, level_dim=C, base_resolution=3, log2_hashmap_size=7,
                      desired_resolution=40, gridtype=gridtype, align_corners=align_corners,
                      interpolation=interpolation)
    with torch.no_grad():
        enc.embeddings.uniform_(-1.0, 1.0, generator=torch.Generator().manual_seed(seed))
    return enc


def edge_points(enc: GridEncoder, D: int, n_random: int, gen: torch.Generator) -> torch.Tensor:
    """Random points in [-0.2, 1.2]^D plus points exactly on cell borders of every level and the corners."""
    pts = [torch.rand(n_random, D, generator=gen) * 1.4 - 0.2]
    for scale in enc._scales_list:
        s = torch.tensor(scale, dtype=torch.float32)
        k = torch.arange(0, int(scale) + 2, dtype=torch.float32)
        border = (k - (0.0 if enc.align_corners else 0.5)) / s  # x * scale (+ 0.5) lands on an integer
        border = border[(border >= 0) & (border <= 1)]
        if len(border):
            idx = torch.randint(0, len(border), (len(border), D), generator=gen)
            pts.append(border[idx])
    corners = torch.tensor([[(i >> d) & 1 for d in range(D)] for i in range(1 << D)], dtype=torch.float32)
    pts.append(corners)
    pts.append(torch.full((1, D), -3.0))
    pts.append(torch.full((1, D), 7.5))
    return torch.cat(pts)


def run_grid(enc: GridEncoder, x01: torch.Tensor, name: str, calc_grad_inputs=True, upstream=None):
    """Forward + backward of grid_encode on backend ``name``: (out, grad_embeddings, grad_inputs)."""
    emb = enc.embeddings.detach().clone().requires_grad_(True)
    x = x01.detach().clone().requires_grad_(True)
    with use_backend(name):
        out = grid_encode(x, emb, enc.offsets, enc.per_level_scale, enc.base_resolution, calc_grad_inputs,
                          enc.gridtype, enc.align_corners, enc.interpolation)
    g = upstream if upstream is not None else torch.linspace(-1, 1, out.numel(), dtype=out.dtype, device=out.device)
    (out * g.view_as(out)).sum().backward()
    return out.detach(), emb.grad, x.grad


def assert_grid_backends_agree(enc, x, name, atol=1e-5):
    o_ref, ge_ref, gx_ref = run_grid(enc, x, "torch")
    o, ge, gx = run_grid(enc, x, name)
    torch.testing.assert_close(o, o_ref, atol=atol, rtol=1e-5)
    torch.testing.assert_close(ge, ge_ref, atol=atol, rtol=1e-5)
    # d/dx is scaled by the finest resolution: compare relative to its magnitude.
    tol = atol * max(1.0, gx_ref.abs().max().item())
    torch.testing.assert_close(gx, gx_ref, atol=tol, rtol=1e-4)


def test_small_config_really_hashes():
    for D in (2, 3):
        enc = make_grid(D, 2, "hash", False, "linear")
        offs = enc._offsets_list
        _, res = ref.level_scale(4, math.log2(enc.per_level_scale), enc.base_resolution)
        assert offs[5] - offs[4] < (res + 1) ** D  # the finest level does not fit: it is hashed
        pos = torch.stack(torch.meshgrid(*[torch.arange(res + 1)] * D, indexing="ij"), -1).reshape(-1, D)
        rows = ref.grid_index(pos, offs[5] - offs[4], res, "hash", False)
        assert len(torch.unique(rows)) < len(rows)  # distinct grid points share rows


@needs_cpu
@pytest.mark.parametrize("D", [2, 3])
@pytest.mark.parametrize("C", [1, 2, 4, 8])
@pytest.mark.parametrize("gridtype", ["hash", "tiled"])
@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_cpu_matches_torch(D, C, gridtype, interpolation, align_corners):
    gen = torch.Generator().manual_seed(D * 100 + C)
    enc = make_grid(D, C, gridtype, align_corners, interpolation)
    x = edge_points(enc, D, 64, gen)
    assert_grid_backends_agree(enc, x, "cpu")


@needs_cpu
def test_grid_cpu_large_batch_threads_and_strategies():
    """Many points over several threads: the race-free table scatter (both strategies) matches torch."""
    gen = torch.Generator().manual_seed(3)
    enc = GridEncoder(3, 8, 2, base_resolution=8, log2_hashmap_size=10, desired_resolution=256)
    with torch.no_grad():
        enc.embeddings.uniform_(-1, 1)
    x = torch.rand(9000, 3, generator=gen)  # B * L / 2 above the launcher's grain: several threads run
    assert_grid_backends_agree(enc, x, "cpu", atol=1e-4)
    mod = loader.load("encoding", "cpu")
    g = torch.randn(x.shape[0], enc.output_dim, generator=gen)
    scales = torch.tensor(enc._scales_list, dtype=torch.float64)
    args = (g, x, enc.embeddings.detach(), enc.offsets, scales, 0, False, 0, True, True)
    atomic = mod.grid_encode_backward(*args, 1)
    copies = mod.grid_encode_backward(*args, 2)
    torch.testing.assert_close(atomic[0], copies[0], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(atomic[1], copies[1])


@pytest.mark.parametrize("name", ["torch", pytest.param("cpu", marks=needs_cpu)])
def test_grid_empty_batch(name):
    enc = make_grid(3, 2, "hash", False, "linear")
    out, ge, gx = run_grid(enc, torch.zeros(0, 3), name)
    assert out.shape == (0, enc.output_dim)
    assert torch.count_nonzero(ge) == 0 and gx.shape == (0, 3)


@pytest.mark.parametrize("name", ["torch", pytest.param("cpu", marks=needs_cpu)])
def test_grid_inputs_get_no_gradient_unless_asked(name):
    enc = make_grid(2, 2, "hash", False, "linear")
    _, ge, gx = run_grid(enc, torch.rand(10, 2), name, calc_grad_inputs=False)
    assert gx is None and ge is not None and torch.count_nonzero(ge) > 0


@pytest.mark.parametrize("name", ["torch", pytest.param("cpu", marks=needs_cpu)])
@pytest.mark.parametrize("D", [2, 3])
@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
def test_grid_gradcheck_float64(name, D, interpolation):
    enc = GridEncoder(D, 3, 2, base_resolution=2, log2_hashmap_size=5, desired_resolution=9,
                      interpolation=interpolation).double()
    gen = torch.Generator().manual_seed(7)
    x = (torch.rand(5, D, generator=gen, dtype=torch.float64) * 0.9 + 0.05).requires_grad_(True)
    emb = (torch.rand(enc.offsets[-1].item(), 2, generator=gen, dtype=torch.float64) * 2 - 1).requires_grad_(True)

    def f(x, emb):
        return grid_encode(x, emb, enc.offsets, enc.per_level_scale, enc.base_resolution, True, "hash", False,
                           interpolation)

    with use_backend(name):
        assert torch.autograd.gradcheck(f, (x, emb), eps=1e-6, atol=1e-5)


def test_grid_encoder_layout_and_bound():
    enc = GridEncoder(input_dim=3, num_levels=16, level_dim=2, base_resolution=16, log2_hashmap_size=16,
                      desired_resolution=2048)
    offs = enc._offsets_list
    assert offs[1] - offs[0] == 4920  # 17^3 rounded up to a multiple of 8
    assert offs[16] - offs[15] == 2**16
    assert math.isclose(enc.per_level_scale, 2 ** (math.log2(128) / 15))
    assert enc.output_dim == 32 and enc.embeddings.shape == (offs[-1], 2)
    assert enc.embeddings.abs().max() <= 1e-4
    with torch.no_grad():
        enc.embeddings.uniform_(-1, 1)
    x = torch.rand(2, 7, 3) * 4 - 2
    with use_backend("torch"):
        y = enc(x, bound=2.0)
        direct = grid_encode(((x + 2) / 4).reshape(-1, 3), enc.embeddings, enc.offsets, enc.per_level_scale, 16)
        assert y.shape == (2, 7, 32)
        torch.testing.assert_close(y.reshape(-1, 32), direct)
        assert enc(x.half(), bound=2.0).dtype == torch.float32  # autocast outputs are accepted


def test_importing_compiles_nothing(tmp_path):
    code = "import radnerf_cli.kernels, radnerf_cli.kernels.encoding, radnerf_cli.kernels.bench"
    env = dict(os.environ, RADNERF_KERNEL_CACHE=str(tmp_path / "cache"))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    assert not (tmp_path / "cache").exists()


# --------------------------------------------------------------------------------------------------
# Spherical harmonics and frequency encoding


def unit_dirs(n: int, gen: torch.Generator, dtype=torch.float32) -> torch.Tensor:
    d = torch.randn(n, 3, generator=gen, dtype=dtype)
    d = d / d.norm(dim=1, keepdim=True)
    axes = torch.tensor([[1, 0, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=dtype)
    return torch.cat([d, axes])


def run_unary(fn, x: torch.Tensor, arg: int, name: str):
    x = x.detach().clone().requires_grad_(True)
    with use_backend(name):
        out = fn(x, arg)
    g = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    (out * g).sum().backward()
    return out.detach(), x.grad


def test_sh_reference_matches_known_constants():
    x, y, z = 0.36, -0.48, 0.8
    out = ref.sh_encode(torch.tensor([[x, y, z]], dtype=torch.float64), 4)[0]
    expected = {  # torch-ngp / tiny-cuda-nn formulas
        0: 0.28209479177387814,
        1: -0.48860251190291987 * y,
        3: -0.48860251190291987 * x,
        4: 1.0925484305920792 * x * y,
        6: 0.94617469575755997 * z * z - 0.31539156525251999,
        9: 0.59004358992664352 * y * (-3.0 * x * x + y * y),
        12: 0.3731763325901154 * z * (5.0 * z * z - 3.0),
        15: 0.59004358992664352 * x * (-x * x + 3.0 * y * y),
    }
    for k, v in expected.items():
        assert math.isclose(out[k].item(), v, rel_tol=1e-12, abs_tol=1e-14), k


@needs_cpu
@pytest.mark.parametrize("degree", range(1, 9))
def test_sh_cpu_matches_torch(degree):
    x = unit_dirs(300, torch.Generator().manual_seed(degree))
    o_ref, g_ref = run_unary(sh_encode, x, degree, "torch")
    o, g = run_unary(sh_encode, x, degree, "cpu")
    assert o.shape == (x.shape[0], degree**2)
    torch.testing.assert_close(o, o_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g, g_ref, atol=1e-4 * max(1.0, g_ref.abs().max().item()), rtol=1e-4)


@needs_cpu
@pytest.mark.parametrize("D", [1, 2, 3])
@pytest.mark.parametrize("n_freqs", [0, 1, 6])
def test_freq_cpu_matches_torch(D, n_freqs):
    x = torch.randn(100, D, generator=torch.Generator().manual_seed(D)) * 3
    o_ref, g_ref = run_unary(freq_encode, x, n_freqs, "torch")
    o, g = run_unary(freq_encode, x, n_freqs, "cpu")
    assert o.shape == (100, D * (1 + 2 * n_freqs))
    torch.testing.assert_close(o, o_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g, g_ref, atol=1e-3, rtol=1e-4)


def test_freq_layout():
    x = torch.tensor([[0.3, -1.2]])
    with use_backend("torch"):
        y = freq_encode(x, 2)
    expected = torch.cat([x, torch.sin(x), torch.cos(x), torch.sin(2 * x), torch.cos(2 * x)], dim=1)
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("name", ["torch", pytest.param("cpu", marks=needs_cpu)])
def test_sh_and_freq_empty_batch(name):
    o, g = run_unary(sh_encode, torch.zeros(0, 3), 4, name)
    assert o.shape == (0, 16) and g.shape == (0, 3)
    o, g = run_unary(freq_encode, torch.zeros(0, 2), 3, name)
    assert o.shape == (0, 14) and g.shape == (0, 2)


@pytest.mark.parametrize("name", ["torch", pytest.param("cpu", marks=needs_cpu)])
def test_sh_and_freq_gradcheck_float64(name):
    gen = torch.Generator().manual_seed(11)
    d = unit_dirs(6, gen, torch.float64).requires_grad_(True)
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64).requires_grad_(True)
    with use_backend(name):
        for degree in (1, 3, 8):
            assert torch.autograd.gradcheck(lambda t, k=degree: sh_encode(t, k), (d,), eps=1e-6, atol=1e-5)
        assert torch.autograd.gradcheck(lambda t: freq_encode(t, 4), (x,), eps=1e-6, atol=1e-5)


def test_modules_shapes():
    with use_backend("torch"):
        sh = SHEncoder(degree=4)
        assert sh(torch.randn(2, 5, 3)).shape == (2, 5, 16) and sh.output_dim == 16
        fr = FreqEncoder(input_dim=2, n_freqs=10)
        assert fr(torch.randn(4, 2)).shape == (4, 42) and fr.output_dim == 42


# --------------------------------------------------------------------------------------------------
# Input checks: every bad argument is a KernelError that names it.


def grid_call(x=None, emb=None, offsets=None, **kw):
    enc = make_grid(3, 2, "hash", False, "linear")
    x = torch.rand(4, 3) if x is None else x
    emb = enc.embeddings.detach() if emb is None else emb
    offsets = enc.offsets if offsets is None else offsets
    args = dict(per_level_scale=enc.per_level_scale, base_resolution=enc.base_resolution)
    args.update(kw)
    return grid_encode(x, emb, offsets, **args)


BAD_GRID = {
    "inputs float16": (dict(x=torch.rand(4, 3).half()), "inputs must be float32"),
    "inputs int": (dict(x=torch.ones(4, 3, dtype=torch.int32)), "inputs must be float32"),
    "inputs 1D": (dict(x=torch.rand(12)), "inputs must have 2 dimensions"),
    "inputs 4 columns": (dict(x=torch.rand(4, 4)), "inputs must have 2 or 3 columns"),
    "inputs not contiguous": (dict(x=torch.rand(3, 4).t()), "inputs must be contiguous"),
    "embeddings float64": (dict(emb=torch.zeros(10, 2, dtype=torch.float64)), "embeddings must have the dtype of inputs"),
    "embeddings rows": (dict(emb=torch.zeros(10, 2)), "embeddings must have offsets[-1]"),
    "embeddings 3 columns": (dict(emb=torch.zeros(10, 3)), "embeddings must have 1, 2, 4 or 8 columns"),
    "embeddings on meta": (dict(emb=torch.zeros(10, 2, device="meta")), "embeddings must be on cpu"),
    "offsets int64": (dict(offsets=torch.tensor([0, 8], dtype=torch.int64)), "offsets must be int32"),
    "offsets not increasing": (dict(offsets=torch.tensor([0, 0], dtype=torch.int32)), "offsets must start at 0"),
    "gridtype": (dict(gridtype="dense"), "gridtype must be one of"),
    "interpolation": (dict(interpolation="cubic"), "interpolation must be one of"),
    "per_level_scale": (dict(per_level_scale=-1.0), "per_level_scale must be"),
}


@pytest.mark.parametrize("name", ["torch", pytest.param("cpu", marks=needs_cpu)])
@pytest.mark.parametrize("case", list(BAD_GRID))
def test_grid_bad_arguments(name, case):
    kwargs, message = BAD_GRID[case]
    with use_backend(name), pytest.raises(KernelError, match=r"^grid_encode: " + message.replace("[", r"\[")):
        grid_call(**kwargs)


@pytest.mark.parametrize("name", ["torch", pytest.param("cpu", marks=needs_cpu)])
def test_sh_freq_bad_arguments(name):
    with use_backend(name):
        with pytest.raises(KernelError, match="sh_encode: inputs must have 3 columns"):
            sh_encode(torch.rand(4, 2), 4)
        with pytest.raises(KernelError, match="sh_encode: degree must be an integer in 1..8"):
            sh_encode(torch.rand(4, 3), 9)
        with pytest.raises(KernelError, match="sh_encode: inputs must be float32"):
            sh_encode(torch.rand(4, 3).half(), 4)
        with pytest.raises(KernelError, match="sh_encode: inputs must be contiguous"):
            sh_encode(torch.rand(3, 4).t(), 4)
        with pytest.raises(KernelError, match="freq_encode: n_freqs must be"):
            freq_encode(torch.rand(4, 3), -1)
        with pytest.raises(KernelError, match="freq_encode: inputs must have 2 dimensions"):
            freq_encode(torch.rand(4), 2)
        with pytest.raises(KernelError, match="GridEncoder: inputs must have shape"):
            make_grid(3, 2, "hash", False, "linear")(torch.rand(4, 2))


@needs_cpu
def test_compiled_module_checks_arguments_itself():
    """The bindings check too (a direct call never reads out of bounds)."""
    mod = loader.load("encoding", "cpu")
    scales = torch.tensor(level_scales(1, 2.0, 4), dtype=torch.float64)
    offsets = torch.tensor([0, 32], dtype=torch.int32)
    with pytest.raises(RuntimeError, match="offsets must be int32"):
        mod.grid_encode_forward(torch.rand(4, 3), torch.zeros(32, 2), offsets.long(), scales, 0, False, 0)
    with pytest.raises(RuntimeError, match="embeddings must have 1, 2, 4 or 8 columns"):
        mod.grid_encode_forward(torch.rand(4, 3), torch.zeros(32, 3), offsets, scales, 0, False, 0)
    with pytest.raises(RuntimeError, match="grad must have shape"):
        mod.sh_encode_backward(torch.zeros(4, 9), torch.rand(4, 3), 4)


# --------------------------------------------------------------------------------------------------
# CUDA: the same comparisons on the GPU (skipped without one).


@pytest.mark.cuda
@pytest.mark.parametrize("D", [2, 3])
@pytest.mark.parametrize("C", [1, 2, 4, 8])
@pytest.mark.parametrize("gridtype", ["hash", "tiled"])
@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_cuda_matches_torch(D, C, gridtype, interpolation, align_corners):
    gen = torch.Generator().manual_seed(D * 100 + C)
    enc = make_grid(D, C, gridtype, align_corners, interpolation)
    x = edge_points(enc, D, 64, gen)
    enc = enc.cuda()
    assert_grid_backends_agree(enc, x.cuda(), "cuda")


@pytest.mark.cuda
def test_grid_cuda_large_batch_and_empty():
    gen = torch.Generator().manual_seed(5)
    enc = GridEncoder(3, 16, 2, base_resolution=16, log2_hashmap_size=12, desired_resolution=512).cuda()
    with torch.no_grad():
        enc.embeddings.uniform_(-1, 1)
    assert_grid_backends_agree(enc, torch.rand(50000, 3, generator=gen).cuda(), "cuda", atol=1e-4)
    out, ge, gx = run_grid(enc, torch.zeros(0, 3, device="cuda"), "cuda")
    assert out.shape == (0, 32) and gx.shape == (0, 3)


@pytest.mark.cuda
@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
def test_grid_cuda_gradcheck_float64(interpolation):
    enc = GridEncoder(3, 3, 2, base_resolution=2, log2_hashmap_size=5, desired_resolution=9,
                      interpolation=interpolation).double().cuda()
    gen = torch.Generator().manual_seed(7)
    x = (torch.rand(5, 3, generator=gen, dtype=torch.float64) * 0.9 + 0.05).cuda().requires_grad_(True)
    emb = (torch.rand(enc.offsets[-1].item(), 2, generator=gen, dtype=torch.float64) * 2 - 1).cuda().requires_grad_(True)

    def f(x, emb):
        return grid_encode(x, emb, enc.offsets, enc.per_level_scale, 2, True, "hash", False, interpolation)

    with use_backend("cuda"):
        assert torch.autograd.gradcheck(f, (x, emb), eps=1e-6, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.parametrize("degree", range(1, 9))
def test_sh_cuda_matches_torch(degree):
    x = unit_dirs(300, torch.Generator().manual_seed(degree)).cuda()
    o_ref, g_ref = run_unary(sh_encode, x, degree, "torch")
    o, g = run_unary(sh_encode, x, degree, "cuda")
    torch.testing.assert_close(o, o_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g, g_ref, atol=1e-4 * max(1.0, g_ref.abs().max().item()), rtol=1e-4)


@pytest.mark.cuda
@pytest.mark.parametrize("n_freqs", [0, 1, 6])
def test_freq_cuda_matches_torch(n_freqs):
    x = (torch.randn(100, 3, generator=torch.Generator().manual_seed(1)) * 3).cuda()
    o_ref, g_ref = run_unary(freq_encode, x, n_freqs, "torch")
    o, g = run_unary(freq_encode, x, n_freqs, "cuda")
    torch.testing.assert_close(o, o_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g, g_ref, atol=1e-3, rtol=1e-4)


@pytest.mark.cuda
def test_sh_freq_cuda_gradcheck_float64():
    gen = torch.Generator().manual_seed(11)
    d = unit_dirs(6, gen, torch.float64).cuda().requires_grad_(True)
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64).cuda().requires_grad_(True)
    with use_backend("cuda"):
        assert torch.autograd.gradcheck(lambda t: sh_encode(t, 8), (d,), eps=1e-6, atol=1e-5)
        assert torch.autograd.gradcheck(lambda t: freq_encode(t, 4), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.cuda
def test_cuda_rejects_mixed_devices():
    enc = make_grid(3, 2, "hash", False, "linear").cuda()
    with use_backend("cuda"), pytest.raises(KernelError, match="grid_encode: embeddings must be on cuda"):
        grid_encode(torch.rand(4, 3, device="cuda"), enc.embeddings.detach().cpu(), enc.offsets,
                    enc.per_level_scale, enc.base_resolution)

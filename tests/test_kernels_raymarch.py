"""The raymarch kernels: compiled backends against the pure-torch reference, and the reference against
first principles (naive autograd compositing, hand-computed marching on simple grids)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radnerf_cli.errors import KernelError
from radnerf_cli.kernels import raymarch as rm
from radnerf_cli.kernels import ref_raymarch as ref
from radnerf_cli.kernels import set_backend
from radnerf_cli.kernels.backend import get_backend

BACKENDS = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
FLT_MAX = float(np.finfo(np.float32).max)


@pytest.fixture
def use_backend():
    before = get_backend()

    def use(name: str) -> torch.device:
        set_backend(name)
        return torch.device("cuda" if name == "cuda" else "cpu")

    yield use
    set_backend(before)


def _exact(backend: str) -> dict:
    """Tolerances of float comparisons: bit-exact on cpu; the GPU's expf may differ by an ulp."""
    return {"rtol": 0.0, "atol": 0.0} if backend == "cpu" else {"rtol": 1e-5, "atol": 1e-6}


def make_rays(n: int, seed: int, miss: int = 0, inside: int = 0):
    """Rays from cameras ~1.8 away aimed near the origin; plus rays that miss and rays starting inside."""
    g = torch.Generator().manual_seed(seed)
    o = torch.randn(n, 3, generator=g)
    o = o / o.norm(dim=1, keepdim=True) * 1.8
    target = torch.rand(n, 3, generator=g) * 0.8 - 0.4
    d = target - o
    if miss:  # tangent to the sphere of radius 1.8 > sqrt(3): the line misses the box
        d[:miss] = torch.linalg.cross(o[:miss], torch.randn(miss, 3, generator=g))
    if inside:
        o[miss:miss + inside] = torch.rand(inside, 3, generator=g) * 1.2 - 0.6
    d = d / d.norm(dim=1, keepdim=True)
    return o.contiguous(), d.contiguous()


def random_bitfield(C: int, H: int, p: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    grid = (torch.rand(C, H**3, generator=g) < p).float()
    return ref.packbits(grid, 0.5)


AABB = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])


# ----------------------------------------------------------------------------------------------
# geometry, morton, packbits
# ----------------------------------------------------------------------------------------------

def test_reference_near_far_known_values():
    o = torch.tensor([[0.0, 0.0, -3.0], [0.0, 3.0, 0.0], [0.1, 0.2, 0.3], [5.0, 5.0, 5.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    n, f = ref.near_far_from_aabb(o, d, AABB, 0.2)
    assert n[:2].tolist() == [2.0, 2.0] and f[:2].tolist() == [4.0, 4.0]
    assert n[2].item() == pytest.approx(0.2) and f[2].item() == pytest.approx(0.9)  # starts inside
    assert n[3].item() == FLT_MAX and f[3].item() == FLT_MAX  # misses


@pytest.mark.parametrize("backend", BACKENDS)
def test_near_far_matches_reference(backend, use_backend):
    dev = use_backend(backend)
    o, d = make_rays(300, seed=1, miss=40, inside=40)
    d[-5:, 0] = 0.0  # axis-parallel rays: infinite slabs
    d = d.contiguous()
    n_ref, f_ref = ref.near_far_from_aabb(o, d, AABB, 0.05)
    n, f = rm.near_far_from_aabb(o.to(dev), d.to(dev), AABB.to(dev), 0.05)
    torch.testing.assert_close(n.cpu(), n_ref, **_exact(backend))
    torch.testing.assert_close(f.cpu(), f_ref, **_exact(backend))
    assert (n_ref[:40] == FLT_MAX).all()
    assert (n_ref[40:80] == 0.05).all()
    e = torch.zeros(0, 3, device=dev)
    n0, f0 = rm.near_far_from_aabb(e, e, AABB.to(dev))
    assert n0.shape == (0,) and f0.shape == (0,)


def test_reference_morton_known_values():
    c = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [2, 0, 0], [1023, 1023, 1023]], dtype=torch.int32)
    assert ref.morton3D(c).tolist() == [1, 2, 4, 7, 8, 2**30 - 1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_morton_round_trip_and_reference(backend, use_backend):
    dev = use_backend(backend)
    g = torch.Generator().manual_seed(2)
    c = torch.randint(0, 1024, (5000, 3), generator=g, dtype=torch.int32)
    m = rm.morton3D(c.to(dev))
    assert torch.equal(m.cpu(), ref.morton3D(c))
    assert torch.equal(rm.morton3D_invert(m).cpu(), c)
    # every index of a 16^3 grid maps to a distinct cell and back
    idx = torch.arange(16**3, dtype=torch.int32)
    cells = rm.morton3D_invert(idx.to(dev)).cpu()
    assert cells.max() == 15 and len({tuple(x) for x in cells.tolist()}) == 16**3
    assert torch.equal(rm.morton3D(cells.to(dev)).cpu(), idx)
    assert rm.morton3D(torch.zeros(0, 3, dtype=torch.int32, device=dev)).shape == (0,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_packbits(backend, use_backend):
    dev = use_backend(backend)
    g = torch.Generator().manual_seed(3)
    grid = torch.rand(2, 16**3, generator=g)
    bits = rm.packbits(grid.to(dev), 0.3).cpu()
    want = np.packbits((grid.numpy().reshape(-1) > 0.3).astype(np.uint8), bitorder="little")
    assert bits.dtype == torch.uint8 and np.array_equal(bits.numpy(), want)
    assert torch.equal(bits, ref.packbits(grid, 0.3))
    assert (rm.packbits(torch.zeros(1, 8**3, device=dev), 0.0).cpu() == 0).all()
    assert (rm.packbits(torch.ones(1, 8**3, device=dev), 0.0).cpu() == 255).all()


# ----------------------------------------------------------------------------------------------
# march_rays_train
# ----------------------------------------------------------------------------------------------

def _march_both(backend, dev, o, d, bits, C, H, noises, dt_gamma, max_steps, bound=1.0):
    n, f = ref.near_far_from_aabb(o, d, AABB * bound, 0.05)
    out_ref = ref.march_rays_train(o, d, bound, bits, C, H, n, f, noises, dt_gamma, max_steps)
    nz = None if noises is None else noises.to(dev)
    out = rm.march_rays_train(o.to(dev), d.to(dev), bound, bits.to(dev), C, H, n.to(dev), f.to(dev), nz, dt_gamma,
                              max_steps)
    return [x.cpu() for x in out], out_ref, (n, f)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("C,H,dt_gamma,noisy", [(1, 32, 0.0, False), (2, 16, 1 / 128, True), (3, 8, 1 / 64, True)])
def test_march_rays_train_matches_reference(backend, use_backend, C, H, dt_gamma, noisy):
    dev = use_backend(backend)
    o, d = make_rays(400, seed=10 + C, miss=30, inside=30)
    bound = 2.0 if C > 1 else 1.0
    o = o * bound
    bits = random_bitfield(C, H, 0.4, seed=C)
    noises = torch.rand(400, generator=torch.Generator().manual_seed(5)) if noisy else None
    (xyzs, dirs, deltas, rays), (xr, dr, lr, rr), (n, f) = _march_both(backend, dev, o, d, bits, C, H, noises,
                                                                        dt_gamma, 128, bound)
    assert torch.equal(rays, rr)
    assert xyzs.shape[0] == int(rays[:, 2].sum()) > 0
    torch.testing.assert_close(xyzs, xr, **_exact(backend))
    torch.testing.assert_close(deltas, lr, **_exact(backend))
    torch.testing.assert_close(dirs, dr, **_exact(backend))
    # layout: ray i's samples are contiguous at its offset, in order; counts bounded; points inside
    counts = rays[:, 2].long()
    assert torch.equal(rays[:, 0], torch.arange(400, dtype=torch.int32))
    assert torch.equal(rays[:, 1].long(), torch.cumsum(counts, 0) - counts)
    assert counts.max() <= 128 and (counts[:30] == 0).all()  # rays that miss give nothing
    assert xyzs.abs().max() <= bound
    ray_of = torch.repeat_interleave(torch.arange(400), counts)
    first = rays[:, 1].long()[ray_of] == torch.arange(xyzs.shape[0])
    t = deltas[:, 1]
    assert (t[1:][~first[1:]] > t[:-1][~first[1:]]).all()
    assert torch.equal(dirs, d[ray_of])


def test_reference_march_fully_occupied_uniform_steps():
    """Every cell occupied, dt_gamma 0: samples every dt_min from near, up to max_steps or far."""
    o = torch.tensor([[0.0, 0.0, -3.0], [0.3, -0.2, 0.1]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    n, f = ref.near_far_from_aabb(o, d, AABB, 0.0)
    bits = torch.full((16**3 // 8,), 255, dtype=torch.uint8)
    xyzs, dirs, deltas, rays = ref.march_rays_train(o, d, 1.0, bits, 1, 16, n, f, None, 0.0, 1024)
    dt = ref.step_limits(1, 16, 1024)[0]
    assert dt == pytest.approx(2 * np.sqrt(3) / 1024)
    assert (deltas[:, 0] == dt).all()
    assert int(rays[0, 2]) == pytest.approx(2.0 / dt, abs=2)
    assert deltas[0, 1].item() == pytest.approx(2.0 + dt)
    assert xyzs[0].tolist() == pytest.approx([0.0, 0.0, -1.0])
    assert int(rays[1, 2]) == pytest.approx(1.2 / dt, abs=2)  # from inside (y=-0.2) to the wall y=1
    # a box 8 wide holds more than max_steps steps of 2*sqrt(3)/max_steps: the count is capped
    n4, f4 = ref.near_far_from_aabb(o * 4, d, AABB * 4, 0.0)
    capped = ref.march_rays_train(o * 4, d, 4.0, bits, 1, 16, n4, f4, None, 0.0, 100)[3]
    assert capped[:, 2].tolist() == [100, 100]


def test_reference_march_single_occupied_cell():
    """Only one cell occupied: every sample lies in that cell; empty cells are skipped."""
    H = 16
    cell = torch.tensor([[8, 8, 8]], dtype=torch.int32)
    grid = torch.zeros(1, H**3)
    grid[0, ref.morton3D(cell).long()] = 1.0
    bits = ref.packbits(grid, 0.5)
    o = torch.tensor([[0.06, 0.07, -3.0]])
    d = torch.tensor([[0.0, 0.0, 1.0]])
    n, f = ref.near_far_from_aabb(o, d, AABB, 0.0)
    xyzs, _, deltas, rays = ref.march_rays_train(o, d, 1.0, bits, 1, H, n, f, None, 0.0, 1024)
    assert rays[0, 2] > 0
    cells = ((xyzs + 1) * 0.5 * H).long()
    assert (cells == 8).all()
    assert rays[0, 2] <= int((2.0 / H) / deltas[0, 0].item()) + 1


@pytest.mark.parametrize("backend", ["torch", *BACKENDS])
def test_march_rays_train_edge_cases(backend, use_backend):
    dev = use_backend(backend)
    C, H = 1, 16
    o, d = make_rays(64, seed=7, miss=8, inside=8)
    empty = torch.zeros(H**3 // 8, dtype=torch.uint8)
    full = torch.full((H**3 // 8,), 255, dtype=torch.uint8)
    xyzs, dirs, deltas, rays = _march_both(backend, dev, o, d, empty, C, H, None, 0.0, 64)[0]
    assert xyzs.shape == (0, 3) and deltas.shape == (0, 2) and (rays[:, 2] == 0).all()
    out, out_ref, (n, f) = _march_both(backend, dev, o, d, full, C, H, None, 0.0, 64)
    assert torch.equal(out[3], out_ref[3]) and (out[3][:8, 2] == 0).all()
    steps = ((f[8:] - n[8:]) / ref.step_limits(C, H, 64)[0]).ceil()  # fully occupied: uniform steps near -> far
    assert ((out[3][8:, 2] - steps).abs() <= 1).all()
    torch.testing.assert_close(out[0], out_ref[0], **_exact(backend))
    z = torch.zeros(0, 3, device=dev)
    zn = torch.zeros(0, device=dev)
    out0 = rm.march_rays_train(z, z, 1.0, full.to(dev), C, H, zn, zn, zn, 0.0, 64)
    assert [tuple(x.shape) for x in out0] == [(0, 3), (0, 3), (0, 2), (0, 3)]


# ----------------------------------------------------------------------------------------------
# composite_rays_train
# ----------------------------------------------------------------------------------------------

def make_samples(counts: list[int], seed: int, dtype=torch.float32, dense_rays: tuple[int, ...] = ()):
    """Random per-sample inputs for rays with the given counts (dense rays get large sigmas: early stop)."""
    g = torch.Generator().manual_seed(seed)
    cnt = torch.tensor(counts)
    M = int(cnt.sum())
    sigmas = torch.rand(M, generator=g, dtype=torch.float64) * 20
    off = torch.cumsum(cnt, 0) - cnt
    for r in dense_rays:
        sigmas[off[r]:off[r] + cnt[r]] = 1e4
    rgbs = torch.rand(M, 3, generator=g, dtype=torch.float64)
    ambient = torch.rand(M, generator=g, dtype=torch.float64) * 2 - 1
    dt = torch.rand(M, generator=g, dtype=torch.float64) * 0.05 + 0.001
    t = torch.zeros(M, dtype=torch.float64)
    for i in range(len(counts)):
        s = slice(int(off[i]), int(off[i] + cnt[i]))
        t[s] = 0.5 + torch.cumsum(dt[s], 0)
    deltas = torch.stack([dt, t], 1)
    rays = torch.stack([torch.arange(len(counts)), off, cnt], 1).int()
    return [x.to(dtype).contiguous() for x in (sigmas, rgbs, ambient, deltas)] + [rays]


def naive_composite(sigmas, rgbs, ambient, deltas, rays, T_thresh):
    """Per-ray Python loop with autograd: the definition the kernels implement."""
    outs = []
    for idx, off, cnt in rays.tolist():
        T = torch.ones((), dtype=sigmas.dtype)
        acc = [torch.zeros((), dtype=sigmas.dtype) for _ in range(3)]
        img = torch.zeros(3, dtype=sigmas.dtype)
        for j in range(off, off + cnt):
            alpha = 1 - torch.exp(-sigmas[j] * deltas[j, 0])
            w = alpha * T
            acc = [acc[0] + w, acc[1] + w * ambient[j], acc[2] + w * deltas[j, 1]]
            img = img + w * rgbs[j]
            T = T * (1 - alpha)
            if T.item() < T_thresh:
                break
        outs.append((idx, acc, img))
    outs.sort(key=lambda x: x[0])
    ws = torch.stack([a[0] for _, a, _ in outs])
    amb = torch.stack([a[1] for _, a, _ in outs])
    dep = torch.stack([a[2] for _, a, _ in outs])
    return ws, amb, dep, torch.stack([i for _, _, i in outs])


def test_reference_composite_matches_naive_autograd():
    counts = [5, 0, 12, 1, 30, 7]
    s, r, a, dl, rays = make_samples(counts, seed=11, dtype=torch.float64, dense_rays=(4,))
    rays = rays[torch.tensor([2, 0, 5, 1, 4, 3])].contiguous()  # rays listed out of order
    leaves = [x.clone().requires_grad_(True) for x in (s, r, a)]
    want = naive_composite(*leaves, dl, rays, 1e-4)
    got = ref.composite_rays_train_forward(s, r, a, dl, rays, 1e-4)
    for x, y in zip(got, want, strict=True):
        torch.testing.assert_close(x, y.detach())
    g = [torch.randn_like(x) for x in want]
    grads = torch.autograd.grad(want, leaves, g)
    ws = got[0]
    mine = ref.composite_rays_train_backward(g[0], g[1], g[2], g[3], s, r, a, dl, rays, ws, 1e-4)
    for x, y in zip(mine, grads, strict=True):
        torch.testing.assert_close(x, y)
    # the dense ray stopped early: samples after the stop get no gradient
    off = sum(counts[:4])
    assert (mine[0][off + 2:off + 30] == 0).all() and (mine[1][off + 2:off + 30] == 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_composite_rays_train_matches_reference(backend, use_backend):
    dev = use_backend(backend)
    g = torch.Generator().manual_seed(12)
    counts = torch.randint(0, 40, (300,), generator=g).tolist()
    s, r, a, dl, rays = make_samples(counts, seed=13, dense_rays=(3, 17, 50))
    rays = rays[torch.randperm(300, generator=g)].contiguous()
    want = ref.composite_rays_train_forward(s, r, a, dl, rays, 1e-4)
    leaves = [x.to(dev).requires_grad_(True) for x in (s, r, a)]
    got = rm.composite_rays_train(*leaves, dl.to(dev), rays.to(dev), 1e-4)
    for x, y in zip(got, want, strict=True):
        torch.testing.assert_close(x.detach().cpu(), y, rtol=1e-5, atol=1e-5)
    gouts = [torch.randn(x.shape, generator=g) for x in want]
    grads = torch.autograd.grad(got, leaves, [x.to(dev) for x in gouts])
    want_g = ref.composite_rays_train_backward(*gouts, s, r, a, dl, rays, want[0], 1e-4)
    for x, y in zip(grads, want_g, strict=True):
        torch.testing.assert_close(x.cpu(), y, rtol=1e-4, atol=1e-4)
    # only some outputs used: the missing gradients count as zero
    img = rm.composite_rays_train(*leaves, dl.to(dev), rays.to(dev), 1e-4)[3]
    gs = torch.autograd.grad(img.sum(), leaves[0])[0]
    want_s = ref.composite_rays_train_backward(torch.zeros(300), torch.zeros(300), torch.zeros(300),
                                               torch.ones(300, 3), s, r, a, dl, rays, want[0], 1e-4)[0]
    torch.testing.assert_close(gs.cpu(), want_s, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", ["torch", "cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_composite_rays_train_gradcheck_float64(backend, use_backend):
    dev = use_backend(backend)
    s, r, a, dl, rays = make_samples([4, 0, 6, 3], seed=14, dtype=torch.float64)
    s = s * 0.2  # keep T above T_thresh: the early stop is not differentiable
    leaves = tuple(x.to(dev).requires_grad_(True) for x in (s, r, a))
    dl, rays = dl.to(dev), rays.to(dev)
    assert torch.autograd.gradcheck(lambda x, y, z: rm.composite_rays_train(x, y, z, dl, rays, 1e-4), leaves,
                                    eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", ["torch", *BACKENDS])
def test_composite_rays_train_empty_batches(backend, use_backend):
    dev = use_backend(backend)
    z = torch.zeros(0, device=dev)
    outs = rm.composite_rays_train(z, torch.zeros(0, 3, device=dev), z, torch.zeros(0, 2, device=dev),
                                   torch.zeros(0, 3, dtype=torch.int32, device=dev))
    assert [tuple(x.shape) for x in outs] == [(0,), (0,), (0,), (0, 3)]
    rays = torch.tensor([[0, 0, 0], [1, 0, 0]], dtype=torch.int32, device=dev)  # rays without samples
    outs = rm.composite_rays_train(z, torch.zeros(0, 3, device=dev), z, torch.zeros(0, 2, device=dev), rays)
    assert all((x == 0).all() for x in outs) and outs[3].shape == (2, 3)


# ----------------------------------------------------------------------------------------------
# inference: march_rays + composite_rays
# ----------------------------------------------------------------------------------------------

def render_loop(dev, o, d, bits, C, H, n, f, noise_seed, max_steps, T_thresh, use_ref=False):
    """The renderer's loop; returns weights_sum, depth, image and the number of steps taken."""
    N = o.shape[0]
    o, d, bits, n, f = (x.to(dev) for x in (o, d, bits, n, f))
    ws, depth, image = torch.zeros(N, device=dev), torch.zeros(N, device=dev), torch.zeros(N, 3, device=dev)
    rays_t = n.clone()
    alive = torch.arange(N, dtype=torch.int32, device=dev)
    g = torch.Generator().manual_seed(noise_seed)
    steps = 0
    march = ref.march_rays if use_ref else rm.march_rays
    comp = ref.composite_rays if use_ref else rm.composite_rays
    while alive.numel() > 0 and steps < 500:
        n_alive = alive.numel()
        n_step = max(min(N // n_alive, 8), 1)
        noises = torch.rand(n_alive, generator=g).to(dev) if noise_seed else None
        xyzs, dirs, deltas = march(n_alive, n_step, alive, rays_t, o, d, 1.0, bits, C, H, n, f, noises, 0.0,
                                   max_steps)
        # a fixed field: density from position, colour from direction
        sig = (xyzs.norm(dim=1) < 0.6).float() * 30.0
        rgb = (dirs * 0.5 + 0.5).contiguous()
        comp(n_alive, n_step, alive, rays_t, sig, rgb, deltas, ws, depth, image, T_thresh)
        alive = alive[alive >= 0].contiguous()
        steps += 1
    return ws.cpu(), depth.cpu(), image.cpu(), steps


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("noise_seed", [0, 21])
def test_inference_loop_matches_reference(backend, use_backend, noise_seed):
    dev = use_backend(backend)
    C, H = 1, 32
    o, d = make_rays(256, seed=20, miss=16, inside=16)
    n, f = ref.near_far_from_aabb(o, d, AABB, 0.05)
    bits = random_bitfield(C, H, 0.7, seed=4)
    got = render_loop(dev, o, d, bits, C, H, n, f, noise_seed, 256, 1e-2)
    want = render_loop(torch.device("cpu"), o, d, bits, C, H, n, f, noise_seed, 256, 1e-2, use_ref=True)
    assert got[3] == want[3] and 1 < want[3] < 500
    for x, y in zip(got[:3], want[:3], strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)
    assert (want[0][:16] == 0).all() and want[0].max() > 0.9


def test_reference_inference_equals_training_composite():
    """Without noise, the inference loop meets the same samples as march_rays_train + compositing."""
    C, H = 1, 32
    o, d = make_rays(128, seed=22, miss=8, inside=8)
    n, f = ref.near_far_from_aabb(o, d, AABB, 0.05)
    bits = random_bitfield(C, H, 0.7, seed=5)
    ws, depth, image, steps = render_loop(torch.device("cpu"), o, d, bits, C, H, n, f, 0, 256, 1e-4, use_ref=True)
    assert steps < 500  # every ray finished
    xyzs, dirs, deltas, rays = ref.march_rays_train(o, d, 1.0, bits, C, H, n, f, None, 0.0, 256)
    sig = (xyzs.norm(dim=1) < 0.6).float() * 30.0
    rgb = dirs * 0.5 + 0.5
    w2, _, d2, i2 = ref.composite_rays_train_forward(sig, rgb, torch.zeros_like(sig), deltas, rays, 1e-4)
    torch.testing.assert_close(ws, w2, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(image, i2, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(depth, d2, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", ["torch", *BACKENDS])
def test_march_rays_advances_t_and_zero_fills(backend, use_backend):
    dev = use_backend(backend)
    o = torch.tensor([[0.0, 0.0, -3.0], [5.0, 5.0, 5.0]], device=dev)
    d = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], device=dev)
    n, f = rm.near_far_from_aabb(o, d, AABB.to(dev), 0.0)
    bits = torch.full((16**3 // 8,), 255, dtype=torch.uint8, device=dev)
    rays_t = n.clone()
    alive = torch.tensor([0, 1], dtype=torch.int32, device=dev)
    xyzs, dirs, deltas = rm.march_rays(2, 4, alive, rays_t, o, d, 1.0, bits, 1, 16, n, f, None, 0.0, 64)
    dt = ref.step_limits(1, 16, 64)[0]
    assert deltas[:4, 0].cpu().tolist() == [dt] * 4
    assert rays_t[0].item() == pytest.approx(2.0 + 4 * dt, rel=1e-5) and rays_t[0].item() == deltas[3, 1].item()
    assert (deltas[4:] == 0).all() and (xyzs[4:] == 0).all()  # the missing ray leaves its slots zero
    ws, dep, img = torch.zeros(2, device=dev), torch.zeros(2, device=dev), torch.zeros(2, 3, device=dev)
    rm.composite_rays(2, 4, alive, rays_t, torch.ones(8, device=dev), torch.ones(8, 3, device=dev), deltas, ws, dep,
                      img, 1e-2)
    assert alive.tolist() == [0, -1] and ws[0] > 0 and ws[1] == 0


# ----------------------------------------------------------------------------------------------
# bad inputs
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_bad_inputs_name_the_argument(backend, use_backend):
    use_backend(backend)
    o, d = make_rays(8, seed=30)
    n, f = ref.near_far_from_aabb(o, d, AABB)
    bits = torch.zeros(16**3 // 8, dtype=torch.uint8)
    with pytest.raises(KernelError, match="rays_o"):
        rm.near_far_from_aabb(o.double(), d, AABB)
    with pytest.raises(KernelError, match="rays_d"):
        rm.near_far_from_aabb(o, d[:4], AABB)
    with pytest.raises(KernelError, match="aabb"):
        rm.near_far_from_aabb(o, d, AABB[:3])
    with pytest.raises(KernelError, match="rays_d.*contiguous"):
        rm.near_far_from_aabb(o, torch.zeros(3, 8).t(), AABB)
    with pytest.raises(KernelError, match="density_bitfield"):
        rm.march_rays_train(o, d, 1.0, bits[:-1], 1, 16, n, f, None, 0.0, 64)
    with pytest.raises(KernelError, match="noises"):
        rm.march_rays_train(o, d, 1.0, bits, 1, 16, n, f, torch.zeros(3), 0.0, 64)
    with pytest.raises(KernelError, match="coords"):
        rm.morton3D(torch.zeros(4, 3))
    with pytest.raises(KernelError, match="rgbs"):
        rm.composite_rays_train(torch.zeros(4), torch.zeros(4, 2), torch.zeros(4), torch.zeros(4, 2),
                                torch.zeros(1, 3, dtype=torch.int32))
    with pytest.raises(KernelError, match="rays"):
        rm.composite_rays_train(torch.zeros(4), torch.zeros(4, 3), torch.zeros(4), torch.zeros(4, 2),
                                torch.zeros(1, 3))
    with pytest.raises(KernelError, match="n_alive"):
        rm.march_rays(9, 1, torch.zeros(8, dtype=torch.int32), n.clone(), o, d, 1.0, bits, 1, 16, n, f, None, 0.0, 64)


def test_compiled_checks_name_the_argument():
    from radnerf_cli.kernels import loader

    mod = loader.load("raymarch", "cpu", quiet=True)
    o = torch.zeros(4, 3)
    with pytest.raises(RuntimeError, match="rays_d must be contiguous"):
        mod.near_far_from_aabb(o, torch.zeros(3, 4).t(), AABB, 0.2)
    with pytest.raises(RuntimeError, match="density_bitfield"):
        mod.march_rays_train(o, o, 1.0, torch.zeros(3, dtype=torch.uint8), 1, 16, torch.zeros(4), torch.zeros(4),
                             None, 0.0, 64)


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_launch_status_check_names_the_kernel(backend):
    """Every launcher's status goes through one check: a non-zero status raises, naming the kernel."""
    from radnerf_cli.kernels import loader

    mod = loader.load("raymarch", backend, quiet=True)
    mod._check_launch(0, "march_rays")  # status 0: no error
    with pytest.raises(RuntimeError, match=r"march_rays_train \(scan\) \(" + backend.upper()
                       + r" kernel\) failed: more ray samples than int32 offsets can address \[status -2\]"):
        mod._check_launch(-2, "march_rays_train (scan)")
    if backend == "cuda":  # a CUDA status is described by the runtime, with the way to locate async faults
        with pytest.raises(RuntimeError, match=r"composite_rays \(CUDA kernel\) failed: .*illegal memory.*"
                                               r"RADNERF_SYNC_KERNELS=1"):
            mod._check_launch(700, "composite_rays")  # cudaErrorIllegalAddress

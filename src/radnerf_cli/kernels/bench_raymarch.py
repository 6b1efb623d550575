"""Benchmarks of the raymarch kernels on one backend, at the sizes of training and rendering.

- composite_rays_train forward+backward: 65,536 rays x 16 samples (the training batch).
- march_rays_train: 65,536 rays through a half-occupied 128^3 grid (C=1, bound 1, head aabb,
  max_steps 16, dt_gamma 1/256), rays from cameras about 1 unit in front of the head aimed at it.
- march_rays + composite_rays: the first inference step of a 450x450 image (all rays alive, n_step 1).
"""

from __future__ import annotations

import torch

from radnerf_cli.kernels import raymarch as rm
from radnerf_cli.kernels.timing import result_row as _row
from radnerf_cli.kernels.timing import time_fn, using_backend

HEAD_AABB = (-1.0, -0.5, -1.0, 1.0, 0.5, 1.0)


def run(backend: str, device: torch.device | str, quick: bool = False) -> list[dict]:
    """Time the raymarch ops on ``backend`` ("torch", "cpu" or "cuda") with tensors on ``device``."""
    with using_backend(backend):
        return _run(backend, torch.device(device), quick)


def camera_rays(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays from camera centres ~1 unit in front of the head (+z), aimed at points around the origin."""
    o = torch.randn(n, 3, generator=gen) * 0.05 + torch.tensor([0.0, 0.0, 1.0])
    target = (torch.rand(n, 3, generator=gen) * 2 - 1) * torch.tensor([0.6, 0.4, 0.2])
    d = target - o
    return o.contiguous(), (d / d.norm(dim=1, keepdim=True)).contiguous()


def _run(backend: str, dev: torch.device, quick: bool) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    repeat = 2 if backend == "torch" or quick else 5
    rows = []
    aabb = torch.tensor(HEAD_AABB, device=dev)

    # composite_rays_train forward + backward
    N, S = (8192 if quick else 65536), 16
    M = N * S
    sigmas = (torch.rand(M, generator=gen) * 10).to(dev).requires_grad_(True)
    rgbs = torch.rand(M, 3, generator=gen).to(dev).requires_grad_(True)
    ambient = torch.rand(M, generator=gen).to(dev).requires_grad_(True)
    dt = torch.full((M,), 0.027)
    t = 0.5 + torch.cumsum(dt.view(N, S), 1).view(-1)
    deltas = torch.stack([dt, t], 1).to(dev).contiguous()
    counts = torch.full((N,), S)
    rays = torch.stack([torch.arange(N), torch.arange(N) * S, counts], 1).int().to(dev)

    def composite_fwd_bwd():
        for x in (sigmas, rgbs, ambient):
            x.grad = None
        ws, amb, depth, image = rm.composite_rays_train(sigmas, rgbs, ambient, deltas, rays, 1e-4)
        (image.sum() + ws.sum() + amb.sum() + depth.sum()).backward()

    s = time_fn(composite_fwd_bwd, dev, warmup=1, repeat=repeat)
    rows.append(_row("composite_rays_train fwd+bwd", f"{N} rays x {S}", backend, dev, s, M, "samples/s"))

    # march_rays_train on a half-occupied 128^3 grid
    C, H = 1, 128
    grid = (torch.rand(C, H**3, generator=gen) < 0.5).float()
    bits = rm.packbits(grid.to(dev), 0.5)
    o, d = camera_rays(N, gen)
    o, d = o.to(dev), d.to(dev)
    nears, fars = rm.near_far_from_aabb(o, d, aabb, 0.05)
    noises = torch.rand(N, generator=gen).to(dev)

    def march_train():
        rm.march_rays_train(o, d, 1.0, bits, C, H, nears, fars, noises, 1 / 256, 16)

    s = time_fn(march_train, dev, warmup=1, repeat=repeat)
    rows.append(_row("march_rays_train", f"{N} rays, 128^3 half occupied, max_steps 16", backend, dev, s, N, "rays/s"))

    # one inference step (march_rays + composite_rays) of a full image
    side = 150 if quick else 450
    R = side * side
    o, d = camera_rays(R, gen)
    o, d = o.to(dev), d.to(dev)
    nears, fars = rm.near_far_from_aabb(o, d, aabb, 0.05)
    alive0 = torch.arange(R, dtype=torch.int32, device=dev)
    noises = torch.rand(R, generator=gen).to(dev)
    sig = (torch.rand(R, generator=gen) * 10).to(dev)
    rgb = torch.rand(R, 3, generator=gen).to(dev)

    def infer_step():
        rays_t = nears.clone()
        alive = alive0.clone()
        ws = torch.zeros(R, device=dev)
        depth = torch.zeros(R, device=dev)
        image = torch.zeros(R, 3, device=dev)
        n_step = max(min(R // R, 8), 1)
        _, _, deltas = rm.march_rays(R, n_step, alive, rays_t, o, d, 1.0, bits, C, H, nears, fars, noises,
                                     1 / 256, 16)
        rm.composite_rays(R, n_step, alive, rays_t, sig, rgb, deltas, ws, depth, image, 1e-2)

    s = time_fn(infer_step, dev, warmup=1, repeat=repeat)
    rows.append(_row("march_rays+composite_rays step", f"{side}x{side} rays, n_step 1", backend, dev, s, R, "rays/s"))
    return rows

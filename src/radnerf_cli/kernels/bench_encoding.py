"""Benchmarks of the encoding kernels on one backend: grid (forward, forward+backward), SH, frequency.

Sizes follow the model: the head's 3D grid (16 levels x 2 features, base 16, finest 2048, hashed
at 2^16 rows per level) on 2^18 random points (2^14 with ``quick``), SH degree 4 on as many unit
directions, and a 2D frequency encoding with 10 frequencies (the torso's) on as many points.
"""

from __future__ import annotations

import torch

from radnerf_cli.kernels.encoding import GridEncoder, freq_encode, sh_encode
from radnerf_cli.kernels.timing import result_row as _row
from radnerf_cli.kernels.timing import time_fn, using_backend


def run(backend: str, device: torch.device | str, quick: bool = False) -> list[dict]:
    """Time every encoding op on ``backend`` ("torch", "cpu" or "cuda") with tensors on ``device``."""
    with using_backend(backend):
        return _run(backend, torch.device(device), quick)


def _run(backend: str, dev: torch.device, quick: bool) -> list[dict]:
    gen = torch.Generator(device="cpu").manual_seed(0)
    B = 2**14 if quick else 2**18
    # The torch reference is slow: fewer repeats keep the whole run short.
    repeat = 2 if backend == "torch" or quick else 5
    warmup = 1
    rows = []

    enc = GridEncoder(input_dim=3, num_levels=16, level_dim=2, base_resolution=16, log2_hashmap_size=16,
                      desired_resolution=2048, gridtype="hash").to(dev)
    with torch.no_grad():
        enc.embeddings.uniform_(-1.0, 1.0)
    x = (torch.rand(B, 3, generator=gen) * 2 - 1).to(dev)
    size = f"2^{B.bit_length() - 1} pts"

    def grid_fwd():
        with torch.no_grad():
            enc(x)

    def grid_fwd_bwd():
        enc.embeddings.grad = None
        enc(x).sum().backward()

    xg = x.clone().requires_grad_(True)

    def grid_fwd_bwd_dx():
        enc.embeddings.grad = None
        xg.grad = None
        enc(xg).sum().backward()

    rows.append(_row("grid 3D 16x2 fwd", size, backend, dev, time_fn(grid_fwd, dev, warmup, repeat), B, "pts/s"))
    rows.append(_row("grid 3D 16x2 fwd+bwd", size, backend, dev, time_fn(grid_fwd_bwd, dev, warmup, repeat), B, "pts/s"))
    rows.append(_row("grid 3D 16x2 fwd+bwd+dx", size, backend, dev, time_fn(grid_fwd_bwd_dx, dev, warmup, repeat),
                     B, "pts/s"))

    d = torch.randn(B, 3, generator=gen)
    d = (d / d.norm(dim=1, keepdim=True)).to(dev).requires_grad_(True)

    def sh_fwd_bwd():
        d.grad = None
        sh_encode(d, 4).sum().backward()

    rows.append(_row("sh deg 4 fwd+bwd", size, backend, dev, time_fn(sh_fwd_bwd, dev, warmup, repeat),
                     B, "dirs/s"))

    p = (torch.rand(B, 2, generator=gen) * 2 - 1).to(dev).requires_grad_(True)

    def freq_fwd_bwd():
        p.grad = None
        freq_encode(p, 10).sum().backward()

    rows.append(_row("freq 2D x10 fwd+bwd", size, backend, dev,
                     time_fn(freq_fwd_bwd, dev, warmup, repeat), B, "pts/s"))
    return rows

"""Pure-torch twins of the encoding kernels: the ``torch`` backend and the test oracle.

Every function here is plain differentiable torch code with the exact semantics of the compiled
kernels in ``csrc/encoding.h`` (same indexing, hashing, clamping and operation order), so the tests
compare the C++/CUDA forward and backward passes against autograd through these functions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: Hash primes per dimension (as in instant-ngp / torch-ngp).
PRIMES = (1, 2654435761, 805459861)


def level_scale(level: int, log2_per_level_scale: float, base_resolution: int) -> tuple[float, int]:
    """Grid scale of ``level`` and its resolution (cells per side), computed in double precision."""
    scale = 2.0 ** (level * log2_per_level_scale) * base_resolution - 1.0
    return scale, int(math.ceil(scale)) + 1


def grid_index(pos_grid: Tensor, size: int, resolution: int, gridtype: str, align_corners: bool) -> Tensor:
    """Row of the level's table holding integer grid points ``pos_grid`` ([..., D] int64) -> [...]."""
    D = pos_grid.shape[-1]
    stride = 1
    index = torch.zeros(pos_grid.shape[:-1], dtype=torch.int64, device=pos_grid.device)
    for d in range(D):
        if stride > size:
            break
        index = index + pos_grid[..., d] * stride
        stride *= resolution if align_corners else resolution + 1
    if gridtype == "hash" and stride > size:
        h = torch.zeros_like(index)
        for d in range(D):
            h = h ^ ((pos_grid[..., d] * PRIMES[d]) & 0xFFFFFFFF)
        index = h
    return index % size


def grid_encode(
    inputs: Tensor,  # [B, D] in [0, 1] (clamped)
    embeddings: Tensor,  # [offsets[-1], C]
    offsets: list[int],  # [L+1]
    per_level_scale: float,
    base_resolution: int,
    gridtype: str = "hash",
    align_corners: bool = False,
    interpolation: str = "linear",
) -> Tensor:  # [B, L*C]
    """Multiresolution grid encoding; differentiable w.r.t. ``embeddings`` and ``inputs``.

    Inputs outside [0, 1] are clamped (their gradient is zero); NaN is read as 0. Level ``l`` has scale
    ``2**(l*log2(per_level_scale)) * base_resolution - 1``; its table rows are
    ``offsets[l]:offsets[l+1]``, indexed densely while the level fits and by a spatial hash above
    (``gridtype="hash"``) or densely modulo the level size (``"tiled"``).
    """
    B, D = inputs.shape
    L = len(offsets) - 1
    C = embeddings.shape[1]
    x = torch.where(torch.isnan(inputs), 0.0, inputs).clamp(0.0, 1.0)  # NaN reads as 0, like the kernels
    S = math.log2(per_level_scale)
    corners = torch.tensor(
        [[(idx >> d) & 1 for d in range(D)] for idx in range(1 << D)], dtype=torch.int64, device=inputs.device
    )  # [2^D, D]
    outs = []
    for level in range(L):
        size = offsets[level + 1] - offsets[level]
        scale, res = level_scale(level, S, base_resolution)
        pos = x * scale
        if not align_corners:
            pos = pos + 0.5
        floor = torch.floor(pos)
        frac = pos - floor
        if interpolation == "smoothstep":
            frac = frac * frac * (3.0 - 2.0 * frac)
        pos_grid = floor.to(torch.int64)  # [B, D]
        out = embeddings.new_zeros(B, C)
        for idx in range(1 << D):
            w = torch.ones_like(frac[:, 0])
            for d in range(D):
                w = w * (frac[:, d] if (idx >> d) & 1 else 1.0 - frac[:, d])
            pg = pos_grid + corners[idx]
            row = grid_index(pg, size, res, gridtype, align_corners) + offsets[level]
            out = out + w[:, None] * embeddings[row]
        outs.append(out)
    if not outs:
        return embeddings.new_zeros(B, 0)
    return torch.cat(outs, dim=1)


def _legendre_q(z: Tensor, degree: int) -> dict[tuple[int, int], Tensor]:
    """Q[band, m](z) with P_l^m(z) = sin(theta)^m Q[band, m](z) (Condon-Shortley phase), 0 <= m <= band < degree."""
    q: dict[tuple[int, int], Tensor] = {}
    for m in range(degree):
        dfact = 1.0
        for k in range(1, 2 * m, 2):
            dfact *= k
        # z * 0 keeps Y_0^0 in the graph: a degree-1 encoding is differentiable (with zero gradient).
        q[m, m] = z * 0.0 + (-1.0) ** m * dfact
        if m + 1 < degree:
            q[m + 1, m] = (2 * m + 1) * z * q[m, m]
        for band in range(m + 2, degree):
            q[band, m] = ((2 * band - 1) * z * q[band - 1, m] - (band + m - 1) * q[band - 2, m]) / (band - m)
    return q


def sh_norm(band: int, m: int) -> float:
    """Normalisation of the real spherical harmonic of band ``l`` and order ``|m|`` (sqrt(2) folded in for m != 0)."""
    m = abs(m)
    k = math.sqrt((2 * band + 1) / (4 * math.pi) * math.factorial(band - m) / math.factorial(band + m))
    return k if m == 0 else math.sqrt(2.0) * k


def sh_encode(inputs: Tensor, degree: int) -> Tensor:  # inputs [B, 3] unit dirs -> [B, degree**2]
    """Real spherical harmonics of bands 0..degree-1, in torch-ngp's order and signs.

    Column ``band*band + band + m`` holds ``Y_l^m``; written as polynomials in x, y, z (the inputs are not
    renormalised), so derivatives treat x, y, z as independent like the compiled kernels.
    """
    x, y, z = inputs[:, 0], inputs[:, 1], inputs[:, 2]
    q = _legendre_q(z, degree)
    cos_m = [torch.ones_like(x)]  # Re((x + iy)^m)
    sin_m = [torch.zeros_like(x)]  # Im((x + iy)^m)
    for _ in range(1, degree):
        c, s = cos_m[-1], sin_m[-1]
        cos_m.append(x * c - y * s)
        sin_m.append(x * s + y * c)
    cols = []
    for band in range(degree):
        for m in range(-band, band + 1):
            if m < 0:
                cols.append(sh_norm(band, m) * q[band, -m] * sin_m[-m])
            elif m == 0:
                cols.append(sh_norm(band, 0) * q[band, 0])
            else:
                cols.append(sh_norm(band, m) * q[band, m] * cos_m[m])
    return torch.stack(cols, dim=1)


def freq_encode(inputs: Tensor, n_freqs: int) -> Tensor:  # [B, D] -> [B, D*(1+2*n_freqs)]
    """``[x, sin(2^0 x), cos(2^0 x), sin(2^1 x), cos(2^1 x), ...]``, each block D wide."""
    parts = [inputs]
    for f in range(n_freqs):
        xf = inputs * float(2**f)
        parts.append(torch.sin(xf))
        parts.append(torch.cos(xf))
    return torch.cat(parts, dim=1)

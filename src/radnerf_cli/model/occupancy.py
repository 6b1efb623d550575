"""Occupancy grids that let the ray marcher skip empty space (RAD-NeRF / torch-ngp semantics).

The head grid holds an EMA of the density over a ``G^3`` grid (cascade 1: bound 1) in Morton order;
every few training steps it is re-evaluated at jittered cell centres with a random audio window and
eye value, dilated by one cell, decayed (x0.95, max with the new values) and packed into a bitfield
at ``min(mean density, density_thresh)``. Cells no training camera sees hold -1 and stay empty.
The torso grid is the 2D analogue over pixel coordinates, on the torso alpha. Both grids are buffers
of the model (checkpointed with its weights); the renderer reads them, the trainer updates them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class OccupancyGrid(nn.Module):
    """A ``G^3`` density grid (Morton order) and its bitfield, for one cascade of half-size ``bound``."""

    cascade = 1

    def __init__(self, grid_size: int = 128, bound: float = 1.0):
        super().__init__()
        self.grid_size = grid_size
        self.bound = bound
        self.register_buffer("density_grid", torch.zeros(1, grid_size**3))  # [1, G^3]
        self.register_buffer("density_bitfield", torch.zeros(grid_size**3 // 8, dtype=torch.uint8))  # [G^3/8]
        self._coords: Tensor | None = None
        self._needed: tuple[tuple[int, int], Tensor] | None = None

    def coords(self) -> Tensor:
        """Integer cell coordinates of every Morton index: [G^3, 3] int64 (cached)."""
        dev = self.density_grid.device
        if self._coords is None or self._coords.device != dev:
            from radnerf_cli.kernels.raymarch import morton3D_invert

            idx = torch.arange(self.grid_size**3, dtype=torch.int32, device=dev)
            self._coords = morton3D_invert(idx).long()
        return self._coords

    @property
    def mean_density(self) -> float:
        return float(self.density_grid.clamp(min=0).mean())

    def cell_centres(self, coords: Tensor) -> Tensor:
        """[K, 3] cell coordinates -> model-space points [K, 3] (cascade 0: bound min(1, bound))."""
        b = min(1.0, self.bound)
        half = b / self.grid_size
        return (2 * coords.float() / (self.grid_size - 1) - 1) * (b - half)

    @torch.no_grad()
    def mark_unseen(self, poses: Tensor, intrinsics, chunk: int = 1 << 16, pose_chunk: int = 64) -> int:
        """Set cells that no camera of ``poses`` [N, 4, 4] (model space) sees to -1; returns their count.

        ``intrinsics`` are (fx, fy, cx, cy) of the training images.
        """
        fx, fy, cx, cy = (float(v) for v in intrinsics)
        poses = poses.to(self.density_grid.device).float()
        half = min(1.0, self.bound) / self.grid_size
        coords = self.coords()
        seen = torch.zeros(self.grid_size**3, dtype=torch.bool, device=poses.device)
        for s in range(0, coords.shape[0], chunk):
            xyz = self.cell_centres(coords[s : s + chunk])  # [K, 3]
            hit = torch.zeros(xyz.shape[0], dtype=torch.bool, device=poses.device)
            for p in range(0, poses.shape[0], pose_chunk):
                P = poses[p : p + pose_chunk]
                cam = (xyz.unsqueeze(0) - P[:, None, :3, 3]) @ P[:, :3, :3]  # [P, K, 3]
                z = cam[..., 2]
                ok = (z > 0) & (cam[..., 0].abs() < cx / fx * z + 2 * half) & (cam[..., 1].abs() < cy / fy * z + 2 * half)
                hit |= ok.any(0)
            seen[s : s + chunk] = hit
        self.density_grid[0, ~seen] = -1
        return int((~seen).sum())

    @torch.no_grad()
    def update(
        self,
        density_fn: Callable[[Tensor], Tensor],  # [K, 3] model-space points -> sigma [K]
        generator: torch.Generator,
        decay: float = 0.95,
        density_thresh: float = 10.0,
        chunk: int = 1 << 16,
    ) -> None:
        """Re-evaluate every cell at a jittered point, dilate, EMA-merge and repack the bitfield.

        Every cell draws its jitter (the generator advances as for a full update), but only the
        :meth:`needed_cells` are evaluated."""
        G = self.grid_size
        dev = self.density_grid.device
        coords = self.coords()
        half = min(1.0, self.bound) / G
        needed = self.needed_cells()
        tmp = torch.zeros(G**3, device=dev)
        for s in range(0, coords.shape[0], chunk):
            xyz = self.cell_centres(coords[s : s + chunk])
            noise = torch.rand(xyz.shape, generator=generator, device=generator.device).to(dev)
            keep = needed[s : s + chunk]
            sigma = density_fn((xyz + (noise * 2 - 1) * half)[keep]).float().reshape(-1)
            tmp[s : s + chunk][keep] = sigma
        tmp = self.dilate(tmp)
        grid = self.density_grid[0]
        valid = (grid >= 0) & (tmp >= 0)
        grid[valid] = torch.maximum(grid[valid] * decay, tmp[valid])
        self.repack(density_thresh)

    @torch.no_grad()
    def needed_cells(self) -> Tensor:
        """[G^3] bool (Morton order): the cells an update must evaluate, those a camera sees and their
        neighbours (the dilation reads one cell around each seen cell). The others are never updated and
        never read, so leaving them out changes nothing but the time (cached while the unseen set holds)."""
        seen = self.density_grid[0] >= 0
        idx = torch.nonzero(seen).reshape(-1)
        key = (int(idx.numel()), int(idx.sum()))
        if self._needed is None or self._needed[0] != key or self._needed[1].device != seen.device:
            self._needed = (key, self.dilate(seen.float()) > 0)
        return self._needed[1]

    def dilate(self, values: Tensor) -> Tensor:
        """[G^3] per-cell values (Morton order) -> the max over each cell's 3x3x3 neighbourhood."""
        G = self.grid_size
        cx, cy, cz = self.coords().unbind(-1)
        dense = torch.empty(G, G, G, device=values.device, dtype=values.dtype)
        dense[cx, cy, cz] = values
        return F.max_pool3d(dense[None, None], kernel_size=3, stride=1, padding=1)[0, 0][cx, cy, cz]

    @torch.no_grad()
    def repack(self, density_thresh: float = 10.0) -> None:
        """Rebuild the bitfield at ``min(mean density, density_thresh)``."""
        from radnerf_cli.kernels.raymarch import packbits

        thresh = min(self.mean_density, density_thresh)
        self.density_bitfield.copy_(packbits(self.density_grid.contiguous(), thresh))

    def occupied_fraction(self) -> float:
        """Fraction of cells whose bit is set."""
        b = self.density_bitfield.long()
        count = sum(int(((b >> k) & 1).sum()) for k in range(8))
        return count / float(self.grid_size**3)


class TorsoGrid(nn.Module):
    """A ``G x G`` grid of the torso alpha over pixel coordinates; pixels below threshold skip the torso net."""

    def __init__(self, grid_size: int = 128):
        super().__init__()
        self.grid_size = grid_size
        self.register_buffer("density_grid", torch.zeros(grid_size * grid_size))  # [G*G]

    @property
    def mean_density(self) -> float:
        return float(self.density_grid.mean())

    @torch.no_grad()
    def update(
        self,
        alpha_fn: Callable[[Tensor], Tensor],  # [K, 2] coordinates in [-1, 1] -> alpha [K] or [K, 1]
        generator: torch.Generator,
        decay: float = 0.95,
    ) -> None:
        G = self.grid_size
        dev = self.density_grid.device
        r = torch.arange(G, device=dev)
        c0, c1 = torch.meshgrid(r, r, indexing="ij")
        coords = torch.stack([c0.reshape(-1), c1.reshape(-1)], -1)  # [G*G, 2]
        half = 1.0 / G
        xy = (2 * coords.float() / (G - 1) - 1) * (1 - half)
        noise = torch.rand(xy.shape, generator=generator, device=generator.device).to(dev)
        alpha = alpha_fn(xy + (noise * 2 - 1) * half).float().reshape(-1)
        tmp = torch.empty(G * G, device=dev)
        tmp[coords[:, 1] * G + coords[:, 0]] = alpha  # row = second coordinate (grid_sample's y)
        tmp = F.max_pool2d(tmp.view(1, 1, G, G), kernel_size=5, stride=1, padding=2).view(-1)
        self.density_grid.copy_(torch.maximum(self.density_grid * decay, tmp))

    def mask(self, coords: Tensor, thresh: float) -> Tensor:
        """[N, 2] pixel coordinates in [-1, 1] -> [N] bool: where the torso may be visible."""
        G = self.grid_size
        occ = F.grid_sample(
            self.density_grid.view(1, 1, G, G), coords.view(1, -1, 1, 2).float(), align_corners=True
        ).view(-1)
        return occ > min(thresh, self.mean_density)

"""Camera conventions and ray generation, exactly as RAD-NeRF (and torch-ngp) define them.

Poses in ``transforms_*.json`` are camera-to-world matrices in the NeRF/OpenGL convention (camera
looks along its -z, y up). RAD-NeRF moves them into instant-ngp's frame with
:func:`nerf_matrix_to_ngp`: rows permuted (y, z, x), columns 1 and 2 negated (so the camera looks
along +z with y down, like OpenCV) and the translation multiplied by ``scale``. Rays are then cast
through pixel centres: ``d_cam = ((col + 0.5 - cx) / fx, (row + 0.5 - cy) / fy, 1)``, normalised.

>>> import torch
>>> pose = nerf_matrix_to_ngp(torch.eye(4))
>>> rays = get_rays(pose[None], (10.0, 10.0, 2.0, 2.0), 4, 4)
>>> rays["rays_o"].shape, rays["inds"].shape
(torch.Size([1, 16, 3]), torch.Size([1, 16]))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def nerf_matrix_to_ngp(pose, scale: float = 4.0, offset: Sequence[float] = (0.0, 0.0, 0.0)):
    """RAD-NeRF's pose conversion. pose: [..., 4, 4] numpy array or tensor -> same type, float32.

    new = [[ p10, -p11, -p12, p13 * s + o0],
           [ p20, -p21, -p22, p23 * s + o1],
           [ p00, -p01, -p02, p03 * s + o2],
           [   0,    0,    0,           1]]
    """
    is_np = not isinstance(pose, Tensor)
    p = torch.as_tensor(np.asarray(pose, dtype=np.float32) if is_np else pose).float()
    if p.shape[-2:] != (4, 4):
        raise ValueError(f"pose must be [..., 4, 4], got {list(p.shape)}")
    off = torch.as_tensor(list(offset), dtype=torch.float32, device=p.device)
    new = torch.zeros_like(p)
    rows = p[..., [1, 2, 0], :]  # permute y, z, x
    new[..., :3, 0] = rows[..., 0]
    new[..., :3, 1] = -rows[..., 1]
    new[..., :3, 2] = -rows[..., 2]
    new[..., :3, 3] = rows[..., 3] * scale + off
    new[..., 3, 3] = 1.0
    return new.numpy() if is_np else new


def ngp_matrix_to_nerf(pose, scale: float = 4.0, offset: Sequence[float] = (0.0, 0.0, 0.0)):
    """Inverse of :func:`nerf_matrix_to_ngp` (same types and shapes)."""
    is_np = not isinstance(pose, Tensor)
    p = torch.as_tensor(np.asarray(pose, dtype=np.float32) if is_np else pose).float()
    off = torch.as_tensor(list(offset), dtype=torch.float32, device=p.device)
    rows = torch.zeros_like(p)
    rows[..., :3, 0] = p[..., :3, 0]
    rows[..., :3, 1] = -p[..., :3, 1]
    rows[..., :3, 2] = -p[..., :3, 2]
    rows[..., :3, 3] = (p[..., :3, 3] - off) / scale
    new = torch.zeros_like(p)
    new[..., [1, 2, 0], :] = rows[..., :3, :]
    new[..., 3, 3] = 1.0
    return new.numpy() if is_np else new


def get_rays(
    poses: Tensor,  # [B, 4, 4] camera-to-world, ngp convention
    intrinsics,  # [4] (fx, fy, cx, cy) in pixels
    H: int,
    W: int,
    N: int = -1,
    patch_size: int = 1,
    rect: Sequence[int] | None = None,
    generator: torch.Generator | None = None,
    inds: Tensor | None = None,
) -> dict[str, Tensor]:
    """Rays through pixel centres.

    N <= 0: every pixel, row-major. N > 0: N random pixels (with replacement), or, with
    ``patch_size`` > 1, N // patch_size^2 random square patches (each patch row-major, contiguous in
    the output). ``rect`` = (xmin, xmax, ymin, ymax) with x = rows and y = columns (RAD-NeRF's
    lips/face rectangles) selects every pixel of that rectangle, row-major, and ignores N.
    ``inds`` [N] (row * W + col) gives the pixels explicitly and overrides the rest.

    Returns rays_o, rays_d [B, N, 3] (rays_d unit length) and inds [B, N] (row * W + col).
    """
    if poses.ndim != 3 or poses.shape[-2:] != (4, 4):
        raise ValueError(f"poses must be [B, 4, 4], got {list(poses.shape)}")
    device = poses.device
    B = poses.shape[0]
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    gen_dev = generator.device if generator is not None else device

    if inds is not None:
        inds = inds.to(device).reshape(1, -1).expand(B, -1)
    elif rect is not None:
        xmin, xmax, ymin, ymax = (int(v) for v in rect)
        xmin, xmax = max(0, xmin), min(H, xmax)
        ymin, ymax = max(0, ymin), min(W, ymax)
        if xmax <= xmin or ymax <= ymin:
            raise ValueError(f"empty rect {tuple(rect)} for a {H}x{W} image")
        rr = torch.arange(xmin, xmax, device=device)
        cc = torch.arange(ymin, ymax, device=device)
        inds = (rr[:, None] * W + cc[None, :]).reshape(1, -1).expand(B, -1)
    elif N > 0 and patch_size > 1:
        p = int(patch_size)
        if p > H or p > W:
            raise ValueError(f"patch_size {p} is larger than the {H}x{W} image")
        n_patch = max(1, N // (p * p))
        top = torch.randint(0, H - p + 1, (n_patch,), generator=generator, device=gen_dev).to(device)
        left = torch.randint(0, W - p + 1, (n_patch,), generator=generator, device=gen_dev).to(device)
        pr, pc = torch.meshgrid(torch.arange(p, device=device), torch.arange(p, device=device), indexing="ij")
        rows = top[:, None] + pr.reshape(1, -1)
        cols = left[:, None] + pc.reshape(1, -1)
        inds = (rows * W + cols).reshape(1, -1).expand(B, -1)
    elif N > 0:
        n = min(int(N), H * W)
        inds = torch.randint(0, H * W, (n,), generator=generator, device=gen_dev).to(device)
        inds = inds.reshape(1, -1).expand(B, -1)
    else:
        inds = torch.arange(H * W, device=device).reshape(1, -1).expand(B, -1)

    i = (inds % W).float() + 0.5  # column
    j = torch.div(inds, W, rounding_mode="floor").float() + 0.5  # row
    dirs = torch.stack([(i - cx) / fx, (j - cy) / fy, torch.ones_like(i)], -1)  # [B, N, 3]
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    poses = poses.float()
    rays_d = dirs @ poses[:, :3, :3].transpose(-1, -2)
    rays_o = poses[:, None, :3, 3].expand_as(rays_d)
    return {"rays_o": rays_o, "rays_d": rays_d, "inds": inds.contiguous()}

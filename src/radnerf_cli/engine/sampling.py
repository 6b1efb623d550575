"""Which frame and which pixels a training step uses, and the targets gathered at those pixels.

Every draw comes from the trainer's one seeded generator, in this order within a step:
    head, lips   frame index; the ray subset (skipped for the whole mouth rectangle: first the rays
                 inside the lower-face rectangle when ``mouth_share`` > 0, then the uniform ones);
                 per-ray noise
    torso        frame index; the pixel subset
(grid updates draw their own frame index and jitter before the step's batch, every
``train.grid_update_interval`` steps). Changing the order changes every trained model, and a resumed run
would no longer match an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from radnerf_cli.render.composite import torso_over


def random_frame(data, gen: torch.Generator) -> int:
    """A uniformly drawn training frame index."""
    return int(torch.randint(len(data), (1,), generator=gen))


def background(fr: dict[str, Any], inds: Tensor | None = None) -> Tensor:
    """The frame's background at pixel indices ``inds`` (all pixels: None), [N, 3], with the
    ground-truth torso layer composited over it where the frame has one (what the head renders over)."""
    bg = fr["bg"].view(-1, 3)
    if inds is not None:
        bg = bg[inds]
    if fr["torso_image"] is None:
        return bg
    t = fr["torso_image"].view(-1, 4)
    if inds is not None:
        t = t[inds]
    return torso_over(t, bg)


@dataclass
class HeadBatch:
    """The rays of one head or lips step and their targets (on the training device)."""

    index: int  # training frame
    frame: dict[str, Any]  # the frame's tensors (SubjectData.frame)
    rays_o: Tensor  # [N, 3]
    rays_d: Tensor  # [N, 3]
    noises: Tensor  # [N] ray-start perturbation in [0, 1)
    gt: Tensor  # [N, 3] ground truth
    bg: Tensor  # [N, 3] background with the ground-truth torso over it
    outside: Tensor  # [N] bool: the pixel is outside the lower-face rectangle (where ambient is penalised)
    patch: tuple[int, int] | None  # (h, w) when the rays are the whole mouth rectangle, row-major
    inds: Tensor  # [N] row-major pixel indices of the rays, on the CPU

    @property
    def n(self) -> int:
        return int(self.noises.shape[0])


def in_rect(inds: Tensor, rect, W: int) -> Tensor:
    """[N] row-major pixel indices -> [N] bool: inside (xmin, xmax, ymin, ymax), x = rows."""
    xmin, xmax, ymin, ymax = (int(v) for v in rect)
    r = torch.div(inds, W, rounding_mode="floor")
    c = inds % W
    return (r >= xmin) & (r < xmax) & (c >= ymin) & (c < ymax)


def rect_pixels(rect, n: int, W: int, gen: torch.Generator) -> Tensor:
    """``n`` uniformly drawn pixel indices inside the rectangle (xmin, xmax, ymin, ymax)."""
    xmin, xmax, ymin, ymax = (int(v) for v in rect)
    rows = torch.randint(xmin, max(xmax, xmin + 1), (n,), generator=gen)
    cols = torch.randint(ymin, max(ymax, ymin + 1), (n,), generator=gen)
    return rows * W + cols


def head_batch(data, gen: torch.Generator, num_rays: int, mouth: bool, device: torch.device,
               mouth_share: float = 0.0, mouth_rect: str = "face") -> HeadBatch:
    """A random frame and ``num_rays`` rays of it, or (``mouth``) every ray of its mouth rectangle.

    ``mouth_share`` of the rays are drawn inside the frame's ``mouth_rect`` (``face``: the lower-face
    rectangle, nose to chin; ``lips``: the square around the lips), the rest anywhere: the mouth is a
    small part of the frame and otherwise gets few rays a step.
    """
    from radnerf_cli.data import get_rays

    i = random_frame(data, gen)
    fr = data.frame(i)
    pose = fr["pose"][None]
    patch = None
    if mouth:
        rect = fr["lips_rect"].tolist()
        rays = get_rays(pose, data.intrinsics, data.H, data.W, rect=rect)
        xmin, xmax, ymin, ymax = rect
        patch = (min(xmax, data.H) - max(xmin, 0), min(ymax, data.W) - max(ymin, 0))
    elif mouth_share > 0:
        n_face = int(round(num_rays * min(mouth_share, 1.0)))
        face = rect_pixels(fr[f"{mouth_rect}_rect"].tolist(), n_face, data.W, gen)
        rest = torch.randint(0, data.H * data.W, (num_rays - n_face,), generator=gen)
        rays = get_rays(pose, data.intrinsics, data.H, data.W, inds=torch.cat([face, rest]))
    else:
        rays = get_rays(pose, data.intrinsics, data.H, data.W, N=num_rays, generator=gen)
    inds = rays["inds"][0]
    noises = torch.rand(inds.shape[0], generator=gen)
    gt = fr["image"].view(-1, 3)[inds]
    bg = background(fr, inds)
    outside = ~in_rect(inds, fr["face_rect"].tolist(), data.W)
    return HeadBatch(
        i, fr, rays["rays_o"][0].to(device).contiguous(), rays["rays_d"][0].to(device).contiguous(),
        noises.to(device), gt.to(device), bg.to(device), outside.to(device), patch, inds,
    )


@dataclass
class TorsoBatch:
    """The pixels of one torso step and their targets (on the training device)."""

    index: int  # training frame
    frame: dict[str, Any]
    inds: Tensor  # [N] pixel indices (row-major), on the CPU
    bg: Tensor  # [N, 3] background
    target: Tensor  # [N, 3] the ground-truth torso over the background


def torso_batch(data, gen: torch.Generator, num_rays: int, device: torch.device, focus: float = 0.0) -> TorsoBatch:
    """A random frame and ``num_rays`` random pixels of it; with ``focus`` > 0 that fraction of them is
    drawn from the rows the body spans (from a few rows above the torso layer's top down), where
    the torso has something to learn, and the rest from the whole frame."""
    i = random_frame(data, gen)
    fr = data.frame(i)
    n_focus = int(round(num_rays * focus)) if fr["torso_image"] is not None else 0
    inds = torch.randint(0, data.H * data.W, (num_rays - n_focus,), generator=gen)
    if n_focus > 0:
        rows = (fr["torso_image"][..., 3] > 0).any(1).nonzero()
        top = max(0, int(rows[0]) - data.H // 32) if len(rows) else 0
        r = torch.randint(top, data.H, (n_focus,), generator=gen)
        c = torch.randint(0, data.W, (n_focus,), generator=gen)
        inds = torch.cat([inds, r * data.W + c])
    bg = fr["bg"].view(-1, 3)[inds]
    target = background(fr, inds)
    return TorsoBatch(i, fr, inds, bg.to(device), target.to(device))

"""The training losses of the three stages (RAD-NeRF's):

    head   MSE (predictions clamped to [0, 1]) + lambda_entropy * entropy(weights_sum)
           + ramp * lambda_amb * |ambient| outside the lower-face rectangle (nose to chin)
    lips   as head; on the whole-mouth steps + lambda_lpips * LPIPS (AlexNet) of the mouth patch
    torso  MSE + lambda_entropy * entropy(alpha) of the torso layer over the background
"""

from __future__ import annotations

import torch
from torch import Tensor

from radnerf_cli.model.config import TrainConfig
from radnerf_cli.render.composite import over


def entropy(x: Tensor) -> Tensor:
    """Mean binary entropy (bits) of opacities in [0, 1]; pushes them towards 0 or 1."""
    x = x.clamp(1e-5, 1 - 1e-5)
    return (-x * torch.log2(x) - (1 - x) * torch.log2(1 - x)).mean()


def ambient_ramp(stage: str, step: int, iters: int) -> float:
    """Weight of the ambient loss: ramped from 0 over the head stage, full in the lips stage."""
    return 1.0 if stage == "lips" else min(step / max(iters, 1), 1.0)


def head_loss(
    tc: TrainConfig, out: dict[str, Tensor], gt: Tensor, bg: Tensor, outside: Tensor, ramp: float
) -> tuple[Tensor, Tensor, Tensor]:
    """The head's loss from ``Renderer.head_train``'s output: (loss, mse, predicted colours [N, 3])."""
    ws = out["weights_sum"]
    pred = (out["image"] + (1 - ws).unsqueeze(-1) * bg).clamp(0, 1)  # as RAD-NeRF: the loss sees valid colours
    mse = ((pred - gt) ** 2).mean()
    loss = mse + tc.lambda_entropy * entropy(ws)
    loss = loss + ramp * tc.lambda_amb * (out["ambient"] * outside).mean()
    return loss, mse, pred


def mouth_lpips(lpips_fn, pred: Tensor, gt: Tensor, patch: tuple[int, int], min_patch: int) -> Tensor:
    """Mean LPIPS of the mouth patch ([h*w, 3] row-major colours); patches smaller than ``min_patch``
    are upsampled first (AlexNet needs a few pooling steps' worth of pixels)."""
    h, w = patch
    p = pred.view(1, h, w, 3).permute(0, 3, 1, 2)
    q = gt.view(1, h, w, 3).permute(0, 3, 1, 2)
    if min(h, w) < min_patch:
        size = (max(min_patch, h * min_patch // min(h, w)), max(min_patch, w * min_patch // min(h, w)))
        p = torch.nn.functional.interpolate(p, size=size, mode="bilinear", align_corners=False)
        q = torch.nn.functional.interpolate(q, size=size, mode="bilinear", align_corners=False)
    return lpips_fn(p.float(), q.float()).mean()


def load_lpips(device: torch.device):
    """The LPIPS network, frozen (it is a loss, not trained)."""
    from radnerf_cli.metrics.lpips import get_lpips

    fn = get_lpips(device)
    for p in fn.parameters():
        p.requires_grad_(False)
    return fn


def torso_loss(tc: TrainConfig, alpha: Tensor, rgb: Tensor, bg: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """The torso's loss from its layer (alpha [N, 1], rgb [N, 3]) over the background: (loss, mse)."""
    pred = over(rgb, alpha, bg)
    mse = ((pred - target) ** 2).mean()
    loss = mse + tc.lambda_entropy * entropy(alpha)
    return loss, mse

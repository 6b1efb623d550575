"""Pixel metrics: PSNR for numpy arrays and torch tensors (images in [0, data_range])."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

MAX_PSNR = 100.0  # reported for identical images instead of +inf


def psnr_from_mse(mse: float | Tensor, data_range: float = 1.0) -> float | Tensor:
    """PSNR in dB from a mean squared error, capped at MAX_PSNR: 10 log10(range^2 / mse)."""
    if isinstance(mse, Tensor):
        floor = data_range**2 * 10 ** (-MAX_PSNR / 10)
        return 10.0 * torch.log10(data_range**2 / mse.clamp_min(floor))
    if mse <= data_range**2 * 10 ** (-MAX_PSNR / 10):
        return MAX_PSNR
    return 10.0 * math.log10(data_range**2 / mse)


def psnr(pred, target, data_range: float = 1.0, per_image: bool = False):
    """Peak signal-to-noise ratio (dB) between two images or image batches of the same shape.

    pred, target: numpy arrays or tensors, e.g. [H, W, 3] or [B, 3, H, W]. ``per_image``: return
    one PSNR per leading index (a batch) instead of one over the whole array.
    Integer inputs are compared as they are: pass ``data_range=255`` for uint8 images.
    """
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"psnr needs two arrays of the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if isinstance(pred, Tensor) or isinstance(target, Tensor):
        p, t = torch.as_tensor(pred).double(), torch.as_tensor(target).double()
        err = (p - t).pow(2)
        mse = err.flatten(1).mean(1) if per_image else err.mean()
        out = psnr_from_mse(mse, data_range)
        return out.float()
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    err = (p - t) ** 2
    if per_image:
        return np.array([psnr_from_mse(float(e), data_range) for e in err.reshape(err.shape[0], -1).mean(1)])
    return float(psnr_from_mse(float(err.mean()), data_range))

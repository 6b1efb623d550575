"""Compositing a layer with alpha over what lies behind it (the torso over the background).

One formula, ``rgb * alpha + bg * (1 - alpha)``, for torch tensors and numpy arrays alike: the
trainer's targets, the renderer's torso layer and evaluation's ground-truth torso all use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def over(rgb: Any, alpha: Any, bg: Any) -> Any:
    """``rgb`` with opacity ``alpha`` (broadcast, e.g. [..., 1]) over ``bg``; tensors or float arrays."""
    return rgb * alpha + bg * (1 - alpha)


def torso_over(torso: Any, bg: Any) -> Any:
    """An RGBA torso layer [..., 4] over a background [..., 3].

    Float tensors or arrays in [0, 1] give the same type back; uint8 numpy arrays (alpha 0-255) are
    composited in float32 and rounded back to uint8.
    """
    if isinstance(torso, np.ndarray) and torso.dtype == np.uint8:
        a = torso[..., 3:4].astype(np.float32) / 255.0
        out = over(torso[..., :3].astype(np.float32), a, np.asarray(bg).astype(np.float32))
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return over(torso[..., :3], torso[..., 3:], bg)

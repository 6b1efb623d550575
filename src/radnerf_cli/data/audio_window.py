"""The attention window of audio features around one video frame (RAD-NeRF's ``get_audio_features``).

RAD-NeRF feeds the audio network 8 consecutive per-frame feature windows centred on the frame:
rows ``index - 4 ... index + 3`` of the ``[T, 16, C]`` feature file, with zero rows where the window
runs past either end (``att_mode`` 2 of the original).

>>> import torch
>>> feats = torch.arange(3, dtype=torch.float32).view(3, 1, 1).expand(3, 16, 2)
>>> audio_window(feats, 0)[:, 0, 0].tolist()
[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0]
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def audio_window(auds: Tensor, index: int, att: int = 8) -> Tensor:
    """auds: [T, 16, C]; returns [att, 16, C] = auds[index - att//2 : index + att//2], zero-padded."""
    if not isinstance(auds, Tensor):
        auds = torch.from_numpy(np.asarray(auds, dtype=np.float32))
    if auds.ndim != 3:
        raise ValueError(f"auds must be [T, 16, C], got {list(auds.shape)}")
    if att < 1:
        raise ValueError(f"att must be positive, got {att}")
    T = auds.shape[0]
    half = att // 2
    left, right = int(index) - half, int(index) - half + att
    out = auds.new_zeros((att, *auds.shape[1:]))
    lo, hi = max(left, 0), min(right, T)
    if hi > lo:
        out[lo - left : hi - left] = auds[lo:hi]
    return out

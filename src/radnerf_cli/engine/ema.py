"""The exponential moving average of the trained weights: what previews, validation and inference use.

The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after step ``n``, so the average follows the
weights closely at the start of a stage.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor


class WeightEMA:
    """An EMA ``shadow`` of named parameters (checkpointed as ``ema/<name>``)."""

    def __init__(self, named: list[tuple[str, torch.nn.Parameter]], decay: float):
        self.named = named
        self.decay = decay
        self.shadow: dict[str, Tensor] = {n: p.detach().clone() for n, p in named}

    def load(self, tensors: dict[str, Tensor], device: torch.device, known_only: bool = False) -> None:
        """Take saved averages (``known_only``: only those of the parameters being averaged)."""
        self.shadow.update({k: v.to(device) for k, v in tensors.items() if not known_only or k in self.shadow})

    @torch.no_grad()
    def update(self, n: int) -> None:
        """Blend in the current weights after step ``n``."""
        decay = min(self.decay, (1 + n) / (10 + n))
        shadows = [self.shadow[name] for name, _ in self.named]
        params = [p.detach() for _, p in self.named]
        torch._foreach_lerp_(shadows, params, 1.0 - decay)

    @contextmanager
    def applied(self):
        """The averaged weights in the parameters for the duration of the block, then the raw ones back."""
        backup = {n: p.detach().clone() for n, p in self.named}
        with torch.no_grad():
            for n, p in self.named:
                p.copy_(self.shadow[n])
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in self.named:
                    p.copy_(backup[n])

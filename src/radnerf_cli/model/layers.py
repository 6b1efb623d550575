"""Small building blocks shared by the fields: bias-free MLPs and the truncated exponential."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MLP(nn.Module):
    """``num_layers`` bias-free linear layers with ReLU between them (none after the last)."""

    def __init__(self, dim_in: int, dim_out: int, dim_hidden: int, num_layers: int):
        super().__init__()
        dims = [dim_in] + [dim_hidden] * (num_layers - 1) + [dim_out]
        self.net = nn.ModuleList(nn.Linear(dims[i], dims[i + 1], bias=False) for i in range(num_layers))

    def forward(self, x: Tensor, first: Tensor | None = None) -> Tensor:
        """``x`` [N, dim_in]; ``first`` [N, hidden] (optional) replaces the first layer's output."""
        for i, layer in enumerate(self.net):
            x = first if (i == 0 and first is not None) else layer(x)
            if i != len(self.net) - 1:
                x = F.relu(x, inplace=True)
        return x


class _TruncExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, g: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return g * torch.exp(x.clamp(max=15))


def trunc_exp(x: Tensor) -> Tensor:
    """exp(x) whose gradient is computed from exp(min(x, 15)), so large densities cannot blow up."""
    return _TruncExp.apply(x.float())

"""Input encodings of the fields: multiresolution grid, spherical harmonics, frequency.

Each public function checks its inputs (dtype, device, shape, contiguity; a :class:`KernelError`
names the argument), then runs on the backend :func:`radnerf_cli.kernels.backend.resolve` picks:
compiled CUDA or C++/OpenMP kernels through a private ``torch.autograd.Function``, or the pure-torch
reference of :mod:`radnerf_cli.kernels.ref_encoding` under plain autograd. float32 is the working
type, also under fp16 autocast (half inputs are encoded in float32); float64 is accepted too (every
backend), for gradient checks.

>>> enc = GridEncoder(input_dim=3, num_levels=16, level_dim=2, base_resolution=16,
...                   log2_hashmap_size=16, desired_resolution=2048)
>>> enc(torch.rand(1024, 3) * 2 - 1).shape
torch.Size([1024, 32])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from radnerf_cli.errors import KernelError
from radnerf_cli.kernels import backend as _backend
from radnerf_cli.kernels import ref_encoding as ref

FAMILY = "encoding"
GRIDTYPES = {"hash": 0, "tiled": 1}
INTERPOLATIONS = {"linear": 0, "smoothstep": 1}
FLOAT_TYPES = (torch.float32, torch.float64)

# --------------------------------------------------------------------------------------------------
# Input checks


def _check_tensor(fn: str, name: str, t: object, *, ndim: int, device: torch.device | None = None) -> Tensor:
    if not isinstance(t, Tensor):
        raise KernelError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != ndim:
        raise KernelError(f"{fn}: {name} must have {ndim} dimensions, got shape {list(t.shape)}")
    if device is not None and t.device != device:
        raise KernelError(f"{fn}: {name} must be on {device} like inputs, got {t.device}")
    if not t.is_contiguous():
        raise KernelError(f"{fn}: {name} must be contiguous (call .contiguous())")
    return t


def _check_float(fn: str, name: str, t: Tensor, like: Tensor | None = None) -> None:
    if like is not None:
        if t.dtype != like.dtype:
            raise KernelError(f"{fn}: {name} must have the dtype of inputs ({_dt(like)}), got {_dt(t)}")
    elif t.dtype not in FLOAT_TYPES:
        raise KernelError(f"{fn}: {name} must be float32 (or float64), got {_dt(t)}")


def _dt(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _working_type(t: Tensor) -> Tensor:
    """Half-precision inputs (autocast) are encoded in float32; float32/float64 stay as they are."""
    return t if t.dtype in FLOAT_TYPES else t.float()


def _check_choice(fn: str, name: str, value: str, choices: dict[str, int]) -> int:
    if value not in choices:
        raise KernelError(f"{fn}: {name} must be one of {', '.join(choices)}, got '{value}'")
    return choices[value]


# --------------------------------------------------------------------------------------------------
# Grid encoding


def level_scales(num_levels: int, per_level_scale: float, base_resolution: int) -> list[float]:
    """Grid scale of each level (float64), shared by every backend so they index identically."""
    S = math.log2(per_level_scale)
    return [ref.level_scale(level, S, base_resolution)[0] for level in range(num_levels)]


class _GridEncodeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs, embeddings, offsets, scales, gridtype, align_corners, interpolation, calc_grad_inputs, mod):
        out = mod.grid_encode_forward(inputs, embeddings, offsets, scales, gridtype, align_corners, interpolation)
        ctx.mod = mod
        ctx.args = (gridtype, align_corners, interpolation)
        ctx.calc_grad_inputs = calc_grad_inputs
        ctx.save_for_backward(inputs, embeddings, offsets, scales)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        inputs, embeddings, offsets, scales = ctx.saved_tensors
        need_emb = ctx.needs_input_grad[1]
        need_in = ctx.calc_grad_inputs and ctx.needs_input_grad[0]
        if not (need_emb or need_in):
            return (None,) * 9
        g_emb, g_in = ctx.mod.grid_encode_backward(
            grad.contiguous(), inputs, embeddings, offsets, scales, *ctx.args, need_emb, need_in, 0
        )
        return (g_in if need_in else None, g_emb if need_emb else None, *(None,) * 7)


def grid_encode(
    inputs: Tensor,  # [B, D] in [0, 1]
    embeddings: Tensor,  # [offsets[-1], C]
    offsets: Tensor,  # [L+1] int32
    per_level_scale: float,
    base_resolution: int,
    calc_grad_inputs: bool = False,
    gridtype: str = "hash",
    align_corners: bool = False,
    interpolation: str = "linear",
) -> Tensor:  # [B, L*C]
    """Multiresolution grid encoding (hashed or tiled levels; linear or smoothstep interpolation).

    D is 2 or 3, C is 1, 2, 4 or 8. Inputs outside [0, 1] are clamped (and get no gradient).
    Differentiable w.r.t. ``embeddings``, and w.r.t. ``inputs`` when ``calc_grad_inputs``.
    """
    fn = "grid_encode"
    _check_tensor(fn, "inputs", inputs, ndim=2)
    _check_float(fn, "inputs", inputs)
    dev = inputs.device
    _check_tensor(fn, "embeddings", embeddings, ndim=2, device=dev)
    _check_float(fn, "embeddings", embeddings, like=inputs)
    _check_tensor(fn, "offsets", offsets, ndim=1, device=dev)
    if offsets.dtype != torch.int32:
        raise KernelError(f"{fn}: offsets must be int32, got {_dt(offsets)}")
    offs = offsets.tolist()
    _check_grid(fn, inputs, embeddings, offs, per_level_scale, base_resolution)
    gt = _check_choice(fn, "gridtype", gridtype, GRIDTYPES)
    it = _check_choice(fn, "interpolation", interpolation, INTERPOLATIONS)
    scales = torch.tensor(level_scales(len(offs) - 1, per_level_scale, base_resolution), dtype=torch.float64, device=dev)
    return _grid_encode(inputs, embeddings, offsets, offs, scales, per_level_scale, base_resolution,
                        calc_grad_inputs, gt, bool(align_corners), it)


def _check_grid(fn: str, inputs: Tensor, embeddings: Tensor, offs: list[int], per_level_scale: float,
                base_resolution: int) -> None:
    if inputs.shape[1] not in (2, 3):
        raise KernelError(f"{fn}: inputs must have 2 or 3 columns (D), got shape {list(inputs.shape)}")
    if embeddings.shape[1] not in (1, 2, 4, 8):
        raise KernelError(f"{fn}: embeddings must have 1, 2, 4 or 8 columns (C), got shape {list(embeddings.shape)}")
    if len(offs) < 2 or offs[0] != 0 or any(b <= a for a, b in zip(offs, offs[1:], strict=False)):
        raise KernelError(f"{fn}: offsets must start at 0 and strictly increase (at least one level), got {offs[:8]}...")
    if offs[-1] != embeddings.shape[0] or offs[-1] >= 2**31:
        raise KernelError(f"{fn}: embeddings must have offsets[-1] = {offs[-1]} rows, got {embeddings.shape[0]}")
    if not (per_level_scale > 0 and math.isfinite(per_level_scale)):
        raise KernelError(f"{fn}: per_level_scale must be a positive number, got {per_level_scale}")
    if int(base_resolution) != base_resolution or base_resolution < 1:
        raise KernelError(f"{fn}: base_resolution must be a positive integer, got {base_resolution}")
    top = level_scales(len(offs) - 1, per_level_scale, base_resolution)[-1]
    if top >= 2**31:
        raise KernelError(f"{fn}: the finest level's resolution {top:.3g} is too large")


def _grid_encode(inputs, embeddings, offsets, offs, scales, per_level_scale, base_resolution, calc_grad_inputs,
                 gridtype: int, align_corners: bool, interpolation: int) -> Tensor:
    """Checked arguments -> backend. ``offs`` is ``offsets`` as a list, ``scales`` the level scales tensor."""
    name, mod = _backend.resolve(FAMILY, inputs.device)
    if mod is None:
        x = inputs if calc_grad_inputs else inputs.detach()
        gt = "hash" if gridtype == 0 else "tiled"
        ip = "linear" if interpolation == 0 else "smoothstep"
        return ref.grid_encode(x, embeddings, offs, per_level_scale, base_resolution, gt, align_corners, ip)
    return _GridEncodeFn.apply(inputs, embeddings, offsets, scales, gridtype, align_corners, interpolation,
                               bool(calc_grad_inputs), mod)


class GridEncoder(nn.Module):
    """Multiresolution grid encoder (instant-ngp style) with a learnable table.

    Level ``l`` has resolution ``ceil(base_resolution * per_level_scale**l)`` and
    ``min(2**log2_hashmap_size, (res+1)**D)`` table rows (``res**D`` with ``align_corners``), rounded
    up to a multiple of 8. ``desired_resolution`` sets ``per_level_scale`` so the finest level has it.
    """

    def __init__(
        self,
        input_dim: int = 3,
        num_levels: int = 16,
        level_dim: int = 2,
        per_level_scale: float = 2.0,
        base_resolution: int = 16,
        log2_hashmap_size: int = 19,
        desired_resolution: int | None = None,
        gridtype: str = "hash",
        align_corners: bool = False,
        interpolation: str = "linear",
    ):
        super().__init__()
        fn = "GridEncoder"
        if input_dim not in (2, 3):
            raise KernelError(f"{fn}: input_dim must be 2 or 3, got {input_dim}")
        if level_dim not in (1, 2, 4, 8):
            raise KernelError(f"{fn}: level_dim must be 1, 2, 4 or 8, got {level_dim}")
        if num_levels < 1:
            raise KernelError(f"{fn}: num_levels must be at least 1, got {num_levels}")
        if desired_resolution is not None:
            per_level_scale = 2.0 ** (math.log2(desired_resolution / base_resolution) / max(num_levels - 1, 1))
        self._gridtype = _check_choice(fn, "gridtype", gridtype, GRIDTYPES)
        self._interp = _check_choice(fn, "interpolation", interpolation, INTERPOLATIONS)
        self.input_dim = input_dim
        self.num_levels = num_levels
        self.level_dim = level_dim
        self.per_level_scale = per_level_scale
        self.base_resolution = base_resolution
        self.log2_hashmap_size = log2_hashmap_size
        self.gridtype = gridtype
        self.align_corners = bool(align_corners)
        self.interpolation = interpolation
        self.output_dim = num_levels * level_dim

        max_params = 2**log2_hashmap_size
        offs = [0]
        for i in range(num_levels):
            res = int(math.ceil(base_resolution * per_level_scale**i))
            res = res if align_corners else res + 1
            params = min(max_params, res**input_dim)
            offs.append(offs[-1] + int(math.ceil(params / 8) * 8))
        self._offsets_list = offs
        self.register_buffer("offsets", torch.tensor(offs, dtype=torch.int32))
        self._scales_list = level_scales(num_levels, per_level_scale, base_resolution)
        self._scales: dict[torch.device, Tensor] = {}  # float64 level scales per device (not a buffer: .float() must not cast it)
        self.embeddings = nn.Parameter(torch.empty(offs[-1], level_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.embeddings, -1e-4, 1e-4)

    def extra_repr(self) -> str:
        return (
            f"input_dim={self.input_dim}, num_levels={self.num_levels}, level_dim={self.level_dim}, "
            f"base_resolution={self.base_resolution}, per_level_scale={self.per_level_scale:.4f}, "
            f"params={tuple(self.embeddings.shape)}, gridtype={self.gridtype}, "
            f"align_corners={self.align_corners}, interpolation={self.interpolation}"
        )

    def forward(self, inputs: Tensor, bound: float = 1.0) -> Tensor:  # [..., D] in [-bound, bound] -> [..., L*C]
        fn = "GridEncoder"
        if not isinstance(inputs, Tensor) or inputs.dim() < 1 or inputs.shape[-1] != self.input_dim:
            shape = list(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
            raise KernelError(f"{fn}: inputs must have shape [..., {self.input_dim}], got {shape}")
        if inputs.device != self.embeddings.device:
            raise KernelError(f"{fn}: inputs must be on {self.embeddings.device} like the table, got {inputs.device}")
        if not inputs.is_floating_point():
            raise KernelError(f"{fn}: inputs must be a floating-point tensor, got {_dt(inputs)}")
        prefix = inputs.shape[:-1]
        # Under fp16 autocast the table and the encoding stay float32 (half inputs are cast up; the output is
        # float32 and the next Linear casts it to half). torch-ngp instead casts the table to half and
        # accumulates its gradients with half atomics, which round away the small updates of a table
        # initialised at +-1e-4; float32 atomics cost little on a GPU, and fp32 keeps every backend alike.
        x = ((inputs.to(self.embeddings.dtype) + bound) / (2 * bound)).reshape(-1, self.input_dim).contiguous()
        scales = self._scales.get(x.device)
        if scales is None:
            scales = self._scales[x.device] = torch.tensor(self._scales_list, dtype=torch.float64, device=x.device)
        out = _grid_encode(x, self.embeddings, self.offsets, self._offsets_list, scales, self.per_level_scale,
                           self.base_resolution, inputs.requires_grad, self._gridtype, self.align_corners,
                           self._interp)
        return out.view(*prefix, self.output_dim)


# --------------------------------------------------------------------------------------------------
# Pointwise encodings (spherical harmonics, frequencies)


class _PointwiseEncodeFn(torch.autograd.Function):
    """An encoding with one integer argument whose backward needs only the inputs (SH, frequency)."""

    @staticmethod
    def forward(ctx, inputs, arg, forward_fn, backward_fn):
        ctx.arg = arg
        ctx.backward_fn = backward_fn
        if inputs.requires_grad:
            ctx.save_for_backward(inputs)
        return forward_fn(inputs, arg)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        (inputs,) = ctx.saved_tensors
        return ctx.backward_fn(grad.contiguous(), inputs, ctx.arg), None, None, None


def sh_encode(inputs: Tensor, degree: int) -> Tensor:  # [B, 3] unit directions -> [B, degree**2]
    """Real spherical harmonics of bands ``0..degree-1`` (``degree`` in 1..8), differentiable."""
    fn = "sh_encode"
    _check_tensor(fn, "inputs", inputs, ndim=2)
    _check_float(fn, "inputs", inputs)
    if inputs.shape[1] != 3:
        raise KernelError(f"{fn}: inputs must have 3 columns, got shape {list(inputs.shape)}")
    if int(degree) != degree or not 1 <= degree <= 8:
        raise KernelError(f"{fn}: degree must be an integer in 1..8, got {degree}")
    _, mod = _backend.resolve(FAMILY, inputs.device)
    if mod is None:
        return ref.sh_encode(inputs, int(degree))
    return _PointwiseEncodeFn.apply(inputs, int(degree), mod.sh_encode_forward, mod.sh_encode_backward)


class SHEncoder(nn.Module):
    """Spherical-harmonics encoding of directions: ``degree**2`` features."""

    def __init__(self, input_dim: int = 3, degree: int = 4):
        super().__init__()
        if input_dim != 3:
            raise KernelError(f"SHEncoder: input_dim must be 3, got {input_dim}")
        if int(degree) != degree or not 1 <= degree <= 8:
            raise KernelError(f"SHEncoder: degree must be an integer in 1..8, got {degree}")
        self.input_dim = input_dim
        self.degree = int(degree)
        self.output_dim = self.degree**2

    def extra_repr(self) -> str:
        return f"degree={self.degree}, output_dim={self.output_dim}"

    def forward(self, inputs: Tensor, size: float = 1.0) -> Tensor:  # [..., 3] -> [..., degree**2]
        if not isinstance(inputs, Tensor) or inputs.dim() < 1 or inputs.shape[-1] != 3:
            shape = list(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
            raise KernelError(f"SHEncoder: inputs must have shape [..., 3], got {shape}")
        prefix = inputs.shape[:-1]
        x = (_working_type(inputs) / size).reshape(-1, 3).contiguous()
        return sh_encode(x, self.degree).view(*prefix, self.output_dim)


# --------------------------------------------------------------------------------------------------
# Frequency encoding


def freq_encode(inputs: Tensor, n_freqs: int) -> Tensor:  # [B, D] -> [B, D*(1+2*n_freqs)]
    """``[x, sin(2^0 x), cos(2^0 x), sin(2^1 x), cos(2^1 x), ...]``, each block D wide; differentiable."""
    fn = "freq_encode"
    _check_tensor(fn, "inputs", inputs, ndim=2)
    _check_float(fn, "inputs", inputs)
    if int(n_freqs) != n_freqs or not 0 <= n_freqs <= 62:
        raise KernelError(f"{fn}: n_freqs must be an integer in 0..62, got {n_freqs}")
    _, mod = _backend.resolve(FAMILY, inputs.device)
    if mod is None:
        return ref.freq_encode(inputs, int(n_freqs))
    return _PointwiseEncodeFn.apply(inputs, int(n_freqs), mod.freq_encode_forward, mod.freq_encode_backward)


class FreqEncoder(nn.Module):
    """Frequency (positional) encoding: ``input_dim * (1 + 2 * n_freqs)`` features."""

    def __init__(self, input_dim: int, n_freqs: int):
        super().__init__()
        self.input_dim = input_dim
        self.n_freqs = int(n_freqs)
        self.output_dim = input_dim * (1 + 2 * self.n_freqs)

    def extra_repr(self) -> str:
        return f"input_dim={self.input_dim}, n_freqs={self.n_freqs}, output_dim={self.output_dim}"

    def forward(self, inputs: Tensor) -> Tensor:  # [..., D] -> [..., D*(1+2*n_freqs)]
        if not isinstance(inputs, Tensor) or inputs.dim() < 1 or inputs.shape[-1] != self.input_dim:
            shape = list(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
            raise KernelError(f"FreqEncoder: inputs must have shape [..., {self.input_dim}], got {shape}")
        prefix = inputs.shape[:-1]
        x = _working_type(inputs).reshape(-1, self.input_dim).contiguous()
        return freq_encode(x, self.n_freqs).view(*prefix, self.output_dim)


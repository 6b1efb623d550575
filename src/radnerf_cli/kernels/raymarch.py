"""Ray marching and compositing over the occupancy bitfield (the "raymarch" kernel family).

Each public function checks its inputs (raising :class:`~radnerf_cli.errors.KernelError` that names the
argument), then runs on the backend chosen by :func:`radnerf_cli.kernels.backend.resolve`: the compiled
cuda/cpu kernels or the pure-torch twin in :mod:`radnerf_cli.kernels.ref_raymarch`. Semantics follow
torch-ngp / RAD-NeRF. Randomness is never drawn here: callers pass ``noises``.

Training::

    >>> nears, fars = near_far_from_aabb(rays_o, rays_d, aabb)
    >>> xyzs, dirs, deltas, rays = march_rays_train(rays_o, rays_d, 1.0, bitfield, 1, 128, nears, fars,
    ...                                             noises, dt_gamma=0.0, max_steps=1024)
    >>> ws, amb, depth, image = composite_rays_train(sigmas, rgbs, ambient, deltas, rays)

Inference: ``march_rays`` / ``composite_rays`` advance the still-alive rays ``n_step`` samples at a time.
"""

from __future__ import annotations

import torch
from torch import Tensor

from radnerf_cli.errors import KernelError
from radnerf_cli.kernels import backend as _backend
from radnerf_cli.kernels import ref_raymarch as ref

__all__ = [
    "near_far_from_aabb",
    "morton3D",
    "morton3D_invert",
    "packbits",
    "march_rays_train",
    "composite_rays_train",
    "march_rays",
    "composite_rays",
]


# ----------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------

def _check(name: str, x: object, dtype: torch.dtype | tuple[torch.dtype, ...], shape: tuple[int | None, ...],
           device: torch.device | None = None) -> Tensor:
    """``x`` must be a contiguous tensor of ``dtype`` and ``shape`` (None: any size) on ``device``."""
    if not isinstance(x, Tensor):
        raise KernelError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    dtypes = dtype if isinstance(dtype, tuple) else (dtype,)
    if x.dtype not in dtypes:
        want = " or ".join(str(d).replace("torch.", "") for d in dtypes)
        raise KernelError(f"{name} must be {want}, got {str(x.dtype).replace('torch.', '')}")
    if x.dim() != len(shape) or any(s is not None and s != x.shape[i] for i, s in enumerate(shape)):
        want = ", ".join("*" if s is None else str(s) for s in shape)
        raise KernelError(f"{name} must have shape [{want}], got {list(x.shape)}")
    if device is not None and x.device != device:
        raise KernelError(f"{name} is on {x.device} but the other inputs are on {device}")
    if not x.is_contiguous():
        raise KernelError(f"{name} must be contiguous (call .contiguous() first)")
    return x


def _check_grid_args(density_bitfield: Tensor, C: int, H: int, bound: float, max_steps: int, device) -> None:
    if not (isinstance(C, int) and 1 <= C <= 8):
        raise KernelError(f"C must be an int in [1, 8], got {C!r}")
    if not (isinstance(H, int) and 1 <= H <= 1024):
        raise KernelError(f"H must be an int in [1, 1024], got {H!r}")
    if not bound > 0:
        raise KernelError(f"bound must be > 0, got {bound!r}")
    if not (isinstance(max_steps, int) and max_steps >= 1):
        raise KernelError(f"max_steps must be an int >= 1, got {max_steps!r}")
    if (C * H**3) % 8:
        raise KernelError(f"C*H^3 must be a multiple of 8, got C={C}, H={H}")
    _check("density_bitfield", density_bitfield, torch.uint8, (C * H**3 // 8,), device)


def _resolve(device: torch.device):
    return _backend.resolve("raymarch", device)


# ----------------------------------------------------------------------------------------------
# geometry and indexing
# ----------------------------------------------------------------------------------------------

def near_far_from_aabb(rays_o: Tensor, rays_d: Tensor, aabb: Tensor, min_near: float = 0.2) -> tuple[Tensor, Tensor]:
    """Entry and exit distances of each ray through the box.

    rays_o, rays_d: [N, 3] float32; aabb: [6] (xmin, ymin, zmin, xmax, ymax, zmax).
    Returns nears, fars [N]; near >= min_near; a ray that misses gets near = far = FLT_MAX.
    """
    _check("rays_o", rays_o, torch.float32, (None, 3))
    dev, N = rays_o.device, rays_o.shape[0]
    _check("rays_d", rays_d, torch.float32, (N, 3), dev)
    _check("aabb", aabb, torch.float32, (6,), dev)
    name, mod = _resolve(dev)
    if mod is None:
        return ref.near_far_from_aabb(rays_o, rays_d, aabb, float(min_near))
    nears, fars = mod.near_far_from_aabb(rays_o, rays_d, aabb, float(min_near))
    return nears, fars


def morton3D(coords: Tensor) -> Tensor:
    """coords [N, 3] int32 in [0, 1024) -> Z-order indices [N] int32 (bits above the 10th are ignored)."""
    _check("coords", coords, torch.int32, (None, 3))
    name, mod = _resolve(coords.device)
    return ref.morton3D(coords) if mod is None else mod.morton3D(coords)


def morton3D_invert(indices: Tensor) -> Tensor:
    """indices [N] int32 -> coords [N, 3] int32 (inverse of :func:`morton3D`)."""
    _check("indices", indices, torch.int32, (None,))
    name, mod = _resolve(indices.device)
    return ref.morton3D_invert(indices) if mod is None else mod.morton3D_invert(indices)


def packbits(grid: Tensor, thresh: float) -> Tensor:
    """grid [C, H**3] float32 (cells in Morton order) -> bitfield [C*H**3 // 8] uint8.

    Bit k of byte i is set iff ``grid.view(-1)[8*i + k] > thresh``.
    """
    _check("grid", grid, torch.float32, (None, None))
    if grid.numel() % 8:
        raise KernelError(f"grid must have a multiple of 8 cells, got {grid.numel()}")
    name, mod = _resolve(grid.device)
    return ref.packbits(grid, float(thresh)) if mod is None else mod.packbits(grid, float(thresh))


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------

def march_rays_train(rays_o: Tensor, rays_d: Tensor, bound: float, density_bitfield: Tensor, C: int, H: int,
                     nears: Tensor, fars: Tensor, noises: Tensor | None, dt_gamma: float,
                     max_steps: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Samples of every ray in the occupied cells of the cascaded grid.

    rays_o, rays_d: [N, 3]; density_bitfield: [C*H**3 // 8] uint8; nears, fars, noises: [N] (noises in
    [0, 1) or None). Steps grow as clamp(t*dt_gamma, 2*sqrt(3)/max_steps, 2*sqrt(3)*2^(C-1)/H); at most
    ``max_steps`` samples per ray; t starts at near + dt*noise.

    Returns xyzs [M, 3], dirs [M, 3], deltas [M, 2] (dt, t after the step) and rays [N, 3] int32
    (ray index, offset into M, count); the samples of ray i are contiguous and in marching order.
    """
    _check("rays_o", rays_o, torch.float32, (None, 3))
    dev, N = rays_o.device, rays_o.shape[0]
    _check("rays_d", rays_d, torch.float32, (N, 3), dev)
    _check("nears", nears, torch.float32, (N,), dev)
    _check("fars", fars, torch.float32, (N,), dev)
    if noises is not None:
        _check("noises", noises, torch.float32, (N,), dev)
    _check_grid_args(density_bitfield, C, H, bound, max_steps, dev)
    name, mod = _resolve(dev)
    if mod is None:
        return ref.march_rays_train(rays_o, rays_d, float(bound), density_bitfield, C, H, nears, fars, noises,
                                    float(dt_gamma), max_steps)
    xyzs, dirs, deltas, rays = mod.march_rays_train(rays_o, rays_d, float(bound), density_bitfield, C, H, nears,
                                                    fars, noises, float(dt_gamma), max_steps)
    return xyzs, dirs, deltas, rays


class _CompositeRaysTrain(torch.autograd.Function):
    """Front-to-back compositing; gradients flow to sigmas, rgbs and ambient."""

    @staticmethod
    def forward(ctx, sigmas, rgbs, ambient, deltas, rays, T_thresh, mod):
        if mod is None:
            outs = ref.composite_rays_train_forward(sigmas, rgbs, ambient, deltas, rays, T_thresh)
        else:
            outs = tuple(mod.composite_rays_train_forward(sigmas, rgbs, ambient, deltas, rays, T_thresh))
        if any(ctx.needs_input_grad[:3]):
            ctx.save_for_backward(sigmas, rgbs, ambient, deltas, rays, *outs)
        ctx.T_thresh, ctx.mod = T_thresh, mod
        return outs

    @staticmethod
    def backward(ctx, g_ws, g_amb, g_depth, g_image):
        sigmas, rgbs, ambient, deltas, rays, ws, amb, depth, image = ctx.saved_tensors
        grads = []
        for g, like in ((g_ws, ws), (g_amb, amb), (g_depth, depth), (g_image, image)):
            grads.append(torch.zeros_like(like) if g is None else g.contiguous())
        if ctx.mod is None:
            gs, gr, ga = ref.composite_rays_train_backward(*grads, sigmas, rgbs, ambient, deltas, rays, ws,
                                                           ctx.T_thresh)
        else:
            gs, gr, ga = ctx.mod.composite_rays_train_backward(*grads, sigmas, rgbs, ambient, deltas, rays, ws, amb,
                                                               depth, image, ctx.T_thresh)
        need = ctx.needs_input_grad
        return (gs if need[0] else None, gr if need[1] else None, ga if need[2] else None, None, None, None, None)


def composite_rays_train(sigmas: Tensor, rgbs: Tensor, ambient: Tensor, deltas: Tensor, rays: Tensor,
                         T_thresh: float = 1e-4) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Front-to-back alpha compositing of the samples of :func:`march_rays_train`.

    sigmas [M], rgbs [M, 3], ambient [M], deltas [M, 2] (float32, or all float64), rays [N, 3] int32.
    alpha = 1 - exp(-sigma*dt); w = alpha*T; T *= 1 - alpha; a ray stops once T < T_thresh.
    Returns weights_sum [N], ambient_sum [N] (sum w*ambient), depth [N] (sum w*t), image [N, 3];
    differentiable w.r.t. sigmas, rgbs and ambient.
    """
    _check("sigmas", sigmas, (torch.float32, torch.float64), (None,))
    dev, M, dt = sigmas.device, sigmas.shape[0], sigmas.dtype
    _check("rgbs", rgbs, dt, (M, 3), dev)
    _check("ambient", ambient, dt, (M,), dev)
    _check("deltas", deltas, dt, (M, 2), dev)
    _check("rays", rays, torch.int32, (None, 3), dev)
    name, mod = _resolve(dev)
    return _CompositeRaysTrain.apply(sigmas, rgbs, ambient, deltas, rays, float(T_thresh), mod)


# ----------------------------------------------------------------------------------------------
# inference
# ----------------------------------------------------------------------------------------------

def march_rays(n_alive: int, n_step: int, rays_alive: Tensor, rays_t: Tensor, rays_o: Tensor, rays_d: Tensor,
               bound: float, density_bitfield: Tensor, C: int, H: int, nears: Tensor, fars: Tensor,
               noises: Tensor | None, dt_gamma: float, max_steps: int) -> tuple[Tensor, Tensor, Tensor]:
    """Up to ``n_step`` new samples for each of the first ``n_alive`` entries of ``rays_alive``.

    rays_alive [>= n_alive] int32 (ray ids; negative entries are skipped); rays_t [N] float32 is the
    current t of each ray and is advanced in place; noises [n_alive] or None perturb the start.
    ``nears`` is accepted for symmetry with :func:`march_rays_train` (rays_t already holds the position).
    Returns xyzs, dirs [n_alive*n_step, 3] and deltas [n_alive*n_step, 2]; unused slots are zero.
    """
    _check("rays_o", rays_o, torch.float32, (None, 3))
    dev, N = rays_o.device, rays_o.shape[0]
    _check("rays_d", rays_d, torch.float32, (N, 3), dev)
    _check("rays_t", rays_t, torch.float32, (N,), dev)
    _check("nears", nears, torch.float32, (N,), dev)
    _check("fars", fars, torch.float32, (N,), dev)
    _check("rays_alive", rays_alive, torch.int32, (None,), dev)
    n_alive, n_step = _check_counts(n_alive, n_step, rays_alive)
    if noises is not None:
        _check("noises", noises, torch.float32, (None,), dev)
        if noises.shape[0] < n_alive:
            raise KernelError(f"noises must have n_alive={n_alive} elements, got {noises.shape[0]}")
    _check_grid_args(density_bitfield, C, H, bound, max_steps, dev)
    name, mod = _resolve(dev)
    if mod is None:
        return ref.march_rays(n_alive, n_step, rays_alive, rays_t, rays_o, rays_d, float(bound), density_bitfield, C,
                              H, nears, fars, noises, float(dt_gamma), max_steps)
    xyzs, dirs, deltas = mod.march_rays(n_alive, n_step, rays_alive, rays_t, rays_o, rays_d, float(bound),
                                        density_bitfield, C, H, nears, fars, noises, float(dt_gamma), max_steps)
    return xyzs, dirs, deltas


def _check_counts(n_alive: int, n_step: int, rays_alive: Tensor) -> tuple[int, int]:
    n_alive, n_step = int(n_alive), int(n_step)
    if not 0 <= n_alive <= rays_alive.shape[0]:
        raise KernelError(f"n_alive must be in [0, {rays_alive.shape[0]}] (the length of rays_alive), got {n_alive}")
    if n_step < 1:
        raise KernelError(f"n_step must be >= 1, got {n_step}")
    return n_alive, n_step


def composite_rays(n_alive: int, n_step: int, rays_alive: Tensor, rays_t: Tensor, sigmas: Tensor, rgbs: Tensor,
                   deltas: Tensor, weights_sum: Tensor, depth: Tensor, image: Tensor, T_thresh: float = 1e-2) -> None:
    """Composite one :func:`march_rays` step into the per-ray accumulators, in place.

    sigmas [n_alive*n_step], rgbs [..., 3], deltas [..., 2]; weights_sum, depth [N] and image [N, 3] are
    updated; rays_t gets the depth of the last sample of rays that go on; a ray that finishes
    (T < T_thresh, or a zero-delta slot: it left the box) gets ``rays_alive = -1``.
    """
    _check("rays_t", rays_t, torch.float32, (None,))
    dev, N = rays_t.device, rays_t.shape[0]
    _check("rays_alive", rays_alive, torch.int32, (None,), dev)
    n_alive, n_step = _check_counts(n_alive, n_step, rays_alive)
    S = n_alive * n_step
    _check("sigmas", sigmas, torch.float32, (S,), dev)
    _check("rgbs", rgbs, torch.float32, (S, 3), dev)
    _check("deltas", deltas, torch.float32, (S, 2), dev)
    _check("weights_sum", weights_sum, torch.float32, (N,), dev)
    _check("depth", depth, torch.float32, (N,), dev)
    _check("image", image, torch.float32, (N, 3), dev)
    name, mod = _resolve(dev)
    if mod is None:
        ref.composite_rays(n_alive, n_step, rays_alive, rays_t, sigmas, rgbs, deltas, weights_sum, depth, image,
                           float(T_thresh))
    else:
        mod.composite_rays(n_alive, n_step, rays_alive, rays_t, sigmas, rgbs, deltas, weights_sum, depth, image,
                           float(T_thresh))

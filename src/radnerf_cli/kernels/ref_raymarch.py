"""Pure-torch twin of every ray-marching kernel: the ``torch`` backend and the test oracle.

Semantics follow torch-ngp / RAD-NeRF's ``raymarching`` (see ``csrc/raymarch.h`` for the per-element
math). The marching code repeats the float32 operations of the compiled kernels in the same order, so
sample positions, counts and cell decisions agree exactly with the cpu backend. Compositing sums run
in float64 here, so its results agree with the kernels to float32 rounding.

These functions do no input checking: :mod:`radnerf_cli.kernels.raymarch` validates first.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

SQRT3 = float(np.float32(1.7320508075688772))
FLT_MAX = float(np.finfo(np.float32).max)


# ----------------------------------------------------------------------------------------------
# geometry and indexing
# ----------------------------------------------------------------------------------------------

def near_far_from_aabb(rays_o: Tensor, rays_d: Tensor, aabb: Tensor, min_near: float = 0.2) -> tuple[Tensor, Tensor]:
    """Slab test of each ray against the box. rays_o, rays_d: [N, 3]; aabb: [6] -> nears, fars [N]."""
    inv = 1.0 / rays_d  # [N, 3]
    lo = (aabb[:3] - rays_o) * inv
    hi = (aabb[3:] - rays_o) * inv
    swap = lo > hi
    t0 = torch.where(swap, hi, lo)
    t1 = torch.where(swap, lo, hi)
    near, far = t0[:, 0], t1[:, 0]
    miss = torch.zeros_like(near, dtype=torch.bool)
    for k in (1, 2):
        nk, fk = t0[:, k], t1[:, k]
        miss = miss | (near > fk) | (nk > far)
        near = torch.where(nk > near, nk, near)
        far = torch.where(fk < far, fk, far)
    near = torch.where(near < min_near, torch.full_like(near, min_near), near)
    big = torch.full_like(near, FLT_MAX)
    return torch.where(miss, big, near).contiguous(), torch.where(miss, big, far).contiguous()


def _expand_bits(v: Tensor) -> Tensor:  # int64 in [0, 1024) -> bits spread to every third position
    v = (v * 0x00010001) & 0xFF0000FF
    v = (v * 0x00000101) & 0x0F00F00F
    v = (v * 0x00000011) & 0xC30C30C3
    v = (v * 0x00000005) & 0x49249249
    return v


def _compact_bits(v: Tensor) -> Tensor:  # inverse of _expand_bits on int64
    v = v & 0x49249249
    v = (v | (v >> 2)) & 0xC30C30C3
    v = (v | (v >> 4)) & 0x0F00F00F
    v = (v | (v >> 8)) & 0xFF0000FF
    v = (v | (v >> 16)) & 0x0000FFFF
    return v


def _morton(x: Tensor, y: Tensor, z: Tensor) -> Tensor:
    """Z-order index of int64 coordinates (10 low bits of each are used) -> int64."""
    return _expand_bits(x & 1023) | (_expand_bits(y & 1023) << 1) | (_expand_bits(z & 1023) << 2)


def morton3D(coords: Tensor) -> Tensor:
    """coords [N, 3] int32 in [0, 1024) -> Z-order indices [N] int32."""
    c = coords.long()
    return _morton(c[:, 0], c[:, 1], c[:, 2]).int()


def morton3D_invert(indices: Tensor) -> Tensor:
    """indices [N] int32 -> coords [N, 3] int32."""
    i = indices.long() & 0x3FFFFFFF
    return torch.stack([_compact_bits(i), _compact_bits(i >> 1), _compact_bits(i >> 2)], dim=1).int()


def packbits(grid: Tensor, thresh: float) -> Tensor:
    """grid [C, H**3] float -> bitfield [C*H**3 // 8] uint8; bit k of byte i = grid.flat[8i+k] > thresh."""
    bits = (grid.reshape(-1, 8) > thresh).to(torch.uint8)
    weights = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8, device=grid.device)
    return (bits * weights).sum(dim=1, dtype=torch.uint8) if bits.numel() else bits.new_zeros(0)


# ----------------------------------------------------------------------------------------------
# marching
# ----------------------------------------------------------------------------------------------

def step_limits(C: int, H: int, max_steps: int) -> tuple[float, float]:
    """(dt_min, dt_max) as float32 values, computed in the kernels' order of operations."""
    f = np.float32
    dt_max = f(f(f(2.0) * f(SQRT3)) * f(1 << (C - 1))) / f(H)
    dt_min = min(dt_max, f(f(2.0) * f(SQRT3)) / f(max_steps))
    return float(dt_min), float(dt_max)


class _Marcher:
    """Shared float32 math of one marching step, vectorised over a subset of rays."""

    def __init__(self, rays_o: Tensor, rays_d: Tensor, bound: float, bitfield: Tensor, C: int, H: int,
                 dt_gamma: float, max_steps: int):
        self.o, self.d = rays_o, rays_d
        self.rd = 1.0 / rays_d
        self.sign = torch.copysign(torch.ones_like(rays_d), rays_d)
        self.bound, self.C, self.H = float(np.float32(bound)), C, H
        self.gamma = float(np.float32(dt_gamma))
        self.dt_min, self.dt_max = step_limits(C, H, max_steps)
        self.rH = float(np.float32(1.0) / np.float32(H))
        self.bits = bitfield.long()
        self.H3 = H * H * H

    def dt(self, t: Tensor) -> Tensor:
        return torch.clamp(t * self.gamma, self.dt_min, self.dt_max)

    def probe(self, idx: Tensor, t: Tensor):
        """For rays ``idx`` at ``t``: clamped point [K,3], dt [K], occupied [K] bool, next cell boundary [K]."""
        o, d = self.o[idx], self.d[idx]
        p = torch.clamp(o + t[:, None] * d, -self.bound, self.bound)  # [K, 3]
        dt = self.dt(t)
        mx = p.abs().amax(dim=1)
        lvl_pos = torch.frexp(mx).exponent.clamp(0, self.C - 1)
        lvl_dt = torch.frexp((dt * float(self.H)) * 0.5).exponent.clamp(0, self.C - 1)
        level = torch.maximum(lvl_pos, lvl_dt).long()
        mip_bound = torch.clamp(torch.ldexp(torch.ones_like(t), level), max=self.bound)
        mip_rbound = 1.0 / mip_bound
        cell_f = torch.clamp(((p * mip_rbound[:, None] + 1.0) * 0.5) * float(self.H), 0.0, float(self.H - 1))
        cell = cell_f.long()  # trunc toward zero, values are >= 0
        index = level * self.H3 + _morton(cell[:, 0], cell[:, 1], cell[:, 2])
        occ = ((self.bits[index // 8] >> (index % 8)) & 1).bool()
        # distance to the next cell boundary along the ray
        edge = ((((cell.to(p.dtype) + 0.5) + 0.5 * self.sign[idx]) * self.rH) * 2.0 - 1.0) * mip_bound[:, None]
        tc = (edge - p) * self.rd[idx]
        tmin = torch.fmin(tc[:, 0], torch.fmin(tc[:, 1], tc[:, 2]))
        tt = t + torch.fmax(torch.zeros_like(tmin), tmin)
        return p, dt, occ, tt

    def skip(self, t: Tensor, tt: Tensor) -> Tensor:
        """do { t += dt(t) } while (t < tt), per ray."""
        t = t + self.dt(t)
        todo = t < tt
        while bool(todo.any()):
            t = torch.where(todo, t + self.dt(t), t)
            todo = todo & (t < tt)
        return t


def _perturbed_start(m: _Marcher, t: Tensor, noises: Tensor | None) -> Tensor:
    if noises is None:
        return t.clone()
    return t + m.dt(t) * noises


def march_rays_train(rays_o: Tensor, rays_d: Tensor, bound: float, density_bitfield: Tensor, C: int, H: int,
                     nears: Tensor, fars: Tensor, noises: Tensor | None, dt_gamma: float, max_steps: int):
    """Samples in occupied cells of every ray -> xyzs [M,3], dirs [M,3], deltas [M,2], rays [N,3] int32."""
    N = rays_o.shape[0]
    dev, dtype = rays_o.device, rays_o.dtype
    m = _Marcher(rays_o, rays_d, bound, density_bitfield, C, H, dt_gamma, max_steps)
    t = _perturbed_start(m, nears, noises)
    count = torch.zeros(N, dtype=torch.long, device=dev)
    rec_ray, rec_p, rec_dt, rec_t = [], [], [], []
    active = torch.nonzero((t < fars) & (count < max_steps)).squeeze(1)
    while active.numel() > 0:
        ta = t[active]
        p, dt, occ, tt = m.probe(active, ta)
        # occupied: emit a sample and advance by dt
        ai = active[occ]
        if ai.numel():
            t_next = ta[occ] + dt[occ]
            rec_ray.append(ai)
            rec_p.append(p[occ])
            rec_dt.append(dt[occ])
            rec_t.append(t_next)
            t[ai] = t_next
            count[ai] += 1
        # empty: skip to the next cell boundary
        free = ~occ
        if bool(free.any()):
            t[active[free]] = m.skip(ta[free], tt[free])
        still = (t[active] < fars[active]) & (count[active] < max_steps)
        active = active[still]
    if rec_ray:
        ray = torch.cat(rec_ray)
        order = torch.sort(ray, stable=True).indices
        xyzs = torch.cat(rec_p)[order].contiguous()
        deltas = torch.stack([torch.cat(rec_dt), torch.cat(rec_t)], dim=1)[order].contiguous()
        dirs = rays_d[ray[order]].contiguous()
    else:
        xyzs = torch.zeros(0, 3, dtype=dtype, device=dev)
        dirs = torch.zeros(0, 3, dtype=dtype, device=dev)
        deltas = torch.zeros(0, 2, dtype=dtype, device=dev)
    offsets = torch.cumsum(count, 0) - count
    rays = torch.stack([torch.arange(N, device=dev), offsets, count], dim=1).int().contiguous()
    return xyzs, dirs, deltas, rays


def march_rays(n_alive: int, n_step: int, rays_alive: Tensor, rays_t: Tensor, rays_o: Tensor, rays_d: Tensor,
               bound: float, density_bitfield: Tensor, C: int, H: int, nears: Tensor, fars: Tensor,
               noises: Tensor | None, dt_gamma: float, max_steps: int):
    """Up to ``n_step`` samples for each alive ray; advances ``rays_t`` in place.

    -> xyzs [n_alive*n_step, 3], dirs [n_alive*n_step, 3], deltas [n_alive*n_step, 2] (unused slots zero).
    """
    dev, dtype = rays_o.device, rays_o.dtype
    xyzs = torch.zeros(n_alive * n_step, 3, dtype=dtype, device=dev)
    dirs = torch.zeros(n_alive * n_step, 3, dtype=dtype, device=dev)
    deltas = torch.zeros(n_alive * n_step, 2, dtype=dtype, device=dev)
    if n_alive == 0 or n_step == 0:
        return xyzs, dirs, deltas
    m = _Marcher(rays_o, rays_d, bound, density_bitfield, C, H, dt_gamma, max_steps)
    slot = torch.arange(n_alive, device=dev)
    ok = rays_alive[:n_alive] >= 0
    slot = slot[ok]
    ray = rays_alive[:n_alive].long()[ok]
    t = rays_t[ray].clone()
    if noises is not None:
        t = _perturbed_start(m, t, noises[slot])
    far = fars[ray]
    step = torch.zeros_like(slot)
    act = torch.nonzero((t < far) & (step < n_step)).squeeze(1)  # positions in slot/ray/t
    while act.numel() > 0:
        ta = t[act]
        p, dt, occ, tt = m.probe(ray[act], ta)
        a = act[occ]
        if a.numel():
            t_next = ta[occ] + dt[occ]
            out = slot[a] * n_step + step[a]
            xyzs[out] = p[occ]
            dirs[out] = rays_d[ray[a]]
            deltas[out] = torch.stack([dt[occ], t_next], dim=1)
            t[a] = t_next
            step[a] += 1
        free = ~occ
        if bool(free.any()):
            t[act[free]] = m.skip(ta[free], tt[free])
        act = act[(t[act] < far[act]) & (step[act] < n_step)]
    rays_t[ray] = t
    return xyzs, dirs, deltas


# ----------------------------------------------------------------------------------------------
# compositing
# ----------------------------------------------------------------------------------------------

def _segments(rays: Tensor, M: int):
    """Flatten the per-ray sample ranges -> (row of each listed sample [K], its sample index [K], first [K])."""
    dev = rays.device
    r = rays.long()
    count = r[:, 2].clamp(min=0)
    count = torch.where(r[:, 1] + count > M, torch.zeros_like(count), count)  # out of range: empty ray
    K = int(count.sum())
    row = torch.repeat_interleave(torch.arange(r.shape[0], device=dev), count, output_size=K)
    start = torch.cumsum(count, 0) - count
    local = torch.arange(K, device=dev) - start[row]
    sample = r[row, 1] + local
    return row, sample, local == 0


def _seg_base_index(first: Tensor) -> Tensor:
    """Index of the first element of the segment of each element."""
    pos = torch.arange(first.numel(), device=first.device)
    return torch.cummax(torch.where(first, pos, torch.zeros_like(pos)), 0).values if first.numel() else pos


def _transmittance(sigmas: Tensor, deltas: Tensor, rays: Tensor, T_thresh: float):
    """Per listed sample: ray row, sample index, alpha, T before the step, kept mask (before early stop)."""
    M = sigmas.shape[0]
    row, sample, first = _segments(rays, M)
    sig, dt = sigmas[sample], deltas[sample, 0]
    alpha = 1.0 - torch.exp(-sig * dt)  # same formula (and rounding) as the kernels
    log1m = torch.log1p(-alpha.double()).clamp(min=-1e4)  # log(1 - alpha), finite
    c = torch.cumsum(log1m, 0)
    excl = c - log1m
    base = excl[_seg_base_index(first)]
    T = torch.exp(excl - base)  # transmittance before each step, float64
    kept = T >= T_thresh  # a ray stops after the step that takes T below T_thresh
    return row, sample, alpha, T, kept


def composite_rays_train_forward(sigmas: Tensor, rgbs: Tensor, ambient: Tensor, deltas: Tensor, rays: Tensor,
                                 T_thresh: float = 1e-4):
    """Front-to-back compositing -> weights_sum [N], ambient_sum [N], depth [N], image [N, 3]."""
    N = rays.shape[0]
    dtype, dev = sigmas.dtype, sigmas.device
    row, sample, alpha, T, kept = _transmittance(sigmas, deltas, rays, T_thresh)
    w = torch.where(kept, alpha.double() * T, torch.zeros_like(T))  # [K]
    idx = rays[:, 0].long()[row]
    ws = torch.zeros(N, dtype=torch.float64, device=dev).index_add_(0, idx, w)
    amb = torch.zeros(N, dtype=torch.float64, device=dev).index_add_(0, idx, w * ambient[sample].double())
    depth = torch.zeros(N, dtype=torch.float64, device=dev).index_add_(0, idx, w * deltas[sample, 1].double())
    image = torch.zeros(N, 3, dtype=torch.float64, device=dev).index_add_(0, idx, w[:, None] * rgbs[sample].double())
    return ws.to(dtype), amb.to(dtype), depth.to(dtype), image.to(dtype)


def composite_rays_train_backward(grad_weights_sum: Tensor, grad_ambient_sum: Tensor, grad_depth: Tensor,
                                  grad_image: Tensor, sigmas: Tensor, rgbs: Tensor, ambient: Tensor, deltas: Tensor,
                                  rays: Tensor, weights_sum: Tensor, T_thresh: float = 1e-4):
    """Gradients of the four outputs -> grad_sigmas [M], grad_rgbs [M, 3], grad_ambient [M].

    With s_j = g_image . rgb_j + g_ambient * ambient_j + g_depth * t_j and T_j after step j:
    d/d sigma_j = dt_j * (T_j s_j - sum_{k>j} w_k s_k + g_weights_sum * (1 - weights_sum)).
    """
    M = sigmas.shape[0]
    dtype, dev = sigmas.dtype, sigmas.device
    row, sample, alpha, T, kept = _transmittance(sigmas, deltas, rays, T_thresh)
    a = alpha.double()
    w = torch.where(kept, a * T, torch.zeros_like(T))
    T_after = T * (1.0 - a)
    idx = rays[:, 0].long()[row]
    g_img, g_amb = grad_image.double()[idx], grad_ambient_sum.double()[idx]
    g_dep, g_ws = grad_depth.double()[idx], grad_weights_sum.double()[idx]
    s = (g_img * rgbs[sample].double()).sum(1) + g_amb * ambient[sample].double() + g_dep * deltas[sample, 1].double()
    ws_s = w * s
    c = torch.cumsum(ws_s, 0)
    # sum over later kept samples of the same ray: (segment total) - (inclusive cumsum)
    last = _seg_last_index(_segments_first_to_last(row))
    after = c[last] - c
    g_sig = deltas[sample, 0].double() * (T_after * s - after + g_ws * (1.0 - weights_sum.double()[idx]))
    g_sig = torch.where(kept, g_sig, torch.zeros_like(g_sig))
    grad_sigmas = torch.zeros(M, dtype=dtype, device=dev)
    grad_rgbs = torch.zeros(M, 3, dtype=dtype, device=dev)
    grad_ambient = torch.zeros(M, dtype=dtype, device=dev)
    grad_sigmas[sample] = g_sig.to(dtype)
    grad_rgbs[sample] = (g_img * w[:, None]).to(dtype)
    grad_ambient[sample] = (g_amb * w).to(dtype)
    return grad_sigmas, grad_rgbs, grad_ambient


def _segments_first_to_last(row: Tensor) -> Tensor:
    """``last`` flags (True at the final listed sample of each ray row)."""
    last = torch.ones_like(row, dtype=torch.bool)
    if row.numel() > 1:
        last[:-1] = row[1:] != row[:-1]
    return last


def _seg_last_index(last: Tensor) -> Tensor:
    """Index of the last element of the segment of each element."""
    n = last.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=last.device)
    pos = torch.arange(n, device=last.device)
    big = torch.where(last, pos, torch.full_like(pos, n))
    return torch.flip(torch.cummin(torch.flip(big, [0]), 0).values, [0])


def composite_rays(n_alive: int, n_step: int, rays_alive: Tensor, rays_t: Tensor, sigmas: Tensor, rgbs: Tensor,
                   deltas: Tensor, weights_sum: Tensor, depth: Tensor, image: Tensor, T_thresh: float = 1e-2) -> None:
    """One inference compositing step, in place; finished rays get ``rays_alive = -1``."""
    if n_alive == 0:
        return
    dev = sigmas.device
    ok = rays_alive[:n_alive] >= 0
    slot = torch.arange(n_alive, device=dev)[ok]
    ray = rays_alive[:n_alive].long()[ok]
    ws, d, img = weights_sum[ray], depth[ray], image[ray]
    t = rays_t[ray]
    running = torch.ones_like(slot, dtype=torch.bool)
    finished = torch.zeros_like(running)
    for k in range(n_step):
        j = slot * n_step + k
        dt = deltas[j, 0]
        stop_zero = running & (dt == 0)
        finished |= stop_zero
        running &= ~stop_zero
        alpha = 1.0 - torch.exp(-sigmas[j] * dt)
        T = 1.0 - ws
        w = alpha * T
        ws = torch.where(running, ws + w, ws)
        t = torch.where(running, deltas[j, 1], t)
        d = torch.where(running, d + w * deltas[j, 1], d)
        img = torch.where(running[:, None], img + w[:, None] * rgbs[j], img)
        stop_T = running & (T < T_thresh)
        finished |= stop_T
        running &= ~stop_T
    weights_sum[ray] = ws
    depth[ray] = d
    image[ray] = img
    rays_t[ray] = torch.where(finished, rays_t[ray], t)
    rays_alive[slot[finished]] = -1

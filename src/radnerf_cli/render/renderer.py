"""Rendering a talking head over the ray-marching kernels (RAD-NeRF's ``run_cuda``, restructured).

Training: ``near_far_from_aabb -> march_rays_train -> head field -> composite_rays_train`` on a batch
of rays (the ambient channel is composited too, for the ambient loss). Inference: the
``march_rays / composite_rays`` loop over the still-alive rays. Compositing order: the torso layer
over the background, then the head over that.
"""

from __future__ import annotations

import torch
from torch import Tensor

from radnerf_cli.kernels import raymarch
from radnerf_cli.model.config import InferConfig, RenderConfig, TrainConfig
from radnerf_cli.model.network import TalkingHeadModel
from radnerf_cli.render.composite import over


def pixel_coords(H: int, W: int, device: torch.device | str = "cpu") -> Tensor:
    """Normalised (row, column) coordinates in [-1, 1] of every pixel, row-major: [H*W, 2]."""
    r = torch.arange(H, device=device, dtype=torch.float32) / max(H - 1, 1) * 2 - 1
    c = torch.arange(W, device=device, dtype=torch.float32) / max(W - 1, 1) * 2 - 1
    rr, cc = torch.meshgrid(r, c, indexing="ij")
    return torch.stack([rr.reshape(-1), cc.reshape(-1)], -1)


# Inference marches each alive ray n_step samples per round, n_step = (batch / alive rays) clipped to
# [1, 8], as RAD-NeRF does with batch = all rays of the frame. A frame of a few thousand rays (the face
# of portrait mode) would then march one sample a ray per round for most of its rounds: the batch is at
# least this many samples, so few rays take several steps a round from the start.
MIN_INFER_BATCH = 32768


class Renderer:
    """Renders the head (3D, ray marched) and the torso (2D) of a :class:`TalkingHeadModel`."""

    min_batch = MIN_INFER_BATCH  # samples an inference round aims at (see MIN_INFER_BATCH)

    def __init__(self, model: TalkingHeadModel, cfg: RenderConfig, T_thresh_train: float = TrainConfig.T_thresh,
                 T_thresh_test: float = InferConfig.T_thresh):
        self.model = model
        self.cfg = cfg
        self.T_thresh_train = float(T_thresh_train)  # a training ray stops below this transmittance
        self.T_thresh_test = float(T_thresh_test)  # an inference ray stops below this transmittance
        self.bound = float(model.cfg.bound)

    def _aabb(self, device) -> Tensor:
        return torch.tensor(list(self.cfg.aabb), dtype=torch.float32, device=device)

    def _autocast(self, device: torch.device, enabled: bool):
        return torch.autocast(device_type="cuda", dtype=torch.float16, enabled=enabled and device.type == "cuda")

    # ---------------------------------------------------------------- training
    def head_train(
        self,
        rays_o: Tensor,  # [N, 3]
        rays_d: Tensor,  # [N, 3]
        enc_a: Tensor,  # [1, A]
        ind_code: Tensor | None,  # [1, D]
        eye: Tensor | None,  # [1, 1]
        noises: Tensor | None,  # [N] in [0, 1) (None: no perturbation)
        fp16: bool = False,
    ) -> dict[str, Tensor]:  # image [N, 3] (premultiplied), weights_sum [N], ambient [N], depth [N]
        occ = self.model.occupancy
        nears, fars = raymarch.near_far_from_aabb(rays_o, rays_d, self._aabb(rays_o.device), self.cfg.min_near)
        xyzs, dirs, deltas, rays = raymarch.march_rays_train(
            rays_o, rays_d, self.bound, occ.density_bitfield, occ.cascade, occ.grid_size,
            nears, fars, noises, self.cfg.dt_gamma, self.cfg.max_steps,
        )
        with self._autocast(rays_o.device, fp16):
            sigmas, rgbs, ambient = self.model.head(xyzs, dirs, enc_a, ind_code, eye)
        ws, amb, depth, image = raymarch.composite_rays_train(
            sigmas.float().contiguous(), rgbs.float().contiguous(), ambient.float().abs().sum(-1).contiguous(),
            deltas, rays, self.T_thresh_train,
        )
        return {"image": image, "weights_sum": ws, "ambient": amb, "depth": depth, "num_samples": xyzs.shape[0]}

    # ---------------------------------------------------------------- inference
    @torch.no_grad()
    def head_infer(
        self,
        rays_o: Tensor,  # [N, 3]
        rays_d: Tensor,  # [N, 3]
        enc_a: Tensor | None,  # [1, A]
        ind_code: Tensor | None,
        eye: Tensor | None,
        fp16: bool = False,
    ) -> dict[str, Tensor]:  # image [N, 3] (premultiplied), weights_sum [N], depth [N] (surface in [0, 1] of near..far)
        dev = rays_o.device
        N = rays_o.shape[0]
        occ = self.model.occupancy
        image = torch.zeros(N, 3, device=dev)
        weights_sum = torch.zeros(N, device=dev)
        depth_out = torch.zeros(N, device=dev)
        nears, fars = raymarch.near_far_from_aabb(rays_o, rays_d, self._aabb(dev), self.cfg.min_near)
        hit = (nears < fars).nonzero().squeeze(1)
        n = hit.numel()
        if n == 0:
            return {"image": image, "weights_sum": weights_sum, "depth": depth_out}
        ro, rd = rays_o[hit].contiguous(), rays_d[hit].contiguous()
        nr, fr = nears[hit].contiguous(), fars[hit].contiguous()
        img = torch.zeros(n, 3, device=dev)
        ws = torch.zeros(n, device=dev)
        dep = torch.zeros(n, device=dev)
        rays_alive = torch.arange(n, dtype=torch.int32, device=dev)
        rays_t = nr.clone()
        step = 0
        batch = max(n, int(self.min_batch))
        while step < self.cfg.max_steps:
            n_alive = rays_alive.shape[0]
            if n_alive <= 0:
                break
            n_step = max(min(batch // n_alive, 8), 1)
            xyzs, dirs, deltas = raymarch.march_rays(
                n_alive, n_step, rays_alive, rays_t, ro, rd, self.bound, occ.density_bitfield,
                occ.cascade, occ.grid_size, nr, fr, None, self.cfg.dt_gamma, self.cfg.max_steps,
            )
            sigmas = torch.zeros(xyzs.shape[0], device=dev)
            rgbs = torch.zeros(xyzs.shape[0], 3, device=dev)
            valid = (deltas[:, 0] > 0).nonzero().squeeze(1)  # unused slots have zero step
            if valid.numel():
                with self._autocast(dev, fp16):
                    s, c, _ = self.model.head(xyzs[valid], dirs[valid], enc_a, ind_code, eye)
                sigmas[valid] = s.float()
                rgbs[valid] = c.float()
            raymarch.composite_rays(
                n_alive, n_step, rays_alive, rays_t, sigmas, rgbs, deltas, ws, dep, img, self.T_thresh_test
            )
            rays_alive = rays_alive[rays_alive >= 0]
            step += n_step
        image[hit] = img
        weights_sum[hit] = ws
        t_hit = dep / ws.clamp(min=1e-6)  # expected ray distance of the visible surface
        d = ((t_hit - nr) / (fr - nr).clamp(min=1e-6)).clamp(0, 1)
        depth_out[hit] = torch.where(ws > 1e-2, d, torch.zeros_like(d))
        return {"image": image, "weights_sum": weights_sum, "depth": depth_out}

    # ---------------------------------------------------------------- torso
    def torso(
        self,
        coords: Tensor,  # [N, 2] pixel coordinates in [-1, 1]
        pose6: Tensor,  # [1, 6]
        code: Tensor | None,  # [1, Dt]
        use_grid: bool = False,
        fp16: bool = False,
    ) -> tuple[Tensor, Tensor]:  # alpha [N, 1], rgb [N, 3]
        dev = coords.device
        if not use_grid:
            with self._autocast(dev, fp16):
                a, c, _ = self.model.torso(coords, pose6, code)
            return a.float(), c.float()
        alpha = torch.zeros(coords.shape[0], 1, device=dev)
        rgb = torch.zeros(coords.shape[0], 3, device=dev)
        mask = self.model.torso_occupancy.mask(coords, self.cfg.density_thresh_torso)
        if mask.any():
            with self._autocast(dev, fp16):
                a, c, _ = self.model.torso(coords[mask], pose6, code)
            alpha[mask] = a.float()
            rgb[mask] = c.float()
        return alpha, rgb

    @torch.no_grad()
    def frame(
        self,
        rays_o: Tensor,  # [H*W, 3]
        rays_d: Tensor,  # [H*W, 3]
        coords: Tensor,  # [H*W, 2] pixel coordinates in [-1, 1]
        bg: Tensor,  # [H*W, 3] background in [0, 1]
        enc_a: Tensor | None,  # [1, A]
        eye: Tensor | None,  # [1, 1]
        pose6: Tensor | None,  # [1, 6] (None: no torso layer)
        ind_index: int | None = None,
        head: bool = True,
        fp16: bool = False,
    ) -> dict[str, Tensor]:  # image [H*W, 3], depth [H*W], weights_sum [H*W], torso_alpha [H*W, 1]
        """A full image: torso over background, then the head over it."""
        m = self.model
        out: dict[str, Tensor] = {}
        if pose6 is not None:
            alpha, rgb = self.torso(coords, pose6, m.torso_code(ind_index), use_grid=True, fp16=fp16)
            bg = over(rgb, alpha, bg)
            out["torso_alpha"] = alpha
        if head:
            res = self.head_infer(rays_o, rays_d, enc_a, m.ind_code(ind_index), eye, fp16=fp16)
            image = res["image"] + (1 - res["weights_sum"]).unsqueeze(-1) * bg
            out["depth"], out["weights_sum"] = res["depth"], res["weights_sum"]
        else:
            image = bg
            out["depth"] = torch.zeros(bg.shape[0], device=bg.device)
            out["weights_sum"] = torch.zeros(bg.shape[0], device=bg.device)
        out["image"] = image.clamp(0, 1)
        return out

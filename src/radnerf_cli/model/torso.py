"""The torso field: a 2D, pose-conditioned image layer composited between background and head.

Pixel coordinates in [-1, 1] (times ``torso_shrink``) are frequency-encoded and, with the encoded
head pose (Euler angles + translation), optionally the body pose (``torso_body``: shoulders and
shift, :mod:`radnerf_cli.data.body_pose`, standardised on the training frames) and a per-frame torso
code, deformed by an MLP; a 2D grid at the deformed point feeds an MLP giving alpha and rgb.

What conditions a frame is one vector, :meth:`TorsoField.condition`: the 6 head-pose numbers, then
the standardised body pose when the field uses it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from radnerf_cli.data.body_pose import BODY_DIM
from radnerf_cli.model.config import ModelConfig
from radnerf_cli.model.layers import MLP


def pose_to_euler_trans(poses: Tensor) -> Tensor:
    """Model-space camera poses [B, 4, 4] -> [B, 6]: XYZ Euler angles (radians) then translation."""
    R = poses[:, :3, :3].float()
    rx = torch.atan2(-R[:, 1, 2], R[:, 2, 2])
    ry = torch.asin(R[:, 0, 2].clamp(-1.0, 1.0))
    rz = torch.atan2(-R[:, 0, 1], R[:, 0, 0])
    return torch.cat([torch.stack([rx, ry, rz], -1), poses[:, :3, 3].float()], dim=-1)


class TorsoField(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        from radnerf_cli.kernels.encoding import FreqEncoder, GridEncoder

        self.shrink = cfg.torso_shrink
        self.ind_dim = cfg.ind_dim_torso
        self.deform_encoder = FreqEncoder(input_dim=2, n_freqs=10)
        self.pose_encoder = FreqEncoder(input_dim=6, n_freqs=4)
        cond = self.deform_encoder.output_dim + self.pose_encoder.output_dim + cfg.ind_dim_torso
        self.body_dim = BODY_DIM if cfg.torso_body else 0
        if self.body_dim:
            self.body_encoder = FreqEncoder(input_dim=BODY_DIM, n_freqs=cfg.torso_body_freqs)
            self.register_buffer("body_mean", torch.zeros(BODY_DIM))
            self.register_buffer("body_std", torch.ones(BODY_DIM))
            cond += self.body_encoder.output_dim
        self.deform_net = MLP(cond, 2, cfg.torso_deform_dim, 3)
        self.encoder = GridEncoder(
            input_dim=2,
            num_levels=cfg.num_levels,
            level_dim=cfg.level_dim,
            base_resolution=cfg.base_resolution,
            log2_hashmap_size=cfg.torso_log2_hashmap_size or cfg.log2_hashmap_size,
            desired_resolution=cfg.torso_resolution,
            gridtype="tiled",
        )
        self.torso_net = MLP(self.encoder.output_dim + cond, 4, cfg.torso_hidden_dim, 3)

    @torch.no_grad()
    def fit_body(self, body: Tensor) -> None:
        """Standardise the body pose by the training frames' ``body`` [N, BODY_DIM]."""
        if self.body_dim and len(body):
            b = body.float().to(self.body_mean.device)
            self.body_mean.copy_(b.mean(0))
            self.body_std.copy_(b.std(0, unbiased=False).clamp(min=1e-3))

    def condition(self, poses: Tensor, body: Tensor | None = None) -> Tensor:  # [B, 4, 4], [B, BODY_DIM] -> [B, C]
        """What conditions the field for model-space camera ``poses`` and (when it uses it) the raw body pose."""
        p = pose_to_euler_trans(poses)
        if not self.body_dim:
            return p
        if body is None:
            raise ValueError("this torso field is conditioned on the body pose: give body")
        z = (body.to(p.device).float().view(p.shape[0], -1) - self.body_mean) / self.body_std
        return torch.cat([p, z], dim=-1)

    def forward(
        self,
        x: Tensor,  # [N, 2] pixel coordinates in [-1, 1] (row, column)
        pose: Tensor,  # [1, C] from :meth:`condition`
        code: Tensor | None,  # [1, ind_dim_torso]
    ) -> tuple[Tensor, Tensor, Tensor]:  # alpha [N, 1], rgb [N, 3], dx [N, 2]
        x = x * self.shrink
        n = x.shape[0]
        parts = [self.deform_encoder(x), self.pose_encoder(pose[:, :6]).expand(n, -1)]
        if self.body_dim:
            parts.append(self.body_encoder(pose[:, 6:]).to(x.dtype).expand(n, -1))
        if self.ind_dim:
            parts.append(code.view(1, -1).to(x.dtype).expand(n, -1))
        h = torch.cat(parts, dim=-1)
        dx = self.deform_net(h)
        xd = (x + dx).clamp(-1, 1)
        out = self.torso_net(torch.cat([self.encoder(xd, bound=1.0).to(h.dtype), h], dim=-1)).float()
        return torch.sigmoid(out[..., :1]), torch.sigmoid(out[..., 1:]), dx

"""The head field: a 3D grid, the audio-driven ambient coordinates into a 2D grid, sigma and colour MLPs.

Per sample point x with audio code a, eye value e and individual code c (RAD-NeRF's audio-spatial
decomposition):

    enc_x   = grid3d(x)                                   [M, 32]
    ambient = tanh(MLP(enc_x, a))                         [M, 2]   audio-driven coordinates
    enc_w   = grid2d(ambient)                             [M, 32]
    h       = MLP(enc_x, enc_w, e);  sigma = trunc_exp(h0), geo = h[1:]
    rgb     = sigmoid(MLP(SH4(dir), geo, c))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from radnerf_cli.model.config import ModelConfig
from radnerf_cli.model.layers import MLP, trunc_exp


def _linear2(a: Tensor, wa: Tensor, b: Tensor, wb: Tensor, bias: Tensor | None) -> Tensor:
    """``[a, b] @ [wa, wb].T + bias`` without concatenating: one GEMM, then one accumulating GEMM."""
    out = F.linear(a, wa, bias)
    return out.addmm_(b.to(out.dtype), wb.t().to(out.dtype))


class HeadField(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        from radnerf_cli.kernels.encoding import GridEncoder, SHEncoder

        self.bound = cfg.bound
        self.ambient_dim = cfg.ambient_dim
        grid = dict(
            num_levels=cfg.num_levels,
            level_dim=cfg.level_dim,
            base_resolution=cfg.base_resolution,
            log2_hashmap_size=cfg.log2_hashmap_size,
            gridtype="tiled",
        )
        self.encoder = GridEncoder(input_dim=3, desired_resolution=int(cfg.desired_resolution * cfg.bound), **grid)
        self.encoder_ambient = GridEncoder(input_dim=cfg.ambient_dim, desired_resolution=cfg.ambient_resolution, **grid)
        in_x, in_w = self.encoder.output_dim, self.encoder_ambient.output_dim
        self.ambient_net = MLP(in_x + cfg.audio_dim, cfg.ambient_dim, cfg.hidden_dim, 3)
        self.eye_dim = 1 if cfg.exp_eye else 0
        self.sigma_net = MLP(in_x + in_w + self.eye_dim, 1 + cfg.geo_feat_dim, cfg.hidden_dim, 3)
        self.encoder_dir = SHEncoder(input_dim=3, degree=cfg.sh_degree)
        self.ind_dim = cfg.ind_dim
        self.color_net = MLP(self.encoder_dir.output_dim + cfg.geo_feat_dim + cfg.ind_dim, 3, cfg.hidden_dim, 2)

    def _ambient(self, enc_x: Tensor, enc_a: Tensor) -> Tensor:
        """tanh(MLP([enc_x, enc_a])) with the audio half of the first layer computed once: [M, amb]."""
        w = self.ambient_net.net[0].weight  # [hidden, in_x + audio]
        n_x = enc_x.shape[1]
        audio_term = F.linear(enc_a.to(w.dtype), w[:, n_x:]).view(-1)  # [hidden], a bias of the first layer
        first = F.linear(enc_x, w[:, :n_x], audio_term)
        return torch.tanh(self.ambient_net(enc_x, first=first).float())

    def geometry(self, x: Tensor, enc_a: Tensor | None, eye: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """x [M, 3] in [-bound, bound], enc_a [1, A] (None: ambient 0), eye [1, 1] -> sigma [M], geo [M, G], ambient [M, 2]."""
        enc_x = self.encoder(x, bound=self.bound)
        if enc_a is None:
            ambient = torch.zeros(x.shape[0], self.ambient_dim, device=x.device)
        else:
            ambient = self._ambient(enc_x, enc_a)
        enc_w = self.encoder_ambient(ambient, bound=1.0).to(enc_x.dtype)
        # first layer of MLP([enc_x, enc_w, e]) without the concatenation; e is one value per frame
        w = self.sigma_net.net[0].weight  # [hidden, in_x + in_w + eye]
        n_x, n_w = enc_x.shape[1], enc_w.shape[1]
        bias = None
        if self.eye_dim:
            e = eye if eye is not None else torch.zeros(1, 1, device=x.device)
            bias = F.linear(e.view(1, 1).to(w.dtype), w[:, n_x + n_w :]).view(-1)
        first = _linear2(enc_x, w[:, :n_x], enc_w, w[:, n_x : n_x + n_w], bias)
        h = self.sigma_net(enc_x, first=first)
        return trunc_exp(h[..., 0]), h[..., 1:], ambient

    def forward(
        self,
        x: Tensor,  # [M, 3] in [-bound, bound]
        d: Tensor,  # [M, 3] unit view directions
        enc_a: Tensor | None,  # [1, A]
        ind_code: Tensor | None,  # [1, ind_dim]
        eye: Tensor | None,  # [1, 1]
    ) -> tuple[Tensor, Tensor, Tensor]:  # sigma [M], rgb [M, 3], ambient [M, 2]
        sigma, geo, ambient = self.geometry(x, enc_a, eye)
        return sigma, self.color(d, geo, ind_code), ambient

    def color(self, d: Tensor, geo: Tensor, ind_code: Tensor | None) -> Tensor:
        """rgb [M, 3] from view directions d [M, 3] and geometry features geo [M, G]."""
        enc_d = self.encoder_dir(d).to(geo.dtype)
        # first layer of MLP([SH(d), geo, c]) without the concatenation; c is one code per frame
        w = self.color_net.net[0].weight  # [hidden, dir + geo + ind]
        n_d, n_g = enc_d.shape[1], geo.shape[1]
        bias = None
        if self.ind_dim:
            bias = F.linear(ind_code.view(1, -1).to(w.dtype), w[:, n_d + n_g :]).view(-1)
        first = _linear2(geo, w[:, n_d : n_d + n_g], enc_d, w[:, :n_d], bias)
        return torch.sigmoid(self.color_net(geo, first=first).float())

    def density(self, x: Tensor, enc_a: Tensor | None, eye: Tensor | None) -> Tensor:
        """sigma [M] at x [M, 3]."""
        return self.geometry(x, enc_a, eye)[0]

"""The model, occupancy grid and renderer on small inputs (no dataset needed except the last test)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from radnerf_cli.model.audio import AudioEncoder
from radnerf_cli.model.config import ModelConfig, RenderConfig, load_run_config
from radnerf_cli.model.layers import trunc_exp
from radnerf_cli.model.occupancy import OccupancyGrid, TorsoGrid
from radnerf_cli.model.torso import pose_to_euler_trans
from radnerf_cli.render.renderer import Renderer, pixel_coords

sys.path.insert(0, str(Path(__file__).parent))


def test_parameter_count_matches_the_original():
    """SPEC 4: about 3.0 M parameters for the head, 4.2 M with the torso (wav2vec features, C = 44)."""
    from radnerf_cli.model.network import TalkingHeadModel

    m = TalkingHeadModel(ModelConfig(), RenderConfig(grid_size=32), feature_dim=44)
    head, total = m.num_params(torso=False), m.num_params(torso=True)
    assert 2.8e6 < head < 3.3e6, head
    assert 3.9e6 < total < 4.5e6, total


def test_audio_encoder_shapes_and_attention():
    enc = AudioEncoder(feature_dim=44, dim_aud=64, att=True)
    a = torch.randn(8, 16, 44)
    out = enc(a)
    assert out.shape == (1, 64)
    # the attention output is a convex combination of the 8 per-frame codes
    codes = enc.audio_net(a.transpose(1, 2))
    y = enc.audio_att_net.attentionConvNet(codes.t().unsqueeze(0))
    w = enc.audio_att_net.attentionNet(y.view(1, 8))
    assert torch.allclose(w.sum(), torch.tensor(1.0), atol=1e-6)
    assert torch.allclose(out, (w.view(8, 1) * codes).sum(0, keepdim=True), atol=1e-6)
    assert AudioEncoder(16, 64, att=False)(torch.randn(8, 16, 16)).shape == (1, 64)


def test_trunc_exp_gradient_is_clamped():
    x = torch.tensor([0.0, 20.0], requires_grad=True)
    y = trunc_exp(x)
    y.sum().backward()
    assert torch.allclose(y, torch.exp(x.detach()))
    assert torch.allclose(x.grad, torch.exp(torch.tensor([0.0, 15.0])))


def _euler_xyz(rx, ry, rz):
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    X = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Y = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Z = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return X @ Y @ Z


def test_pose_to_euler_trans_inverts_xyz_rotation():
    P = torch.eye(4)
    P[:3, :3] = _euler_xyz(0.3, -0.2, 0.1)
    P[:3, 3] = torch.tensor([0.1, -0.2, 3.0])
    out = pose_to_euler_trans(P[None])[0]
    assert torch.allclose(out, torch.tensor([0.3, -0.2, 0.1, 0.1, -0.2, 3.0]), atol=1e-5)


class _Ball(nn.Module):
    """An analytic head field: a red ball of radius 0.3 with density 60, for renderer tests."""

    def forward(self, x, d, enc_a, ind_code, eye):
        inside = (x.norm(dim=-1) < 0.3).float()
        sigma = 60.0 * inside
        rgb = torch.zeros_like(x)
        rgb[:, 0] = 1.0
        return sigma, rgb, torch.zeros(x.shape[0], 2)

    def density(self, x, enc_a, eye):
        return 60.0 * (x.norm(dim=-1) < 0.3).float()


class _BallModel(nn.Module):
    def __init__(self, G=32):
        super().__init__()
        self.cfg = ModelConfig()
        self.head = _Ball()
        self.occupancy = OccupancyGrid(G, 1.0)
        self.torso_occupancy = TorsoGrid(G)

    def ind_code(self, i):
        return None

    def torso_code(self, i):
        return None


def _camera(H=24, W=24, dist=2.5):
    """A camera on +z... in model space looking at the origin: (rays_o, rays_d) [H*W, 3]."""
    from radnerf_cli.data import get_rays

    pose = torch.eye(4)
    pose[:3, :3] = torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])  # looks along -z
    pose[2, 3] = dist
    f = 1.2 * W
    rays = get_rays(pose[None], (f, f, W / 2, H / 2), H, W)
    return rays["rays_o"][0].contiguous(), rays["rays_d"][0].contiguous(), pose


def test_occupancy_update_marks_the_ball_and_unseen_cells():
    m = _BallModel(32)
    g = torch.Generator().manual_seed(0)
    ro, rd, pose = _camera()
    unseen = m.occupancy.mark_unseen(pose[None], (28.8, 28.8, 12.0, 12.0))
    assert 0 < unseen < 32**3  # the camera's frustum misses the box corners
    m.occupancy.update(lambda x: m.head.density(x, None, None), g, decay=0.95, density_thresh=10.0)
    occ = m.occupancy.occupied_fraction()
    ball = 4 / 3 * math.pi * 0.3**3 / 8.0  # ball volume / box volume
    assert ball < occ < 4 * ball, (occ, ball)  # dilated by one cell, never less than the ball
    assert m.occupancy.density_grid.min() == -1  # unseen cells stay marked


def test_occupancy_update_skips_only_cells_it_never_uses():
    """Evaluating only the seen cells and their neighbours gives the grid a full evaluation gives."""
    m = _BallModel(32)
    _, _, pose = _camera()
    m.occupancy.mark_unseen(pose[None], (28.8, 28.8, 12.0, 12.0))
    needed = m.occupancy.needed_cells()
    seen = m.occupancy.density_grid[0] >= 0
    assert bool((needed | ~seen).all()) and int(needed.sum()) > int(seen.sum())  # seen cells, and more
    assert int(needed.sum()) < 32**3  # some cells are skipped
    full = OccupancyGrid(32)
    full.density_grid.copy_(m.occupancy.density_grid)
    full.needed_cells = lambda: torch.ones(32**3, dtype=torch.bool)  # the reference: every cell
    counted = []

    def density(x):
        counted.append(x.shape[0])
        return m.head.density(x, None, None)

    for grid in (m.occupancy, full):
        g = torch.Generator().manual_seed(3)
        for _ in range(3):
            grid.update(density, g, decay=0.95, density_thresh=10.0)
    assert torch.equal(m.occupancy.density_grid, full.density_grid)
    assert torch.equal(m.occupancy.density_bitfield, full.density_bitfield)
    assert sum(counted[: len(counted) // 2]) == 3 * int(needed.sum())


def test_training_and_inference_renders_agree():
    m = _BallModel(32)
    g = torch.Generator().manual_seed(0)
    m.occupancy.update(lambda x: m.head.density(x, None, None), g)
    cfg = RenderConfig(grid_size=32, max_steps=64, aabb=[-1, -1, -1, 1, 1, 1])
    r = Renderer(m, cfg)
    ro, rd, _ = _camera()
    tr = r.head_train(ro, rd, None, None, None, None)
    inf = r.head_infer(ro, rd, None, None, None)
    H = W = 24
    ws_t, ws_i = tr["weights_sum"].view(H, W), inf["weights_sum"].view(H, W)
    assert ws_t[H // 2, W // 2] > 0.99 and ws_t[0, 0] < 1e-6  # the ball is opaque, the corner empty
    assert torch.allclose(ws_t, ws_i, atol=0.02)
    assert torch.allclose(tr["image"], inf["image"], atol=0.02)
    assert torch.allclose(tr["image"][:, 1:], torch.zeros_like(tr["image"][:, 1:]))  # only red


def test_few_rays_march_in_fuller_rounds_to_the_same_image(monkeypatch):
    """A small ray set (portrait's face) marches several samples a ray per round from the start; the
    frame is the one RAD-NeRF's schedule (a sample a ray per round while most rays live) renders."""
    from radnerf_cli.render import renderer as R

    m = _BallModel(32)
    m.occupancy.update(lambda x: m.head.density(x, None, None), torch.Generator().manual_seed(0))
    r = Renderer(m, RenderConfig(grid_size=32, max_steps=64, aabb=[-1, -1, -1, 1, 1, 1]))
    ro, rd, _ = _camera()
    centre = torch.arange(24 * 24).view(24, 24)[8:16, 8:16].reshape(-1)  # 64 rays around the ball
    ro, rd = ro[centre].contiguous(), rd[centre].contiguous()
    rounds = []
    march = R.raymarch.march_rays
    monkeypatch.setattr(R.raymarch, "march_rays", lambda n_alive, n_step, *a: rounds.append(n_step) or march(n_alive, n_step, *a))
    out = {}
    for mb in (0, R.MIN_INFER_BATCH):
        rounds.clear()
        r.min_batch = mb
        out[mb] = (r.head_infer(ro, rd, None, None, None), list(rounds))
    (old, old_rounds), (new, new_rounds) = out[0], out[R.MIN_INFER_BATCH]
    assert old_rounds[0] == 1 and new_rounds[0] == 8 and len(new_rounds) < len(old_rounds)
    assert bool((old["weights_sum"] > 0.99).any()) and bool((old["weights_sum"] < 0.01).any())  # ball and edge
    torch.testing.assert_close(new["weights_sum"], old["weights_sum"], atol=0.01, rtol=0)
    torch.testing.assert_close(new["image"], old["image"], atol=0.01, rtol=0)


def test_torso_grid_masks_where_alpha_is_low():
    t = TorsoGrid(16)
    g = torch.Generator().manual_seed(0)
    # alpha = 1 in the lower half of the image (first coordinate = row > 0), else 0
    t.update(lambda xy: (xy[:, 0] > 0).float(), g, decay=0.95)
    coords = pixel_coords(16, 16)
    mask = t.mask(coords, 0.01).view(16, 16)
    assert mask[-1].all() and not mask[0].any()


def test_presets_and_unknown_keys():
    from radnerf_cli.errors import ConfigError

    fast = load_run_config("fast")
    assert fast.train.downscale == 2 and fast.train.num_rays < 65536
    full = load_run_config("full", overrides=["train.num_rays=1024"])
    assert full.train.num_rays == 1024 and full.train.head_iters == 200000
    with pytest.raises(ConfigError, match="train.bogus"):
        load_run_config("full", overrides=["train.bogus=1"])
    with pytest.raises(ConfigError, match="preset"):
        load_run_config("medium")


def test_rendering_is_deterministic_for_a_fixed_model():
    """Two renders of the same frame by TalkingHead-free code paths give identical images."""
    m = _BallModel(32)
    m.occupancy.update(lambda x: m.head.density(x, None, None), torch.Generator().manual_seed(1))
    r = Renderer(m, RenderConfig(grid_size=32, aabb=[-1, -1, -1, 1, 1, 1]))
    ro, rd, _ = _camera()
    bg = torch.rand(ro.shape[0], 3, generator=torch.Generator().manual_seed(2))
    a = r.frame(ro, rd, pixel_coords(24, 24), bg, None, None, None)["image"]
    b = r.frame(ro, rd, pixel_coords(24, 24), bg, None, None, None)["image"]
    assert torch.equal(a, b)
    assert np.isclose(float(a.view(24, 24, 3)[0, 0, 0]), float(bg[0, 0]))  # background where the ray misses

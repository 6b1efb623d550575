"""The body pose (shoulders and shift, read from the torso layer) and the torso field conditioned on it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from radnerf_cli.data import SubjectData
from radnerf_cli.data.body_pose import (
    BODY_DIM,
    SHOULDER_COLUMNS,
    band_shift,
    band_spectrum,
    body_features,
    body_track,
    shoulder_heights,
    smooth_track,
)
from radnerf_cli.model.config import load_run_config
from radnerf_cli.model.torso import TorsoField, pose_to_euler_trans

sys.path.insert(0, str(Path(__file__).parent))
from small_model import SMALL_MODEL  # noqa: E402
from synthetic_scene import make_synthetic_subject  # noqa: E402


def _torso_layer(size: int = 96, dx: int = 0, dy: int = 0, seed: int = 0) -> np.ndarray:
    """An RGBA torso layer: a textured body with sloping shoulders, moved by (dx, dy) pixels."""
    rng = np.random.default_rng(seed)
    tex = rng.uniform(0, 255, (size // 4, size // 4, 3))
    tex = np.kron(tex, np.ones((4, 4, 1)))  # blocky texture: phase correlation has something to lock onto
    y, x = np.mgrid[0:size, 0:size]
    top = 0.55 * size + 0.15 * np.abs(x - size / 2)  # shoulders fall away from the neck
    alpha = (y >= top).astype(np.float64)
    rgba = np.concatenate([tex, 255 * alpha[..., None]], -1)
    rgba = np.roll(rgba, (dy, dx), axis=(0, 1))
    return rgba.round().astype(np.uint8)


def test_shoulder_heights_read_the_top_of_the_body_in_the_outer_columns():
    H, W = 100, 80
    alpha = np.zeros((H, W), bool)
    alpha[60:, :] = True
    alpha[40:, :10] = True  # the left edge starts higher
    h = shoulder_heights(alpha)
    assert h.shape == (2 * SHOULDER_COLUMNS,)
    assert h[0] == pytest.approx(0.40) and h[-1] == pytest.approx(0.60)
    alpha[:, -5:] = False  # no body in the last columns: reported as the bottom (1.0)
    assert shoulder_heights(alpha)[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("dx,dy", [(3, 0), (-5, 0), (0, 2), (4, -1)])
def test_band_shift_recovers_a_known_shift(dx, dy):
    ref = _torso_layer()
    moved = _torso_layer(dx=dx, dy=dy)
    s = band_shift(band_spectrum(moved), band_spectrum(ref))
    H = W = ref.shape[0]
    assert s[0] * W == pytest.approx(dx, abs=0.35)
    assert s[1] * H == pytest.approx(dy, abs=0.35)


def test_body_features_follow_the_body_and_ignore_the_frame_size():
    ref = _torso_layer(96)
    f0 = body_features(ref, band_spectrum(ref))
    assert f0.shape == (BODY_DIM,) and abs(f0[-2]) < 1e-3 and abs(f0[-1]) < 1e-3
    right = body_features(_torso_layer(96, dx=4), band_spectrum(ref))
    assert right[-2] == pytest.approx(4 / 96, abs=0.004)
    up = body_features(_torso_layer(96, dy=-3), band_spectrum(ref))
    assert (up[:-2] < f0[:-2]).mean() > 0.8  # the shoulders sit higher
    # the same body at half the size gives the same (size-relative) features, within a pixel
    half = lambda t: t.reshape(48, 2, 48, 2, 4).mean((1, 3)).round().astype(np.uint8)  # noqa: E731
    small = body_features(half(_torso_layer(96, dx=4)), band_spectrum(half(ref)))
    assert np.abs(small - right).max() < 1.5 / 48
    with pytest.raises(ValueError, match=r"\[H, W, 4\]"):
        body_features(ref[..., :3], band_spectrum(ref))
    assert body_track([], ref).shape == (0, BODY_DIM)


def test_smooth_track_is_the_truncated_moving_average():
    rng = np.random.default_rng(1)
    t = rng.normal(size=(9, BODY_DIM)).astype(np.float32)
    s = smooth_track(t, 3)
    assert s[0] == pytest.approx(t[:2].mean(0), abs=1e-5)
    assert s[4] == pytest.approx(t[3:6].mean(0), abs=1e-5)
    assert s[-1] == pytest.approx(t[-2:].mean(0), abs=1e-5)
    assert np.array_equal(smooth_track(t, 1), t)


def test_both_splits_measure_against_the_first_training_frame(tmp_path):
    root = make_synthetic_subject(tmp_path / "syn", n_frames=24, size=32, feature_dim=16)
    train, val = SubjectData(root, "train", feature="mel"), SubjectData(root, "val", feature="mel")
    every = SubjectData(root, "all", feature="mel")
    bt, bv, ba = train.body_pose(), val.body_pose(), every.body_pose()
    assert bt.shape == (len(train), BODY_DIM) and bv.shape == (len(val), BODY_DIM)
    assert bt[0, -2:].abs().max() < 1e-3  # the reference itself: no shift
    # "all" lists the training frames then the validation frames: the same numbers either way
    assert torch.allclose(ba, torch.cat([bt, bv]), atol=1e-6)
    # the synthetic torso drifts with the head's turn: the body pose is not constant
    assert bt[:, -2].std() > 1e-3


def _field(body: bool) -> TorsoField:
    cfg = load_run_config("fast", None, [*SMALL_MODEL, f"model.torso_body={str(body).lower()}"]).model
    torch.manual_seed(0)
    return TorsoField(cfg)


def test_the_torso_field_takes_the_standardised_body_pose():
    pose = torch.eye(4)[None]
    plain = _field(False)
    assert plain.body_dim == 0 and torch.equal(plain.condition(pose), pose_to_euler_trans(pose))
    f = _field(True)
    assert f.body_dim == BODY_DIM
    with pytest.raises(ValueError, match="body pose"):
        f.condition(pose)
    bodies = torch.randn(50, BODY_DIM) * 0.02 + 0.5
    f.fit_body(bodies)
    cond = f.condition(pose, bodies[:1])
    assert cond.shape == (1, 6 + BODY_DIM)
    z = f.condition(pose.expand(50, 4, 4), bodies)[:, 6:]
    assert z.mean(0).abs().max() < 1e-4 and (z.std(0, unbiased=False) - 1).abs().max() < 1e-3
    # the body pose reaches the output
    xy = torch.rand(64, 2) * 2 - 1
    a0, c0, _ = f(xy, f.condition(pose, bodies[:1]), torch.zeros(1, 8))
    a1, c1, _ = f(xy, f.condition(pose, bodies[1:2]), torch.zeros(1, 8))
    assert not torch.allclose(torch.cat([a0, c0], 1), torch.cat([a1, c1], 1))

"""Head pose fit on synthetic data: known 3D landmarks, known poses and focal, recovered."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from radnerf_cli.preprocess import landmarks, pose


def synthetic_face(n: int = 300, seed: int = 0) -> np.ndarray:
    """A head-sized 3D point set (metres, head frame): an ellipsoidal face cap with a nose."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1, 1, (n, 2))
    u = u[(u**2).sum(1) < 1]
    x, y = 0.075 * u[:, 0], 0.1 * u[:, 1]
    z = 0.09 * np.sqrt(np.clip(1 - u[:, 0] ** 2 - 0.5 * u[:, 1] ** 2, 0, 1)) + 0.03 * np.exp(-(u**2).sum(1) / 0.05)
    return np.stack([x, y, z], 1)


def random_rotations(n: int, max_deg: float, rng) -> np.ndarray:
    """Head rotations in OpenCV camera axes: the face looks at the camera, turned up to max_deg."""
    base = np.diag([1.0, -1.0, -1.0])  # head frame (y up, z to camera) -> OpenCV camera
    out = []
    for _ in range(n):
        rv = np.radians(rng.uniform(-max_deg, max_deg, 3))
        out.append(base @ cv2.Rodrigues(rv)[0])
    return np.stack(out)


def angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    c = (np.trace(Ra @ Rb.T) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))))


@pytest.mark.parametrize("focal", [700.0, 1100.0, 1600.0])
def test_known_poses_and_focal_are_recovered(focal):
    rng = np.random.default_rng(1)
    shape = synthetic_face()
    size = 512
    K = pose.intrinsics(focal, size / 2, size / 2)
    n = 60
    R = random_rotations(n, 20, rng)
    t = np.stack([rng.uniform(-0.05, 0.05, n), rng.uniform(-0.05, 0.05, n), rng.uniform(0.7, 0.9, n)], 1)
    uv = np.stack([pose.project(shape, R[i], t[i], K) for i in range(n)])
    uv += rng.normal(0, 0.3, uv.shape)  # sub-pixel detector noise
    res = pose.estimate(uv, lambda f: shape, size, np.ones(n, bool), 0.8, 6.0, 40, sigma=0.0, prior_distance=0.8)
    assert res.focal_curve["observable"] is True
    assert abs(res.focal / focal - 1) < 0.05, f"focal {res.focal:.1f} vs {focal}"
    errs = [angle_deg(res.R_raw[i], R[i]) for i in range(n)]
    assert max(errs) < 1.0, f"rotation error up to {max(errs):.2f} deg"
    assert np.abs(res.t_raw - t).max() < 0.05
    assert res.err_px.mean() < 1.0


def test_camera_to_world_convention():
    """Frontal head 0.8 m in front: RAD-NeRF's pose is the identity rotation, camera at +z 0.8."""
    R = np.diag([1.0, -1.0, -1.0])[None]
    t = np.array([[0.0, 0.0, 0.8]])
    c2w = pose.to_camera_to_world(R, t)
    assert np.allclose(c2w[0], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0.8], [0, 0, 0, 1]])
    # round trip with a general pose, and the camera centre is where the head frame sees it
    rng = np.random.default_rng(3)
    R = random_rotations(5, 30, rng)
    t = rng.normal(0, 0.1, (5, 3)) + [0, 0, 0.8]
    c2w = pose.to_camera_to_world(R, t)
    R2, t2 = pose.from_camera_to_world(c2w)
    assert np.allclose(R2, R) and np.allclose(t2, t)
    for i in range(5):
        centre = -R[i].T @ t[i]
        assert np.allclose(c2w[i, :3, 3], centre)
    # head turned to its left (towards the image right) = positive yaw about +y
    yaw = np.diag([1.0, -1.0, -1.0]) @ cv2.Rodrigues(np.array([0, np.radians(10), 0]))[0]
    assert np.allclose(pose.euler_deg(yaw[None])[0], [0, 10, 0], atol=1e-6)


def test_smoothing_is_zero_lag_and_cuts_noise():
    rng = np.random.default_rng(0)
    tt = np.arange(200)
    clean = 3 * np.sin(2 * np.pi * tt / 50)  # degrees, 0.5 Hz at 25 fps
    noisy = clean + rng.normal(0, 0.5, len(tt))
    sm = pose.smooth_series(noisy[:, None], 1.5)[:, 0]
    assert np.abs(sm - clean).std() < 0.5 * np.abs(noisy - clean).std()
    lag = np.argmax([np.dot(clean[10:-10], sm[10 + d : len(sm) - 10 + d]) for d in range(-5, 6)]) - 5
    assert lag == 0
    Rs = np.stack([cv2.Rodrigues(np.radians([0.0, a, 0.0]))[0] for a in noisy])
    Rsm, _ = pose.smooth_poses(Rs, np.zeros((len(Rs), 3)), 1.5)
    assert pose.jitter_deg(Rsm) < 0.3 * pose.jitter_deg(Rs)
    assert np.allclose(np.linalg.det(Rsm), 1)


def test_unobservable_focal_falls_back_to_prior_distance():
    """With a flat shape and tiny rotations the focal is not determined: the camera goes to the prior."""
    rng = np.random.default_rng(2)
    shape = synthetic_face()
    shape[:, 2] = 0.09  # a plane: no perspective cue at all
    n, size, focal = 30, 512, 1200.0
    K = pose.intrinsics(focal, 256, 256)
    R = np.tile(np.diag([1.0, -1.0, -1.0]), (n, 1, 1))
    t = np.tile([0.0, 0.0, 0.8], (n, 1))
    uv = np.stack([pose.project(shape, R[i], t[i], K) for i in range(n)]) + rng.normal(0, 0.3, (n, len(shape), 2))
    res = pose.estimate(uv, lambda f: shape, size, np.ones(n, bool), 0.8, 6.0, 20, 1.5, prior_distance=1.0)
    assert res.focal_curve["observable"] is False
    assert abs(np.median(np.linalg.norm(res.t, axis=1)) - 1.0) < 0.01


def test_ibug_table_is_a_valid_subset():
    idx = landmarks.MESH_TO_IBUG68
    assert len(idx) == 68 and len(set(idx.tolist())) == 68
    assert idx.min() >= 0 and idx.max() < landmarks.N_MESH
    assert idx[8] == 152 and idx[30] == 4 and idx[36] == 33 and idx[45] == 263


def test_dropouts_short_gaps_interpolated_long_gaps_left_out():
    n = 400
    mesh = np.zeros((n, 468, 3), np.float32)
    mesh[:, :, 0] = np.arange(n)[:, None]
    found = np.ones(n, bool)
    found[100:105] = False  # 0.2 s: interpolated
    found[200:213] = False  # 0.52 s: too long to invent, left out of training
    filled, usable, rep = landmarks.fill_dropouts(mesh, found, 25, 0.5, 0.05, "clip.mp4")
    assert rep.interpolated == [(100, 104)] and rep.dropped == [(200, 212)]
    assert np.allclose(filled[100:105, 0, 0], np.arange(100, 105))
    assert usable[100:105].all() and not usable[200:213].any()
    found[300:320] = False  # now 38 of 400 frames (9.5 %) have no face
    with pytest.raises(landmarks.InputError, match=r"clip.mp4: no face in 38 of 400 frames .*100-104, 200-212, 300-319"):
        landmarks.fill_dropouts(mesh, found, 25, 0.5, 0.05, "clip.mp4")


def test_eye_ratio_is_the_eye_polygon_area():
    lms = np.zeros((1, 68, 2))
    sq = np.array([[0, 0], [10, 0], [10, 0], [10, 5], [0, 5], [0, 5]], float)  # a 10x5 rectangle, 6 points
    lms[0, 36:42] = sq
    lms[0, 42:48] = sq + 50
    assert np.isclose(landmarks.eye_ratio(lms, 100, 100)[0], 100 * 2 * 50 / 10000)


def test_edited_cuts_are_found_and_never_smoothed_across():
    rng = np.random.default_rng(4)
    n = 120
    yaw = rng.normal(0, 0.3, n)
    yaw[60:] += 6.0  # the shot changes at frame 60: the head jumps by 6 degrees
    R = np.stack([cv2.Rodrigues(np.radians([0.0, a, 0.0]))[0] for a in yaw])
    t = np.tile([0.0, 0.0, 0.8], (n, 1))
    cuts = pose.find_cuts(R, t)
    assert cuts.tolist() == [60]
    Rs, _ = pose.smooth_poses(R, t, 1.5, cuts)
    ys = pose.euler_deg(np.diag([1.0, -1.0, -1.0]) @ Rs)[:, 1]
    assert abs(ys[59]) < 1.0 and abs(ys[60] - 6.0) < 1.0  # both sides keep their level up to the cut


def _euler_track(base_deg: float, n: int = 200, amp_deg: float = 5.0, noise_deg: float = 0.0, seed: int = 0):
    """Rotations about x by base + a slow sine (+ noise) and a small yaw wobble: [n, 3, 3]."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = base_deg + amp_deg * np.sin(2 * np.pi * t / 50) + noise_deg * rng.standard_normal(n)
    y = 3.0 * np.sin(2 * np.pi * t / 80)
    return Rotation.from_euler("xyz", np.stack([x, y, np.zeros(n)], 1), degrees=True).as_matrix()


def test_jitter_of_a_track_crossing_180_degrees():
    """A face looking at an OpenCV camera sits near 180 deg about x: the Euler angle crosses +-180."""
    from scipy.spatial.transform import Rotation

    R180 = _euler_track(180.0)
    ex = Rotation.from_matrix(R180).as_euler("xyz", degrees=True)[:, 0]
    assert ex.max() > 170 and ex.min() < -170  # the track really wraps
    smooth = pose.jitter_deg(R180)
    # a 5-degree, 50-frame sine has a second difference of at most 5 * (2 pi / 50)^2 = 0.08 deg
    assert smooth < 0.15, smooth
    assert smooth == pytest.approx(pose.jitter_deg(_euler_track(0.0)), abs=0.02)
    # i.i.d. noise of sigma on one axis: the second difference has RMS sqrt(6) sigma
    noisy = pose.jitter_deg(_euler_track(180.0, noise_deg=0.5, n=2000))
    assert noisy == pytest.approx(np.sqrt(6) * 0.5, rel=0.1), noisy
    assert noisy == pytest.approx(pose.jitter_deg(_euler_track(0.0, noise_deg=0.5, n=2000)), rel=0.02)

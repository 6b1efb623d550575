"""A small synthetic subject in RAD-NeRF's dataset format, rendered analytically, for tests.

The "head" is an ellipsoid at the origin with a procedural, lit texture: skin pattern, two eyes and a
mouth whose dark opening follows a scalar *openness* signal. The same signal drives the audio
features (``aud_mel.npy``) and the loudness of ``aud.wav``, so a model can learn audio -> mouth.
Cameras look at the origin from about one unit away with smooth yaw/pitch/roll (like a real video's
head motion); images, landmarks, parsing and torso layers are all exact by construction.

    root = make_synthetic_subject(tmp_path / "syn")          # 60 frames of 64x64, < 1 s

Everything is deterministic for a given ``seed``. Coordinates: the json's raw (OpenGL/NeRF)
convention, camera looks along its -z, y up; pixel centres at (col + 0.5, row + 0.5).
"""

from __future__ import annotations

import json
import math
import wave
from pathlib import Path

import cv2
import numpy as np

HEAD_AXES = np.array([0.10, 0.13, 0.09])  # ellipsoid semi-axes (x, y, z) in raw units, centred at 0
FOCAL_PER_PIXEL = 2.4  # focal length in pixels divided by the image size
CAMERA_DISTANCE = 1.0  # mean camera distance from the origin (raw units)
FPS = 25  # video frame rate
SAMPLE_RATE = 16000  # aud.wav sample rate
MOUTH_CENTER = (0.0, -0.45)  # mouth centre in (u, v) = (x / ax, y / ay) surface coordinates
MOUTH_RX = (0.36, 0.26)  # outer (lips) and inner (opening) half-widths in u
EYE_CENTERS = ((-0.36, 0.28), (0.36, 0.28))  # image-left and image-right eye centres in (u, v)
EYE_RADII = (0.14, 0.06)  # eye half-width and half-height in (u, v)
BACKGROUND_VALUE_RANGE = (0.25, 0.75)  # bc.jpg is a smooth gradient inside this range


def openness(t: np.ndarray, seed: int = 0) -> np.ndarray:
    """Mouth openness in [0, 1] at times ``t`` (seconds): smooth, with closed stretches."""
    rng = np.random.default_rng(seed + 1000)
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    o = 0.45 + 0.75 * np.sin(2 * np.pi * 1.15 * t + p1) * np.cos(2 * np.pi * 0.29 * t + p2)
    return np.clip(o, 0.0, 1.0)


def mouth_heights(o: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Outer (lips) and inner (dark opening) half-heights in v for openness ``o``."""
    o = np.asarray(o, dtype=np.float64)
    return 0.06 + 0.16 * o, 0.012 + 0.17 * o


def camera_poses(n: int, seed: int = 0) -> np.ndarray:
    """[n, 4, 4] camera-to-world matrices (raw convention) looking at the origin."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FPS
    ph = rng.uniform(0, 2 * np.pi, 6)
    yaw = np.radians(14) * np.sin(2 * np.pi * 0.23 * t + ph[0])
    pitch = np.radians(7) * np.sin(2 * np.pi * 0.31 * t + ph[1])
    roll = np.radians(4) * np.sin(2 * np.pi * 0.17 * t + ph[2])
    dist = CAMERA_DISTANCE + 0.04 * np.sin(2 * np.pi * 0.13 * t + ph[3])
    shift = 0.01 * np.stack([np.sin(2 * np.pi * 0.19 * t + ph[4]), np.sin(2 * np.pi * 0.27 * t + ph[5])], -1)
    poses = np.zeros((n, 4, 4))
    for i in range(n):
        cy, sy = math.cos(yaw[i]), math.sin(yaw[i])
        cp, sp = math.cos(pitch[i]), math.sin(pitch[i])
        cr, sr = math.cos(roll[i]), math.sin(roll[i])
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
        r = ry @ rx @ rz
        poses[i, :3, :3] = r
        poses[i, :3, 3] = r @ np.array([shift[i, 0], shift[i, 1], dist[i]])
        poses[i, 3, 3] = 1.0
    return poses


def _surface_point(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Front-facing ellipsoid surface point [.., 3] for surface coordinates (u, v)."""
    w = np.sqrt(np.clip(1.0 - u**2 - v**2, 0.0, None))
    return np.stack([u, v, w], -1) * HEAD_AXES


def _ellipse(center, rx, ry, angles_deg) -> np.ndarray:
    a = np.radians(np.asarray(angles_deg, dtype=np.float64))
    return np.stack([center[0] + rx * np.cos(a), center[1] + ry * np.sin(a)], -1)


def landmarks_uv(o: float) -> np.ndarray:
    """iBUG-68 landmarks in surface coordinates (u, v), v up, for mouth openness ``o``. [68, 2]."""
    k = np.arange(17)
    jaw = np.stack([-0.9 * np.cos(np.pi * k / 16), 0.12 - 0.97 * np.sin(np.pi * k / 16)], -1)
    brow_l = np.stack([np.linspace(-0.62, -0.16, 5), 0.5 + 0.05 * np.sin(np.linspace(0, np.pi, 5))], -1)
    brow_r = np.stack([np.linspace(0.16, 0.62, 5), 0.5 + 0.05 * np.sin(np.linspace(0, np.pi, 5))], -1)
    bridge = np.stack([np.zeros(4), np.linspace(0.3, 0.0, 4)], -1)
    nose = np.stack([np.linspace(-0.14, 0.14, 5), np.full(5, -0.13)], -1)
    eye_angles = [180, 120, 60, 0, -60, -120]
    eye_l = _ellipse(EYE_CENTERS[0], *EYE_RADII, eye_angles)
    eye_r = _ellipse(EYE_CENTERS[1], *EYE_RADII, eye_angles)
    h_out, h_in = mouth_heights(o)
    outer = _ellipse(MOUTH_CENTER, MOUTH_RX[0], float(h_out), [180, 150, 120, 90, 60, 30, 0, -30, -60, -90, -120, -150])
    inner = _ellipse(MOUTH_CENTER, MOUTH_RX[1], float(h_in), [180, 135, 90, 45, 0, -45, -90, -135])
    return np.concatenate([jaw, brow_l, brow_r, bridge, nose, eye_l, eye_r, outer, inner], 0)


def project(points: np.ndarray, c2w: np.ndarray, focal: float, cx: float, cy: float) -> np.ndarray:
    """Raw-convention world points [.., 3] -> pixel (x, y) [.., 2] (x = column, y = row)."""
    r, t = c2w[:3, :3], c2w[:3, 3]
    pc = (points - t) @ r  # world -> camera: R^T (p - t)
    z = -pc[..., 2]
    return np.stack([focal * pc[..., 0] / z + cx, -focal * pc[..., 1] / z + cy], -1)


def _texture(u: np.ndarray, v: np.ndarray, o: float) -> np.ndarray:
    """Albedo [.., 3] at surface coordinates (u, v) for mouth openness ``o``."""
    pattern = 0.88 + 0.12 * np.sin(9 * u) * np.sin(11 * v) + 0.05 * np.cos(23 * u + 7 * v)
    rgb = np.stack([0.86 * pattern, 0.64 * pattern, 0.50 * pattern], -1)
    for ex, ey in EYE_CENTERS:
        d = ((u - ex) / EYE_RADII[0]) ** 2 + ((v - ey) / EYE_RADII[1]) ** 2
        rgb[d < 1] = (0.95, 0.95, 0.92)
        pupil = ((u - ex) / (0.45 * EYE_RADII[0])) ** 2 + ((v - ey) / EYE_RADII[1]) ** 2
        rgb[pupil < 1] = (0.10, 0.12, 0.20)
    brow = (np.abs(v - 0.5) < 0.04) & (np.abs(np.abs(u) - 0.39) < 0.23)
    rgb[brow] = (0.30, 0.20, 0.15)
    h_out, h_in = mouth_heights(o)
    mu, mv = u - MOUTH_CENTER[0], v - MOUTH_CENTER[1]
    rgb[(mu / MOUTH_RX[0]) ** 2 + (mv / h_out) ** 2 < 1] = (0.72, 0.22, 0.24)
    rgb[(mu / MOUTH_RX[1]) ** 2 + (mv / h_in) ** 2 < 1] = (0.18, 0.03, 0.05)
    return rgb


def render_head(c2w: np.ndarray, size: int, o: float, ss: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Render the head: (rgb [H, W, 3] float, coverage [H, W] float in [0, 1]), ``ss``^2 samples/pixel."""
    focal, c = FOCAL_PER_PIXEL * size, size / 2
    n = size * ss
    g = (np.arange(n) + 0.5) / ss  # sub-pixel centres in pixel units
    px, py = np.meshgrid(g, g)  # px: column, py: row
    d_cam = np.stack([(px - c) / focal, -(py - c) / focal, -np.ones_like(px)], -1)
    d = d_cam @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    o_w = c2w[:3, 3]
    # ray-ellipsoid: |(o + t d) / axes|^2 = 1
    oa, da = o_w / HEAD_AXES, d / HEAD_AXES
    a = (da * da).sum(-1)
    b = 2 * (da * oa).sum(-1)
    cc = (oa * oa).sum() - 1
    disc = b * b - 4 * a * cc
    hit = disc > 0
    t = (-b - np.sqrt(np.where(hit, disc, 0))) / (2 * a)
    p = o_w + t[..., None] * d
    q = p / HEAD_AXES
    u, v = q[..., 0], q[..., 1]
    albedo = _texture(u, v, o)
    normal = q / HEAD_AXES
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-12
    light = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
    shade = 0.35 + 0.65 * np.clip((normal * light).sum(-1), 0, 1)
    rgb = albedo * shade[..., None] * hit[..., None]
    rgb = rgb.reshape(size, ss, size, ss, 3).mean((1, 3))
    cover = hit.astype(np.float64).reshape(size, ss, size, ss).mean((1, 3))
    return rgb, cover


def _background(size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    lo, hi = BACKGROUND_VALUE_RANGE
    r = lo + (hi - lo) * (0.3 + 0.5 * x)
    g = lo + (hi - lo) * (0.5 + 0.3 * np.sin(3 * y))
    b = lo + (hi - lo) * (0.8 - 0.5 * y * x)
    return np.stack([r, g, b], -1)


def _torso(size: int, yaw_shift: float) -> tuple[np.ndarray, np.ndarray]:
    """A torso block at the bottom of the frame: (rgb [H, W, 3], alpha [H, W])."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    top = 0.80 * size
    half = 0.22 * size + 0.6 * np.clip(y - top, 0, None)  # widening towards the bottom (shoulders)
    cxp = size / 2 + yaw_shift
    alpha = ((y > top) & (np.abs(x - cxp) < half)).astype(np.float64)
    stripes = 0.9 + 0.1 * np.sin(y * 1.3)
    rgb = np.stack([0.20 * stripes, 0.28 * stripes, 0.55 * stripes], -1)
    return rgb, alpha


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def _write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def audio_features(n_frames: int, feature_dim: int, seed: int = 0) -> np.ndarray:
    """[n_frames, 16, C] windows of 50 Hz rows encoding the openness (RAD-NeRF's layout:
    frame i <- rows 2i-8 ... 2i+7, zeros outside)."""
    rng = np.random.default_rng(seed + 2000)
    m = 2 * n_frames
    rows_o = openness(np.arange(m) / 50.0, seed)
    w = rng.normal(0, 1, feature_dim)
    bias = rng.normal(0, 0.3, feature_dim)
    rows = rows_o[:, None] * w[None] + bias[None] + rng.normal(0, 0.02, (m, feature_dim))
    padded = np.zeros((m + 16 + 2, feature_dim))
    padded[8 : 8 + m] = rows
    idx = 2 * np.arange(n_frames)[:, None] + np.arange(16)[None]
    return padded[idx].astype(np.float32)


def make_synthetic_subject(root: Path, n_frames: int = 60, size: int = 64, feature_dim: int = 16, seed: int = 0) -> Path:
    """Write a RAD-NeRF-format subject folder at ``root`` and return ``root``.

    Layout: ori_imgs/{i}.jpg + .lms, gt_imgs/{i}.jpg, torso_imgs/{i}.png, parsing/{i}.png, bc.jpg,
    aud.wav, aud_mel.npy [n_frames, 16, feature_dim], transforms_train.json / transforms_val.json
    (last n_frames // 11 frames are val, at least one).
    """
    if size % 2:
        raise ValueError("size must be even")
    root = Path(root)
    for sub in ("ori_imgs", "gt_imgs", "torso_imgs", "parsing"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    focal, c = FOCAL_PER_PIXEL * size, size / 2
    poses = camera_poses(n_frames, seed)
    o_frames = openness(np.arange(n_frames) / FPS, seed)
    bg = _background(size)
    cv2.imwrite(str(root / "bc.jpg"), cv2.cvtColor(_to_u8(bg), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])

    frames = []
    for i in range(n_frames):
        c2w = poses[i]
        head_rgb, cover = render_head(c2w, size, float(o_frames[i]))
        yaw_shift = -focal * c2w[0, 2] * 0.25  # the torso drifts a little with the head turn
        torso_rgb, torso_a = _torso(size, yaw_shift)
        torso_a = torso_a * (1 - cover)  # head removed from the torso layer
        comp = bg * (1 - torso_a[..., None]) + torso_rgb * torso_a[..., None]
        comp = comp * (1 - cover[..., None]) + head_rgb  # head_rgb is already premultiplied by coverage
        img = cv2.cvtColor(_to_u8(comp), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(root / "ori_imgs" / f"{i}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(root / "gt_imgs" / f"{i}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        torso_rgba = np.concatenate([torso_rgb * torso_a[..., None], torso_a[..., None]], -1)
        cv2.imwrite(str(root / "torso_imgs" / f"{i}.png"), cv2.cvtColor(_to_u8(torso_rgba), cv2.COLOR_RGBA2BGRA))
        parsing = np.full((size, size, 3), 255, np.uint8)
        parsing[torso_a > 0.5] = (255, 0, 0)  # RGB as stored: torso red, head blue (RAD-NeRF's files)
        parsing[cover > 0.5] = (0, 0, 255)
        cv2.imwrite(str(root / "parsing" / f"{i}.png"), cv2.cvtColor(parsing, cv2.COLOR_RGB2BGR))
        uv = landmarks_uv(float(o_frames[i]))
        lms = project(_surface_point(uv[:, 0], uv[:, 1]), c2w, focal, c, c)
        np.savetxt(root / "ori_imgs" / f"{i}.lms", lms, "%f")
        frames.append({"img_id": i, "aud_id": i, "transform_matrix": c2w.tolist()})

    n_val = max(1, n_frames // 11)
    for split, part in (("train", frames[:-n_val]), ("val", frames[-n_val:])):
        meta = {"focal_len": focal, "cx": c, "cy": c, "frames": part}
        (root / f"transforms_{split}.json").write_text(json.dumps(meta, indent=1))

    np.save(root / "aud_mel.npy", audio_features(n_frames, feature_dim, seed))
    ts = np.arange(int(n_frames * SAMPLE_RATE / FPS)) / SAMPLE_RATE
    env = openness(ts, seed)
    carrier = np.sin(2 * np.pi * 180 * ts) + 0.5 * np.sin(2 * np.pi * 530 * ts)
    _write_wav(root / "aud.wav", 0.4 * env * carrier)
    return root

"""Head pose from the mesh landmarks: a rigid fit to the subject's own reference shape.

1. Reference shape: every frame's 3D mesh (mediapipe's x, y in pixels, z in the same scale) is
   aligned to the others by similarity Procrustes and averaged; the result is put in a head frame
   (x along the eye corners towards the image right, y up, z towards the camera) and scaled to
   metres by the outer eye-corner distance. The origin sits ``head_depth_m`` behind the face.
2. Focal length: for each candidate focal, PnP (OpenCV) on sampled frames; the focal with the
   smallest median reprojection error wins (log grid, then golden-section refinement).
3. Per-frame PnP with that focal, then zero-lag smoothing (a symmetric Gaussian over time) of
   rotation and translation.
4. RAD-NeRF's convention: ``transform_matrix`` is the camera-to-head 4x4 pose, OpenGL camera
   (x right, y up, looking along -z); the head is at the origin and the camera ~1 unit away.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from radnerf_cli.preprocess.landmarks import FACE_OVAL

GL_FROM_CV = np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes (x right, y down, z forward) -> OpenGL

RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # mesh indices (subject's right eye is on the image left)
SUBNASALE = 2  # mesh index of the nose base
# the eyelid rings (they move with blinks)
EYELIDS = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246,
           263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]


def rigid_points(shape: np.ndarray) -> np.ndarray:
    """Mesh indices that move with the skull: above the nose base, eyelids excluded. shape: [468, 3]."""
    keep = shape[:, 1] > shape[SUBNASALE, 1]
    keep[EYELIDS] = False
    return np.flatnonzero(keep)


def _procrustes(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) with s * R @ src_i + t ~= dst_i. src, dst: [K, 3]."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    D = np.diag([1.0, 1.0, d])
    R = u @ D @ vt
    s = float((sig * np.diag(D)).sum() / (a**2).sum())
    return s, R, md - s * R @ ms


def reference_shape(mesh: np.ndarray, usable: np.ndarray, eye_distance_m: float, head_depth_m: float,
                    max_frames: int = 400, align: np.ndarray | None = None) -> np.ndarray:
    """The subject's reference shape in metres, head frame. mesh: [N, 468, 3] pixels -> [468, 3].

    ``align``: indices used for the frame-to-frame alignment (default all; the rigid ones are best).
    """
    idx = np.flatnonzero(usable)
    idx = idx[np.linspace(0, len(idx) - 1, min(max_frames, len(idx))).astype(int)]
    # image axes (x right, y down, z away) -> head-like axes (x right, y up, z towards camera)
    pts = mesh[idx].astype(np.float64) * np.array([1.0, -1.0, -1.0])
    ref = pts[len(pts) // 2]
    a = slice(None) if align is None else align
    for _ in range(3):
        aligned = []
        for p in pts:
            s, R, t = _procrustes(p[a], ref[a])
            aligned.append(s * p @ R.T + t)
        ref = np.median(np.stack(aligned), axis=0)
    # canonical axes from the shape itself, so a frontal face has the identity rotation: z is the
    # normal of the plane through the face oval (towards the camera), x follows the eye corners
    oval = ref[FACE_OVAL] - ref[FACE_OVAL].mean(0)
    z = np.linalg.svd(oval)[2][2]
    z = z if z[2] > 0 else -z
    x = ref[LEFT_EYE_OUTER] - ref[RIGHT_EYE_OUTER]
    x -= z * (x @ z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])  # rows: new axes
    shape = (ref - ref.mean(0)) @ R.T
    shape *= eye_distance_m / np.linalg.norm(shape[LEFT_EYE_OUTER] - shape[RIGHT_EYE_OUTER])
    shape[:, 2] += head_depth_m  # origin inside the head, behind the face surface
    return shape


def intrinsics(focal: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1]], dtype=np.float64)


def solve_pose(shape: np.ndarray, uv: np.ndarray, K: np.ndarray, guess: tuple | None = None):
    """PnP of one frame: shape [K, 3] metres, uv [K, 2] pixels -> (rvec [3], tvec [3]) in OpenCV axes."""
    shape = np.ascontiguousarray(shape, dtype=np.float64)
    uv = np.ascontiguousarray(uv, dtype=np.float64)
    if guess is None:
        ok, rvec, tvec = cv2.solvePnP(shape, uv, K, None, flags=cv2.SOLVEPNP_SQPNP)
    else:
        ok, rvec, tvec = cv2.solvePnP(shape, uv, K, None, guess[0].reshape(3, 1).copy(), guess[1].reshape(3, 1).copy(),
                                      useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    return rvec.reshape(3), tvec.reshape(3)


def project(shape: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray) -> np.ndarray:
    """OpenCV projection: shape [K, 3], R [3, 3], t [3] -> uv [K, 2]."""
    p = shape @ R.T + t
    p = p @ K.T
    return p[:, :2] / p[:, 2:3]


def reprojection_error(shape, uv, rvec, tvec, K) -> float:
    """Mean landmark distance in pixels."""
    R = cv2.Rodrigues(rvec)[0]
    return float(np.linalg.norm(project(shape, R, tvec, K) - uv, axis=1).mean())


def unproject_mesh(mesh: np.ndarray, focal: float, cx: float, cy: float) -> np.ndarray:
    """Undo the perspective in mediapipe's points for a given focal. [N, K, 3] -> [N, K, 3].

    Mediapipe's x, y are image positions and z a depth in x's pixel scale at the face; in those
    units the camera is ``focal`` away, so a point at depth z was magnified by focal / (focal + z).
    """
    out = mesh.astype(np.float64).copy()
    g = (focal + out[..., 2]) / focal
    out[..., 0] = (out[..., 0] - cx) * g + cx
    out[..., 1] = (out[..., 1] - cy) * g + cy
    return out


def search_focal(shape_fn, uv: np.ndarray, cx: float, cy: float, f_min: float, f_max: float,
                 flat_tol: float = 0.1) -> tuple[float | None, dict]:
    """Focal length (pixels) minimising the median reprojection error over frames. uv: [F, K, 2].

    ``shape_fn(focal) -> [K, 3]`` gives the reference shape for a focal. Returns None for the focal
    when the error hardly changes over the range (the clip does not determine it).
    """

    def cost(f: float) -> float:
        K = intrinsics(f, cx, cy)
        shape = shape_fn(f)
        errs = []
        for u in uv:
            r, t = solve_pose(shape, u, K)
            errs.append(reprojection_error(shape, u, r, t, K))
        return float(np.median(errs))

    grid = np.geomspace(f_min, f_max, 13)
    costs = np.array([cost(f) for f in grid])
    curve = {"grid": grid.tolist(), "costs": costs.tolist()}
    i = int(np.argmin(costs))
    if (costs.max() - costs.min()) < flat_tol * costs.min():
        curve["observable"] = False
        return None, curve
    lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, len(grid) - 1)])
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    ca, cb = cost(np.exp(a)), cost(np.exp(b))
    for _ in range(12):
        if ca < cb:
            hi, b, cb = b, a, ca
            a = hi - g * (hi - lo)
            ca = cost(np.exp(a))
        else:
            lo, a, ca = a, b, cb
            b = lo + g * (hi - lo)
            cb = cost(np.exp(b))
    curve["observable"] = True
    return float(np.exp((lo + hi) / 2)), curve


def fit_poses(shape: np.ndarray, uv: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame PnP, each warm-started from the previous. uv: [N, K, 2] -> R [N,3,3], t [N,3], err [N]."""
    n = len(uv)
    Rs, ts, errs = np.zeros((n, 3, 3)), np.zeros((n, 3)), np.zeros(n)
    guess = None
    for i in range(n):
        r, t = solve_pose(shape, uv[i], K, guess)
        if t[2] <= 0:  # a bad warm start can flip behind the camera; restart from scratch
            r, t = solve_pose(shape, uv[i], K)
        guess = (r, t)
        Rs[i], ts[i] = cv2.Rodrigues(r)[0], t
        errs[i] = reprojection_error(shape, uv[i], r, t, K)
    return Rs, ts, errs


def _gauss_kernel(sigma: float) -> np.ndarray:
    r = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return k / k.sum()


def smooth_series(x: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-lag (symmetric) Gaussian smoothing along axis 0 with edge reflection. x: [N, ...]."""
    if sigma <= 0 or len(x) < 3:
        return x.copy()
    k = _gauss_kernel(sigma)
    r = len(k) // 2
    pad = np.concatenate([x[1 : r + 1][::-1], x, x[-r - 1 : -1][::-1]], axis=0) if len(x) > r + 1 else np.pad(
        x, [(r, r)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    flat = pad.reshape(len(pad), -1)
    out = np.stack([np.convolve(flat[:, j], k, mode="valid") for j in range(flat.shape[1])], axis=1)
    return out.reshape(x.shape)


def orthonormalize(R: np.ndarray) -> np.ndarray:
    """Nearest rotations to [N, 3, 3] matrices."""
    u, _, vt = np.linalg.svd(R)
    d = np.sign(np.linalg.det(u @ vt))
    u[:, :, 2] *= d[:, None]
    return u @ vt


def find_cuts(R: np.ndarray, t: np.ndarray, min_deg: float = 2.0, min_m: float = 0.008, factor: float = 8.0) -> np.ndarray:
    """Frames where the head jumps (edited cuts): the rotation or position step between two frames
    exceeds ``factor`` times the clip's median step and an absolute floor. Returns the first frame
    index of each new segment, sorted. R [N,3,3], t [N,3]."""
    if len(R) < 3:
        return np.zeros(0, dtype=int)
    rs = rotation_steps_deg(R)
    ts = np.linalg.norm(np.diff(t, axis=0), axis=1)
    jump = (rs > max(min_deg, factor * np.median(rs))) | (ts > max(min_m, factor * np.median(ts)))
    return np.flatnonzero(jump) + 1


def segments(n: int, cuts: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, end) ranges between cuts."""
    b = [0, *[int(c) for c in cuts], n]
    return [(b[k], b[k + 1]) for k in range(len(b) - 1) if b[k + 1] > b[k]]


def smooth_poses(R: np.ndarray, t: np.ndarray, sigma: float, cuts: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Smooth rotations (as matrices, re-orthonormalised) and translations, never across a cut.

    R [N,3,3], t [N,3]; ``cuts`` as from :func:`find_cuts`.
    """
    R_out, t_out = R.copy(), t.copy()
    for a, b in segments(len(R), np.zeros(0, int) if cuts is None else cuts):
        R_out[a:b] = orthonormalize(smooth_series(R[a:b], sigma))
        t_out[a:b] = smooth_series(t[a:b], sigma)
    return R_out, t_out


def rotation_steps_deg(R: np.ndarray) -> np.ndarray:
    """Angle between consecutive rotations, degrees. [N, 3, 3] -> [N-1]."""
    rel = np.einsum("nij,nkj->nik", R[1:], R[:-1])
    c = np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)
    return np.degrees(np.arccos(c))


def jitter_deg(R: np.ndarray, cuts: np.ndarray | None = None) -> float:
    """Rotation jitter: RMS of the second difference of the per-frame rotation, degrees.

    Smooth head motion has a small second difference; frame-to-frame noise a large one. Second
    differences that straddle a cut are left out.

    The differences are taken between rotations, never between angles: the frame-to-frame rotation
    ``R[i+1] R[i]^T`` is small, so its axis-angle vector has no wrap-around, and the jitter is the
    change of that vector from one frame to the next. (Differencing the per-frame axis-angle vectors
    or Euler angles directly jumps by up to 360 degrees where a track crosses +-180, as an OpenCV
    head-to-camera rotation of a face looking at the camera does, about 180 degrees around x.)
    """
    acc = []
    for a, b in segments(len(R), np.zeros(0, int) if cuts is None else cuts):
        if b - a < 3:
            continue
        rel = R[a + 1 : b] @ np.swapaxes(R[a : b - 1], 1, 2)  # [M-1, 3, 3] frame-to-frame rotations
        w = np.stack([cv2.Rodrigues(np.ascontiguousarray(r, dtype=np.float64))[0].reshape(3) for r in rel])
        acc.append(w[1:] - w[:-1])
    if not acc:
        return 0.0
    acc = np.concatenate(acc)
    return float(np.degrees(np.sqrt((acc**2).sum(1).mean())))


def to_camera_to_world(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """OpenCV head-to-camera (R [N,3,3], t [N,3]) -> RAD-NeRF camera-to-world 4x4 [N, 4, 4] (OpenGL)."""
    Rg = GL_FROM_CV @ R  # head -> OpenGL camera
    tg = t @ GL_FROM_CV.T
    out = np.tile(np.eye(4), (len(R), 1, 1))
    out[:, :3, :3] = np.transpose(Rg, (0, 2, 1))
    out[:, :3, 3] = -np.einsum("nji,nj->ni", Rg, tg)
    return out


def from_camera_to_world(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`to_camera_to_world`: [N, 4, 4] -> OpenCV (R [N,3,3], t [N,3])."""
    Rg = np.transpose(c2w[:, :3, :3], (0, 2, 1))
    tg = -np.einsum("nij,nj->ni", Rg, c2w[:, :3, 3])
    return GL_FROM_CV @ Rg, tg @ GL_FROM_CV.T


def euler_deg(R: np.ndarray) -> np.ndarray:
    """Head rotation as (pitch, yaw, roll) degrees, x-y-z order. [N, 3, 3] -> [N, 3]."""
    Rg = GL_FROM_CV @ R  # the head rotation seen in OpenGL camera axes (identity when frontal)
    pitch = np.arctan2(Rg[:, 2, 1], Rg[:, 2, 2])
    yaw = np.arcsin(np.clip(-Rg[:, 2, 0], -1, 1))
    roll = np.arctan2(Rg[:, 1, 0], Rg[:, 0, 0])
    return np.degrees(np.stack([pitch, yaw, roll], 1))


@dataclass
class PoseResult:
    """Head poses of a clip."""

    focal: float  # pixels
    shape: np.ndarray  # [K, 3] reference shape, metres, head frame
    R: np.ndarray  # [N, 3, 3] smoothed head-to-camera rotations (OpenCV axes)
    t: np.ndarray  # [N, 3] smoothed translations, metres
    R_raw: np.ndarray  # [N, 3, 3] before smoothing
    t_raw: np.ndarray  # [N, 3]
    err_px: np.ndarray  # [N] mean reprojection error after smoothing
    jitter_raw: float  # degrees (see jitter_deg)
    jitter_smooth: float
    focal_curve: dict  # the focal search grid and costs
    cuts: np.ndarray  # first frame of each new shot (edited cuts are never smoothed across)


def estimate(uv: np.ndarray, shape_fn, size: int, usable: np.ndarray, f_min: float, f_max: float,
             n_focal_frames: int, sigma: float, prior_distance: float, focal: float | None = None) -> PoseResult:
    """Focal search, per-frame fit and smoothing.

    uv: [N, K, 2] pixels; ``shape_fn(focal) -> [K, 3]`` the reference shape (metres) for a focal.
    When the clip does not determine the focal, the one that puts the camera ``prior_distance``
    metres from the head is used.
    """
    cx = cy = size / 2.0
    uv = uv.astype(np.float64)
    idx = np.flatnonzero(usable)
    sample = idx[np.linspace(0, len(idx) - 1, min(n_focal_frames, len(idx))).astype(int)]
    curve: dict = {"observable": None}
    if focal is None:
        focal, curve = search_focal(shape_fn, uv[sample], cx, cy, f_min * size, f_max * size)
        if focal is None:
            # the distance grows with the focal at a fixed image size: a few fixed-point steps
            focal = float(np.sqrt(f_min * f_max)) * size
            for _ in range(4):
                K0, s0 = intrinsics(focal, cx, cy), shape_fn(focal)
                d = float(np.median([np.linalg.norm(solve_pose(s0, u, K0)[1]) for u in uv[sample]]))
                focal *= prior_distance / d
    shape = shape_fn(focal)
    K = intrinsics(focal, cx, cy)
    R_raw, t_raw, _ = fit_poses(shape, uv, K)
    cuts = find_cuts(R_raw, t_raw)
    R, t = smooth_poses(R_raw, t_raw, sigma, cuts)
    err = np.array([np.linalg.norm(project(shape, R[i], t[i], K) - uv[i], axis=1).mean() for i in range(len(uv))])
    return PoseResult(focal=float(focal), shape=shape, R=R, t=t, R_raw=R_raw, t_raw=t_raw, err_px=err,
                      jitter_raw=jitter_deg(R_raw, cuts), jitter_smooth=jitter_deg(R, cuts), focal_curve=curve, cuts=cuts)

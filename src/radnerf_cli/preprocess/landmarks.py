"""Landmarks: mediapipe face mesh (468 points, weights inside the wheel) and its iBUG-68 subset.

``.lms`` files hold 68 (x y) rows in iBUG-68 order, the layout RAD-NeRF reads; the full mesh is
kept beside them (``landmarks_mesh.npy`` in the subject folder) for the pose fit, the parsing and
the previews.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from radnerf_cli.errors import InputError

# iBUG-68 index -> mediapipe face-mesh index. Each group walks the iBUG order (subject's right to
# left, i.e. image left to right for a frontal face); the mesh point is the mesh vertex that lies
# where the 68-point annotation puts its point:
#   0-16  jaw line, from the right temple over the chin (8 = 152, chin tip) to the left temple
#   17-21 right brow, outer to inner        22-26 left brow, inner to outer
#   27-30 nose bridge, top (168) to tip (4)  31-35 nostrils and base, right to left (2 = subnasale)
#   36-41 right eye: outer corner 33, upper lid 160 158, inner corner 133, lower lid 153 144
#   42-47 left eye: inner corner 362, upper lid 385 387, outer corner 263, lower lid 373 380
#   48-59 outer lips from the right corner 61 over the top (0 = upper lip centre) and back (17 lower)
#   60-67 inner lips from the right corner 78 (62 = 13 upper centre, 66 = 14 lower centre)
MESH_TO_IBUG68 = np.array(
    [127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
     70, 63, 105, 66, 107,
     336, 296, 334, 293, 300,
     168, 197, 5, 4,
     75, 97, 2, 326, 305,
     33, 160, 158, 133, 153, 144,
     362, 385, 387, 263, 373, 380,
     61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
     78, 82, 13, 312, 308, 317, 14, 87],
    dtype=np.int64,
)
assert MESH_TO_IBUG68.shape == (68,)

# mesh indices of the face oval (closed loop), used for the parsing and the previews
FACE_OVAL = np.array(
    [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
     148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109],
    dtype=np.int64,
)
N_MESH = 468


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Silence the C++ log lines mediapipe prints on stderr while its graphs start (TensorFlow Lite's
    ``INFO: Created TensorFlow Lite XNNPACK delegate``, ``W0000 ... inference_feedback_manager``),
    unless the command runs with ``--verbose``."""
    from radnerf_cli.console import mode

    warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype")
    if mode.verbose:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded, captured): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def start_graph(factory, warmup_side: int = 64):
    """Build a mediapipe solution quietly and run it once on a blank image (its logs come then)."""
    with quiet_native_logs():
        sol = factory()
        sol.process(np.zeros((warmup_side, warmup_side, 3), np.uint8))
    return sol


def to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """[..., 468, D] mesh points -> [..., 68, D] in iBUG-68 order."""
    return mesh[..., MESH_TO_IBUG68, :]


class MeshTracker:
    """Face mesh over a video (tracking mode) following one main face.

    ``process(frame)`` returns [468, 3] float32 pixel coordinates (x, y, and z in x's pixel scale,
    negative towards the camera) or None when no face is seen.
    """

    def __init__(self, max_faces: int = 1, static: bool = False, min_confidence: float = 0.5):
        import mediapipe as mp

        self._mesh = start_graph(lambda: mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static,
            max_num_faces=max_faces,
            refine_landmarks=False,  # iris points are not needed; 468 points are faster
            min_detection_confidence=min_confidence,
            min_tracking_confidence=0.5,
        ))
        self._graph_cold = True  # no face seen yet: the landmark model's interpreter is not built
        self._prev: np.ndarray | None = None  # centre of the face followed so far, [2]
        self._width = 0.0  # its width in pixels
        self._static = static

    def process(self, frame: np.ndarray) -> np.ndarray | None:
        """frame: RGB uint8 [H, W, 3] -> [468, 3] float32 or None."""
        h, w = frame.shape[:2]
        if self._graph_cold:  # the landmark model starts (and logs) at the first frame with a face
            with quiet_native_logs():
                res = self._mesh.process(frame)
            self._graph_cold = not res.multi_face_landmarks
        else:
            res = self._mesh.process(frame)
        faces = res.multi_face_landmarks
        if not faces:
            return None
        pts = []
        for f in faces:
            a = np.array([(p.x, p.y, p.z) for p in f.landmark[:N_MESH]], dtype=np.float32)
            a *= np.array([w, h, w], dtype=np.float32)
            pts.append(a)
        if self._prev is None:  # the largest face first, then the one nearest the previous
            best = max(pts, key=lambda a: np.ptp(a[:, 0]) * np.ptp(a[:, 1]))
        else:
            best = min(pts, key=lambda a: float(np.linalg.norm(a[:, :2].mean(0) - self._prev)))
            if np.ptp(best[:, 0]) < 0.6 * self._width:
                return None  # the main face is hidden; a much smaller face is someone else
        if not self._static:  # single images are independent: no face to follow
            self._prev = best[:, :2].mean(0)
            self._width = float(np.ptp(best[:, 0]))
        return best

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> MeshTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FaceTracker:
    """iBUG-68 landmarks of the main face in single images (used by the LMD metric).

    >>> ft = FaceTracker()  # doctest: +SKIP
    >>> ft.landmarks68(image)  # [68, 2] pixel (x, y), or None without a face  # doctest: +SKIP
    """

    def __init__(self, static: bool = True):
        self._tracker = MeshTracker(max_faces=1, static=static)

    def landmarks68(self, image_rgb_uint8: np.ndarray) -> np.ndarray | None:
        """image: RGB uint8 [H, W, 3] -> [68, 2] float32 pixel coordinates, or None."""
        img = np.ascontiguousarray(image_rgb_uint8)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"image must be RGB uint8 [H, W, 3], got {img.dtype} {list(img.shape)}")
        mesh = self._tracker.process(img)
        return None if mesh is None else to_ibug68(mesh)[:, :2].copy()

    def mesh(self, image_rgb_uint8: np.ndarray) -> np.ndarray | None:
        """image: RGB uint8 [H, W, 3] -> the [468, 3] face mesh in pixels, or None."""
        img = np.ascontiguousarray(image_rgb_uint8)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"image must be RGB uint8 [H, W, 3], got {img.dtype} {list(img.shape)}")
        return self._tracker.process(img)

    def close(self) -> None:
        self._tracker.close()


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) index ranges where ``mask`` is True."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def format_ranges(rs: list[tuple[int, int]], limit: int = 8) -> str:
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in rs[:limit]]
    if len(rs) > limit:
        parts.append(f"... ({len(rs) - limit} more)")
    return ", ".join(parts)


@dataclass
class DropoutReport:
    """What was done about frames without a face."""

    missing: int  # frames with no face detected
    interpolated: list[tuple[int, int]]  # short gaps filled by interpolation (inclusive frame ranges)
    dropped: list[tuple[int, int]]  # long gaps: frames left out of the transforms

    @property
    def n_dropped(self) -> int:
        return sum(b - a + 1 for a, b in self.dropped)


def fill_dropouts(
    mesh: np.ndarray, found: np.ndarray, fps: float, max_gap_s: float, max_missing: float, video: str
) -> tuple[np.ndarray, np.ndarray, DropoutReport]:
    """Interpolate short face dropouts; refuse clips where too many frames lack a face.

    mesh: [N, 468, 3] (rows of missing frames are ignored), found: [N] bool.
    Returns (mesh filled where possible, usable [N] bool, report).
    """
    n = len(found)
    missing = int((~found).sum())
    gaps = runs(~found)
    if found.sum() == 0:
        raise InputError(f"{video}: no face found in any frame")
    if missing > max_missing * n:
        raise InputError(
            f"{video}: no face in {missing} of {n} frames ({100 * missing / n:.1f}%, limit {100 * max_missing:g}%): "
            f"frames {format_ranges(gaps)}",
            hint="cut the clip to the part where the face is visible",
        )
    out = mesh.copy()
    usable = found.copy()
    idx = np.flatnonzero(found)
    max_gap = int(round(max_gap_s * fps))
    interp, dropped = [], []
    flat = out.reshape(n, -1)
    for a, b in gaps:
        inner = a > 0 and b < n - 1
        if (b - a + 1) < max_gap and inner:
            t = np.arange(a, b + 1)
            w = ((t - (a - 1)) / (b + 1 - (a - 1)))[:, None]
            flat[a : b + 1] = (1 - w) * flat[a - 1] + w * flat[b + 1]
            usable[a : b + 1] = True
            interp.append((a, b))
        else:
            # a long gap, or one at the clip's ends: fill with the nearest tracked frame for the
            # landmark files, but leave the frames out of the training transforms
            for i in range(a, b + 1):
                j = idx[np.argmin(np.abs(idx - i))]
                flat[i] = flat[j]
            dropped.append((a, b))
    return out, usable, DropoutReport(missing=missing, interpolated=interp, dropped=dropped)


def eye_ratio(lms68: np.ndarray, h: int, w: int) -> np.ndarray:
    """RAD-NeRF's eye value: polygon area of landmarks 36-41 plus 42-47 as a percentage of H*W.

    [N, 68, 2] -> [N]. Percent, the unit the dataset loader (radnerf_cli.data) derives from .lms.
    """

    def area(p: np.ndarray) -> np.ndarray:  # shoelace, [N, K, 2] -> [N]
        x, y = p[..., 0], p[..., 1]
        return 0.5 * np.abs(np.sum(x * np.roll(y, -1, axis=-1) - np.roll(x, -1, axis=-1) * y, axis=-1))

    return (area(lms68[:, 36:42]) + area(lms68[:, 42:48])) / float(h * w) * 100.0

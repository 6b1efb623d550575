"""The mouth-shape code: a few numbers per frame that say how the mouth is shaped, from the landmarks.

The 20 iBUG-68 mouth landmarks (48-67) of each frame are brought into a common frame of the face by
a similarity transform (scale, rotation, shift) that best maps that frame's stable landmarks (nose
27-35, eyes 36-47) onto their mean over the clip, so head motion does not count as mouth motion.
A principal-component basis fitted on the training frames turns the 40 aligned coordinates into
``dim`` numbers, each scaled to unit variance over the training frames: component 0 is mostly the
opening of the mouth, the next ones its width and rounding.

The head field is trained on the tracked code of each frame; at render time the code is predicted
from the audio (:mod:`radnerf_cli.model.mouth`). Works on every dataset, ours or RAD-NeRF's, since
both keep the 68 landmarks in ``ori_imgs/{i}.lms``.

>>> lms = np.random.default_rng(0).normal(size=(50, 68, 2)) + np.linspace(0, 100, 68)[:, None]
>>> basis = MouthBasis.fit(aligned_mouth(lms), dim=4)
>>> basis.encode(aligned_mouth(lms)).shape
(50, 4)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MOUTH = slice(48, 68)  # iBUG-68 outer (48-59) and inner (60-67) lips
STABLE = list(range(27, 48))  # nose bridge and base (27-35), eyes (36-47)
# the inner-lip gap (y of point 66 minus y of point 62) as a linear read-out of the 40 aligned coordinates
_GAP = np.zeros(40)
_GAP[(66 - 48) * 2 + 1], _GAP[(62 - 48) * 2 + 1] = 1.0, -1.0


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares s, R [2,2], t [2] with s * src @ R.T + t ~ dst (Umeyama, no reflection)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    D = np.diag([1.0, d])
    R = u @ D @ vt
    var = (a**2).sum()
    s = float((sig * np.diag(D)).sum() / var) if var > 0 else 1.0
    return s, R, md - s * ms @ R.T


def aligned_mouth(lms68: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """[N, 68, 2] landmarks -> [N, 40] mouth coordinates in the face's common frame.

    ``reference``: [21, 2] stable landmarks to align to (default: their mean over these frames,
    scaled to unit size, so codes do not depend on the image resolution).
    """
    lms = np.asarray(lms68, dtype=np.float64)
    if lms.ndim != 3 or lms.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be [N, 68, 2], got {list(lms.shape)}")
    if reference is None:
        reference = stable_reference(lms)
    out = np.empty((len(lms), 40))
    for i, f in enumerate(lms):
        s, R, t = _similarity(f[STABLE], reference)
        out[i] = (s * f[MOUTH] @ R.T + t).reshape(-1)
    return out


def stable_reference(lms68: np.ndarray) -> np.ndarray:
    """Mean stable landmarks of a clip, centred and scaled to unit RMS radius: [21, 2]."""
    ref = np.asarray(lms68, dtype=np.float64)[:, STABLE].mean(0)
    ref = ref - ref.mean(0)
    return ref / max(float(np.sqrt((ref**2).sum(1).mean())), 1e-9)


@dataclass
class MouthBasis:
    """Principal components of aligned mouth coordinates, scaled to unit variance per component."""

    mean: np.ndarray  # [40]
    components: np.ndarray  # [dim, 40] orthonormal rows
    scale: np.ndarray  # [dim] standard deviation of each component over the fitted frames
    reference: np.ndarray  # [21, 2] stable landmarks the mouth was aligned to

    @classmethod
    def fit(cls, aligned: np.ndarray, dim: int, reference: np.ndarray | None = None) -> MouthBasis:
        x = np.asarray(aligned, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != 40 or len(x) < 2:
            raise ValueError(f"need [N >= 2, 40] aligned mouth coordinates, got {list(x.shape)}")
        dim = int(max(1, min(dim, 40, len(x) - 1)))
        mean = x.mean(0)
        _, sig, vt = np.linalg.svd(x - mean, full_matrices=False)
        comps = vt[:dim]
        # sign convention: component 0 grows as the inner lips part (point 66 moves down from 62)
        if comps[0] @ _GAP < 0:
            comps[0] = -comps[0]
        scale = np.maximum(sig[:dim] / np.sqrt(len(x)), 1e-9)
        ref = np.zeros((21, 2)) if reference is None else np.asarray(reference, dtype=np.float64)
        return cls(mean, comps, scale, ref)

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    def encode(self, aligned: np.ndarray) -> np.ndarray:
        """[N, 40] aligned coordinates -> [N, dim] codes (unit variance over the fitted frames)."""
        return ((np.asarray(aligned, dtype=np.float64) - self.mean) @ self.components.T / self.scale).astype(np.float32)

    def opening_weights(self) -> np.ndarray:
        """[dim]: how far the inner lips part (in the common frame) per unit of each component."""
        return self.components @ _GAP * self.scale

    def opening_component(self) -> int:
        """The component that parts the lips the most per unit: the mouth opening (0 on speech)."""
        return int(np.argmax(np.abs(self.opening_weights())))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """[N, dim] codes -> [N, 20, 2] mouth landmarks in the common frame (for pictures)."""
        x = (np.asarray(codes, dtype=np.float64) * self.scale) @ self.components + self.mean
        return x.reshape(-1, 20, 2)


def mouth_codes(lms68_train: np.ndarray, dim: int, others: dict[str, np.ndarray] | None = None):
    """Fit the basis on the training frames' landmarks; return (basis, train codes, {name: codes})."""
    ref = stable_reference(lms68_train)
    basis = MouthBasis.fit(aligned_mouth(lms68_train, ref), dim, ref)
    codes = basis.encode(aligned_mouth(lms68_train, ref))
    rest = {k: basis.encode(aligned_mouth(v, ref)) for k, v in (others or {}).items()}
    return basis, codes, rest

"""The region portrait mode replaces in a real frame, and its feathered blend mask.

All in the model's pixel grid (the dataset crop at the training size), from the iBUG-68 landmarks of
the real frame and the rendered head's opacity:

    face      the lower face of the real frame: jaw line 1..15 closed over the nose (landmark 29), or
              with region="face" the whole face up over the brows
    jaw room  the face polygon with its jaw dropped by ``jaw_room`` face heights: where a rendered jaw
              that opens wider than the real one may reach
    render    face and jaw room dilated by the feather and the blur: the most the mask can cover
    mask      face  |  (rendered opacity > 0.5 inside the jaw room, below the nose): it follows the
              real jaw and the rendered one; dilated by the feather and Gaussian-blurred (sigma a
              third of it), so it is 1 on the face and falls to 0 within one more feather outside;
              the blur's faint tail (below ``floor``) is cut by a linear ramp, not a step: its rays
              would each move the output by less than 1/20 of the render's difference from the real
              frame, and they are a fifth of the rays a frame renders
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

JAW = list(range(1, 16))  # iBUG-68 jaw points from below the right ear over the chin to the left
BROWS = list(range(26, 16, -1))  # brows, left to right as seen closing the polygon over the top


@dataclass
class MaskConfig:
    """Shape of the pasted region."""

    region: str = "lower"  # lower (from the nose down: what speech moves) or face (from the brows down)
    jaw_room: float = 0.15  # face heights below the real jaw where the rendered jaw may reach
    feather: float = 0.08  # soft border width in face widths (at least 4 model pixels)
    floor: float = 0.05  # the blurred mask m becomes (m - floor) / (1 - floor), clipped: 0 below floor


@dataclass
class FaceRegion:
    """Masks of one frame in the model's pixel grid (bool [H, W] unless said)."""

    face: np.ndarray  # the real frame's face polygon
    room: np.ndarray  # face plus the jaw room
    render: np.ndarray  # the most the mask can cover (rays outside it are never rendered)
    feather: float  # feather width, model pixels
    nose_row: float  # rows below this may take the rendered jaw
    floor: float = 0.0  # mask values below it become 0 (see MaskConfig.floor)


def _fill(poly: np.ndarray, H: int, W: int) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    cv2.fillPoly(m, [np.round(poly).astype(np.int32)], 1)
    return m


def _dilate(m: np.ndarray, r: float) -> np.ndarray:
    r = int(np.ceil(r))
    if r <= 0:
        return m
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(m, k)


def face_polygon(lms: np.ndarray, region: str = "lower") -> np.ndarray:
    """Polygon [K, 2] (x, y) of the replaced face from iBUG-68 landmarks [68, 2]."""
    if region == "lower":
        return np.concatenate([lms[JAW], lms[[29]]])
    if region == "face":
        return np.concatenate([lms[JAW], lms[BROWS]])
    raise ValueError(f"region must be 'lower' or 'face', got {region!r}")


def face_region(lms: np.ndarray, H: int, W: int, cfg: MaskConfig | None = None) -> FaceRegion:
    """The masks of one frame; ``lms`` [68, 2] in model pixels."""
    cfg = cfg or MaskConfig()
    lms = np.asarray(lms, dtype=np.float64)
    face_w = float(np.ptp(lms[:17, 0]))
    face_h = float(lms[8, 1] - min(lms[27, 1], lms[19, 1], lms[24, 1]))
    feather = max(4.0, cfg.feather * face_w)
    poly = face_polygon(lms, cfg.region)
    face = _fill(poly, H, W)
    dropped = poly.copy()
    jaw = np.arange(len(JAW))
    dropped[jaw, 1] += cfg.jaw_room * max(face_h, 1.0)
    room = np.maximum(face, _fill(dropped, H, W))
    # the soft mask spreads by the feather (dilation) plus 3 sigma = one more feather (blur)
    render = _dilate(room, 2.0 * feather + 1)
    return FaceRegion(face.astype(bool), room.astype(bool), render.astype(bool), feather, float(lms[33, 1]),
                      float(cfg.floor))


def blend_mask(reg: FaceRegion, weights: np.ndarray) -> np.ndarray:
    """Feathered mask float32 [H, W] in [0, 1]; ``weights`` [H, W] the rendered opacity (0 off the region)."""
    H, W = reg.face.shape
    rows = np.arange(H)[:, None] > reg.nose_row
    hard = reg.face | ((weights > 0.5) & reg.room & rows)
    m = _dilate(hard.astype(np.uint8), reg.feather).astype(np.float32)
    sigma = reg.feather / 3
    k = 2 * int(np.ceil(3 * sigma)) + 1
    m = cv2.GaussianBlur(m, (k, k), sigma, borderType=cv2.BORDER_CONSTANT)
    m[~reg.render] = 0.0
    if reg.floor > 0:
        m = (m - reg.floor) / (1.0 - reg.floor)
    return np.clip(m, 0.0, 1.0)


def fill_under_jaw(bg: np.ndarray, reg: FaceRegion) -> np.ndarray:
    """``bg`` (the real crop, uint8 [H, W, 3]) with the real lower face, below the nose, painted over by
    the neck colour just under the real jaw of each column: what shows where a rendered jaw that opens
    less than the real one leaves the head transparent (no second chin)."""
    out = bg.copy()
    H = bg.shape[0]
    face = reg.face.copy()
    face[: int(np.ceil(reg.nose_row)) + 1] = False
    cols = np.flatnonzero(face.any(0))
    if not len(cols):
        return out
    sub = face[:, cols]
    bottom = H - 1 - np.argmax(sub[::-1], axis=0)  # last face row of each column
    src_rows = np.minimum(bottom + 2, H - 1)
    rr, cc = np.nonzero(sub)
    out[rr, cols[cc]] = bg[src_rows[cc], cols[cc]]
    return out

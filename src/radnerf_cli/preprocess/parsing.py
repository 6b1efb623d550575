"""Parsing: head, neck, torso and background for every frame, in RAD-NeRF's on-disk colours.

On disk (RGB as any image viewer shows it) the head is BLUE (0, 0, 255), the neck green, the torso
RED (255, 0, 0) and the background white: RAD-NeRF's face parsing writes BGR (255, 0, 0) for the
head with cv2 and its scripts read the files back with cv2, so its folders look like this.

The person comes from mediapipe selfie segmentation; the landmarks split it: the head is the
person above the jaw line (hair and ears included, face oval always in), the neck a band under the
chin, the rest torso. ``torso_imgs`` are the frame with the head removed and the neck extended up
under the chin, so the torso model never sees a hole when the head moves.
"""

from __future__ import annotations

import cv2
import numpy as np

from radnerf_cli.preprocess.landmarks import FACE_OVAL, start_graph

HEAD, NECK, TORSO, BG = 1, 2, 3, 0
# RGB colour of each label as stored on disk (RAD-NeRF's convention: head blue, torso red)
COLORS = np.array([[255, 255, 255], [0, 0, 255], [0, 255, 0], [255, 0, 0]], dtype=np.uint8)
_LUT3 = np.zeros((256, 1, 3), np.uint8)
_LUT3[:4, 0] = COLORS
_BODY = np.zeros(256, np.uint8)
_BODY[[NECK, TORSO]] = 255

_OVAL = FACE_OVAL.tolist()
# the lower face oval, from the image-right jaw angle (288) over the chin (152) to the left one (58)
LOWER_OVAL = np.array(_OVAL[_OVAL.index(288) : _OVAL.index(58) + 1], dtype=np.int64)


class Segmenter:
    """Person probability per frame (mediapipe selfie segmentation, general model, in the wheel)."""

    def __init__(self):
        import mediapipe as mp

        self._seg = start_graph(lambda: mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0))

    def person(self, frame: np.ndarray, out_side: int) -> np.ndarray:
        """RGB uint8 [H, W, 3] -> person probability as uint8 [out_side, out_side] (255 = person)."""
        m = self._seg.process(frame).segmentation_mask
        m = cv2.resize(m, (out_side, out_side), interpolation=cv2.INTER_AREA)
        return (np.clip(m, 0, 1) * 255).astype(np.uint8)

    def close(self) -> None:
        self._seg.close()


def face_geometry(mesh: np.ndarray) -> dict:
    """Face width/height and the chin, from one frame's mesh [468, 3+]."""
    oval = mesh[FACE_OVAL, :2]
    fw = float(np.ptp(oval[:, 0]))
    fh = float(np.ptp(oval[:, 1]))
    return {"fw": fw, "fh": fh, "chin": mesh[152, :2], "cx": float(oval[:, 0].mean())}


def label_frame(person: np.ndarray, mesh: np.ndarray, size: int) -> np.ndarray:
    """person: uint8 [s, s] (any s), mesh [468, 3] pixels at ``size`` -> labels uint8 [size, size]."""
    if person.shape[0] != size:
        person = cv2.resize(person, (size, size), interpolation=cv2.INTER_LINEAR)
    pm = person > 127
    g = face_geometry(mesh)
    fw = g["fw"]
    ext = 0.45 * fw  # hair and ears reach this far beyond the face sides
    lo = mesh[LOWER_OVAL, :2]
    xl, xr = mesh[58, 0] - ext, mesh[288, 0] + ext
    poly = np.concatenate([
        [[xr, -size]], [[xr, mesh[288, 1]]], lo, [[xl, mesh[58, 1]]], [[xl, -size]],
    ]).round().astype(np.int32)
    above = np.zeros((size, size), np.uint8)
    cv2.fillPoly(above, [poly], 1)
    oval = np.zeros((size, size), np.uint8)
    cv2.fillPoly(oval, [mesh[FACE_OVAL, :2].round().astype(np.int32)], 1)
    head = (pm & (above > 0)) | (oval > 0)
    neck = pm & (neck_zone(mesh, size) > 0) & ~head
    labels = np.zeros((size, size), np.uint8)
    labels[pm] = TORSO
    labels[neck] = NECK
    labels[head] = HEAD
    return labels


def neck_zone(mesh: np.ndarray, size: int) -> np.ndarray:
    """Where the neck can be: under the jaw line, narrowing from the jaw angles to a column about as
    wide as the jaw is narrow, down to 0.45 face heights under the chin. uint8 [size, size]."""
    g = face_geometry(mesh)
    fw, fh, cx, chin_y = g["fw"], g["fh"], g["cx"], g["chin"][1]
    lo = mesh[LOWER_OVAL, :2]  # image-right jaw angle over the chin to the image-left one
    half = 0.34 * fw
    bottom = chin_y + 0.45 * fh
    waist = chin_y + 0.15 * fh  # the sides run in from the jaw angles to the column by here
    poly = np.concatenate([lo, [[cx - half, waist], [cx - half, bottom], [cx + half, bottom], [cx + half, waist]]])
    zone = np.zeros((size, size), np.uint8)
    cv2.fillPoly(zone, [poly.round().astype(np.int32)], 1)
    return zone


def colorize(labels: np.ndarray) -> np.ndarray:
    """labels uint8 [H, W] -> RGB parsing image [H, W, 3] in RAD-NeRF's on-disk colours."""
    return cv2.LUT(cv2.merge([labels, labels, labels]), _LUT3)


def parsing_png(labels: np.ndarray) -> bytes:
    """The parsing image as an indexed PNG (tiny and fast; every reader expands it to the RGB colours)."""
    import io

    from PIL import Image

    img = Image.fromarray(labels, mode="L").convert("P")
    img.putpalette(COLORS.reshape(-1).tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


UNDER_CHIN = 0.22  # face heights the torso layer is painted up under the jaw (what a closing jaw may uncover)


def torso_rgba(frame: np.ndarray, labels: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """RGBA uint8 [H, W, 4]: neck and torso opaque, head removed, and the body painted a little way up
    under the jaw, following the jaw line: each column where the body meets the head continues upwards
    with the colour of its first body rows, slowly darkening, then smoothed across columns (no
    streaks, no block). What the band covers is hidden by the head in every training frame."""
    h, w = labels.shape
    alpha = cv2.LUT(labels, _BODY)  # 255 on neck and torso
    rgb = cv2.bitwise_and(frame, frame, mask=alpha)
    body = alpha > 0
    cols = np.flatnonzero(body.any(0))
    if not len(cols):
        return np.dstack([rgb, alpha])
    top = body[:, cols].argmax(0)  # first body row of each column
    above = np.maximum(top - 1, 0)
    g = face_geometry(mesh)
    jaw_l, jaw_r = sorted((float(mesh[58, 0]), float(mesh[288, 0])))
    meets = (labels[above, cols] == HEAD) & (top > 0) & (cols >= jaw_l) & (cols <= jaw_r)
    cols, top = cols[meets], top[meets]
    L = int(round(UNDER_CHIN * g["fh"]))
    if not len(cols) or L < 1:
        return np.dstack([rgb, alpha])
    # the colour to extend: mean of the first few body rows of the column (robust to a dark seam)
    rows = np.clip(top[None, :] + np.arange(2, 6)[:, None], 0, h - 1)
    colour = frame[rows, cols[None, :]].astype(np.float32).mean(0)  # [C, 3]
    k = np.arange(1, L + 1)[:, None]  # rows above the body's top
    rr = top[None, :] - k  # [L, C]
    ok = rr >= 0
    shade = (0.985 ** k)[..., None]  # [L, 1, 1]
    paint = np.broadcast_to(colour[None], (L, len(cols), 3)) * shade
    band = np.zeros((h, w), np.uint8)
    canvas = rgb.astype(np.float32)
    canvas[rr[ok], np.broadcast_to(cols, rr.shape)[ok]] = paint[ok]
    band[rr[ok], np.broadcast_to(cols, rr.shape)[ok]] = 1
    # smooth the band (and its seam with the body) across columns
    near = cv2.dilate(band, np.ones((5, 5), np.uint8)) > 0
    blur = cv2.GaussianBlur(canvas, (9, 5), 0)
    canvas[near & (band > 0)] = blur[near & (band > 0)]
    rgb = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    alpha[band > 0] = 255
    rgb = cv2.bitwise_and(rgb, rgb, mask=alpha)
    return np.dstack([rgb, alpha])


def labels_from_rgb(par: np.ndarray) -> np.ndarray:
    """RGB parsing image [H, W, 3] as read from disk -> labels uint8 [H, W] (RAD-NeRF's colours).

    A pixel takes the label whose colour it is nearest to (JPEG-like noise or resampling tolerated).
    """
    d = ((par[:, :, None, :].astype(np.int32) - COLORS[None, None].astype(np.int32)) ** 2).sum(-1)
    return d.argmin(-1).astype(np.uint8)


def fractions(labels: np.ndarray) -> dict:
    """Share of the frame per class."""
    n = labels.size
    return {name: float((labels == v).sum()) / n for name, v in (("head", HEAD), ("neck", NECK), ("torso", TORSO), ("background", BG))}

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
    fw, fh = g["fw"], g["fh"]
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
    # neck: the person under the chin, in a column about as wide as the jaw is narrow
    neck_box = np.zeros((size, size), np.uint8)
    cx, chin_y = g["cx"], g["chin"][1]
    half = 0.34 * fw
    cv2.rectangle(neck_box, (int(cx - half), 0), (int(cx + half), int(chin_y + 0.45 * fh)), 1, -1)
    neck = pm & (neck_box > 0) & ~head
    labels = np.zeros((size, size), np.uint8)
    labels[pm] = TORSO
    labels[neck] = NECK
    labels[head] = HEAD
    return labels


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


def torso_rgba(frame: np.ndarray, labels: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """RGBA uint8 [H, W, 4]: torso and neck opaque, head removed, neck extended up under the chin."""
    h, w = labels.shape
    alpha = cv2.LUT(labels, _BODY)  # 255 on neck and torso
    neck = labels == NECK
    cols = np.flatnonzero(neck.any(0))
    rgb = frame.copy()
    if len(cols):
        top = neck[:, cols].argmax(0)  # first neck row of each column
        fill_from = int(max(0, min(mesh[58, 1], mesh[288, 1])))  # from the jaw angles down
        y1 = int(top.max())
        if y1 > fill_from:
            sub = labels[fill_from:y1, cols] == HEAD  # [h', C]
            rows = np.arange(fill_from, y1)[:, None]
            region = sub & (rows < top[None, :])
            colors = frame[np.minimum(top + 2, h - 1), cols]  # [C, 3]: the neck colour under the chin
            rr, cc = np.nonzero(region)
            rgb[rr + fill_from, cols[cc]] = colors[cc]
            alpha[rr + fill_from, cols[cc]] = 255
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

"""Background estimate ``bc.jpg``: the mean of the pixels the person never covers, over sampled
frames, and the nearest such pixel wherever the person always stands."""

from __future__ import annotations

import cv2
import numpy as np


def estimate_background(frames, persons, size: int) -> tuple[np.ndarray, float]:
    """frames: iterable of RGB uint8 [S, S, 3]; persons: matching uint8 masks (any side, 255 = person).

    Returns (background RGB uint8 [S, S, 3], fraction of pixels seen as background at least once).
    """
    acc = np.zeros((size, size, 3), np.float64)
    cnt = np.zeros((size, size), np.float64)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    for frame, person in zip(frames, persons, strict=True):
        pm = cv2.resize(person, (size, size), interpolation=cv2.INTER_LINEAR) > 64
        bg = cv2.dilate(pm.astype(np.uint8), kernel) == 0  # keep clear of the person's halo
        acc[bg] += frame[bg]
        cnt[bg] += 1
    seen = cnt > 0
    out = np.zeros((size, size, 3), np.uint8)
    if not seen.any():
        return out, 0.0
    out[seen] = (acc[seen] / cnt[seen, None]).round().astype(np.uint8)
    if not seen.all():
        # nearest seen pixel for the never-seen ones, then a light blur over the filled part only
        _, labels = cv2.distanceTransformWithLabels((~seen).astype(np.uint8), cv2.DIST_L2, 5,
                                                    labelType=cv2.DIST_LABEL_PIXEL)
        ys, xs = np.nonzero(seen)
        lut = np.zeros((labels.max() + 1, 3), np.uint8)
        lut[labels[seen]] = out[ys, xs]
        filled = lut[labels]
        blurred = cv2.GaussianBlur(filled, (0, 0), 6)
        out[~seen] = blurred[~seen]
    return out, float(seen.mean())


def composite(frame: np.ndarray, labels: np.ndarray, background: np.ndarray) -> np.ndarray:
    """gt image: the frame with its background pixels (label 0) replaced by the estimate."""
    out = frame.copy()
    cv2.copyTo(background, (labels == 0).view(np.uint8), out)
    return out

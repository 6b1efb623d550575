"""The body's pose in a frame, read from its torso layer: how high the shoulders sit and how the body is shifted.

The head pose says little about where the body is (the subject leans, shrugs and turns the shoulders
on their own), so the torso field can be given this as well. It is measured on the torso layer that
preprocess cut out of each frame, the same way for training frames and for the frames a render plays
back, and so it follows the pose track exactly as the head pose does.

Features (``BODY_DIM`` floats, all relative to the image size so that they do not depend on the
resolution): the top of the body in ``SHOULDER_COLUMNS`` columns on either side (the outer 30% of the
width: the shoulders, away from the chin and neck, whose outline moves with the jaw), then the
horizontal and vertical shift of the lowest fifth of the frame (shirt, tie, jacket) against a
reference frame, by phase correlation.
"""

from __future__ import annotations

import numpy as np

SHOULDER_COLUMNS = 8  # columns sampled on each side
BAND = 0.8  # the shift is measured on the rows below this fraction of the height
BODY_DIM = 2 * SHOULDER_COLUMNS + 2


def shoulder_heights(alpha: np.ndarray) -> np.ndarray:  # [H, W] bool -> [2 * SHOULDER_COLUMNS]
    """Row of the first body pixel in each sampled column, over the height (1.0: no body in that column)."""
    H, W = alpha.shape
    side = 0.3 * (W - 1)
    cols = np.concatenate([np.linspace(0, side, SHOULDER_COLUMNS), np.linspace(W - 1 - side, W - 1, SHOULDER_COLUMNS)])
    a = alpha[:, np.round(cols).astype(int)]
    top = np.where(a.any(0), a.argmax(0), H)
    return top.astype(np.float32) / H


def band_spectrum(torso: np.ndarray) -> np.ndarray:  # [H, W, 4] uint8 -> complex [h, W]
    """Spectrum of the lowest rows of the torso layer (grey, alpha-weighted, windowed)."""
    H = torso.shape[0]
    g = torso[int(H * BAND):, :, :3].astype(np.float32).mean(-1) * (torso[int(H * BAND):, :, 3] / 255.0)
    g = g - g.mean()
    win = np.hanning(g.shape[0])[:, None] * np.hanning(g.shape[1])[None]
    return np.fft.fft2(g * win)


def _peak(c: np.ndarray, i: int) -> float:
    """Sub-pixel position of the peak ``i`` of the periodic 1D curve ``c`` (parabola through 3 points)."""
    n = c.shape[0]
    lo, mid, hi = c[(i - 1) % n], c[i], c[(i + 1) % n]
    den = lo - 2 * mid + hi
    d = 0.5 * (lo - hi) / den if abs(den) > 1e-12 else 0.0
    x = i + float(np.clip(d, -0.5, 0.5))
    return x - n if x > n / 2 else x


def band_shift(spec: np.ndarray, ref: np.ndarray) -> np.ndarray:  # -> [2] (dx / W, dy / H)
    """Shift of a band against the reference band (both from :func:`band_spectrum`), by phase correlation."""
    r = spec * np.conj(ref)
    r /= np.abs(r) + 1e-6
    c = np.real(np.fft.ifft2(r))
    y, x = np.unravel_index(int(np.argmax(c)), c.shape)
    h, w = c.shape
    return np.array([_peak(c[y, :], int(x)) / w, _peak(c[:, x], int(y)) / (h / (1 - BAND))], np.float32)


def body_features(torso: np.ndarray, ref: np.ndarray) -> np.ndarray:  # [H, W, 4] uint8, reference spectrum -> [BODY_DIM]
    """The body pose of one torso layer; ``ref``: :func:`band_spectrum` of the reference frame (same size)."""
    if torso.ndim != 3 or torso.shape[2] != 4:
        raise ValueError(f"torso layer must be [H, W, 4], got {list(torso.shape)}")
    return np.concatenate([shoulder_heights(torso[..., 3] > 127), band_shift(band_spectrum(torso), ref)])


def body_track(torsos, ref_torso: np.ndarray) -> np.ndarray:  # iterable of [H, W, 4] -> [N, BODY_DIM]
    """:func:`body_features` of every torso layer against the reference torso layer."""
    ref = band_spectrum(ref_torso)
    rows = [body_features(t, ref) for t in torsos]
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, BODY_DIM), np.float32)


def smooth_track(track: np.ndarray, window: int) -> np.ndarray:
    """Moving average over ``window`` frames, truncated at the ends: the window the pose track is smoothed with."""
    n = len(track)
    if window <= 1 or n < 2:
        return np.asarray(track, np.float32).copy()
    half = int(window) // 2
    c = np.cumsum(np.concatenate([np.zeros((1, track.shape[1])), np.asarray(track, np.float64)]), axis=0)
    lo = np.maximum(np.arange(n) - half, 0)
    hi = np.minimum(np.arange(n) + half + 1, n)
    return ((c[hi] - c[lo]) / (hi - lo)[:, None]).astype(np.float32)

"""Per-video-frame windows over 50 Hz audio features, laid out exactly as RAD-NeRF's ``aud_*.npy``.

RAD-NeRF's extractor produces ``M`` feature rows at 50 Hz (one per 20 ms), where ``M`` is the
number of frames of wav2vec's convolutional front end over the whole file (receptive field 400
samples, stride 320 at 16 kHz), ``M = (S - 80) // 320`` for ``S`` samples. It then cuts one window
of 16 rows per video frame (25 fps, so a stride of 2 rows), zero-padded by 8 rows at both ends:

    frame i  <-  rows 2i-8 ... 2i+7   (rows outside [0, M) are zeros)
    N_frames = M // 2 + 1

So a window is centred on the start of its video frame and spans 320 ms. Every extractor here
produces rows on this 50 Hz grid with the same ``M``, so all feature kinds have the same frame count
for the same audio, and that count matches files made by RAD-NeRF's own scripts.

>>> rows = np.arange(10, dtype=np.float32)[:, None]      # M = 10 rows, C = 1
>>> w = window_features(rows)
>>> w.shape, w[0, 8:10, 0].tolist()
((6, 16, 1), [0.0, 1.0])
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000  # audio sample rate every extractor expects (Hz)
FEATURE_RATE = 50  # feature rows per second
HOP = SAMPLE_RATE // FEATURE_RATE  # 320 samples between feature rows
VIDEO_FPS = 25  # video frames per second; 2 feature rows per video frame
WINDOW = 16  # feature rows per video-frame window (320 ms)
ROWS_PER_FRAME = FEATURE_RATE // VIDEO_FPS  # 2


def feature_rows(n_samples: int) -> int:
    """Number of 50 Hz feature rows ``M`` for ``n_samples`` of 16 kHz audio (RAD-NeRF's rule)."""
    return max(0, (int(n_samples) - 80) // HOP)


def frame_count(n_samples: int) -> int:
    """Number of video frames ``N`` (25 fps) that RAD-NeRF's feature file has for this audio."""
    return feature_rows(n_samples) // ROWS_PER_FRAME + 1


def window_features(rows: np.ndarray, n_frames: int | None = None) -> np.ndarray:
    """Cut RAD-NeRF windows from 50 Hz rows.

    rows: [M, C] features at 50 Hz. n_frames: the number of windows to return (default
    ``M // 2 + 1``); windows past the end of the rows are zero-padded like the last ones.
    Returns [N_frames, 16, C] float32.
    """
    rows = np.asarray(rows, dtype=np.float32)
    if rows.ndim != 2:
        raise ValueError(f"rows must be [M, C], got shape {rows.shape}")
    m, c = rows.shape
    n = m // ROWS_PER_FRAME + 1 if n_frames is None else int(n_frames)
    half = WINDOW // 2
    # zero rows before the start, and after the end far enough for the last requested window
    total = max(m, ROWS_PER_FRAME * (n - 1) + half) + half
    padded = np.zeros((total, c), dtype=np.float32)
    padded[half : half + m] = rows
    starts = ROWS_PER_FRAME * np.arange(n)  # window i covers padded rows [2i, 2i + 16)
    idx = starts[:, None] + np.arange(WINDOW)[None, :]
    return padded[idx]  # [N, 16, C]


def unwindow_features(windows: np.ndarray) -> np.ndarray:
    """Recover the 50 Hz rows [M, C] from windows [N, 16, C] made by :func:`window_features`.

    Row ``2i + k - 8`` is read from window ``i`` at position ``k``; ``M`` is taken as ``2N - 1``
    trimmed of trailing all-zero rows that only come from padding (the exact ``M`` is ``2N-2`` or
    ``2N-1``; a genuinely zero last row is indistinguishable from padding and is dropped).
    """
    windows = np.asarray(windows, dtype=np.float32)
    n, w, c = windows.shape
    if w != WINDOW:
        raise ValueError(f"windows must be [N, {WINDOW}, C], got shape {windows.shape}")
    half = WINDOW // 2
    m = ROWS_PER_FRAME * n - 1
    rows = np.zeros((m, c), dtype=np.float32)
    # each row r appears in window i = (r + 8 - k) / 2 for some k; take the window whose centre is nearest
    r = np.arange(m)
    i = np.clip(r // ROWS_PER_FRAME, 0, n - 1)
    k = r - ROWS_PER_FRAME * i + half
    rows[:] = windows[i, k]
    while m > ROWS_PER_FRAME * n - 2 and not rows[m - 1].any():
        m -= 1
    return rows[:m]

"""Things to look at: a contact sheet of tracked frames and a plot of the head pose over time."""

from __future__ import annotations

import cv2
import numpy as np

from radnerf_cli import fsutil
from radnerf_cli.preprocess import parsing, pose


def draw_frame(frame: np.ndarray, lms68: np.ndarray, labels: np.ndarray | None, R: np.ndarray, t: np.ndarray,
               K: np.ndarray, axis_len: float = 0.08) -> np.ndarray:
    """One overlay: parsing tinted in, iBUG-68 points, and the head axes (x red, y green, z blue)."""
    img = frame.copy()
    if labels is not None:
        tint = parsing.colorize(labels)
        m = labels > 0
        img[m] = (0.65 * img[m] + 0.35 * tint[m]).astype(np.uint8)
    for x, y in lms68.round().astype(int):
        cv2.circle(img, (int(x), int(y)), 2, (255, 255, 0), -1, lineType=cv2.LINE_AA)
    pts = np.array([[0, 0, 0], [axis_len, 0, 0], [0, axis_len, 0], [0, 0, axis_len]], np.float64)
    uv = pose.project(pts, R, t, K).round().astype(int)
    for k, col in ((1, (255, 0, 0)), (2, (0, 255, 0)), (3, (0, 0, 255))):
        cv2.line(img, tuple(map(int, uv[0])), tuple(map(int, uv[k])), col, 2, lineType=cv2.LINE_AA)
    return img


def contact_sheet(tiles: list[np.ndarray], captions: list[str], cols: int = 4, tile: int = 256) -> np.ndarray:
    """Grid of captioned tiles, RGB uint8."""
    rows = (len(tiles) + cols - 1) // cols
    sheet = np.full((rows * tile, cols * tile, 3), 24, np.uint8)
    for i, (img, cap) in enumerate(zip(tiles, captions, strict=True)):
        r, c = divmod(i, cols)
        small = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA)
        cv2.putText(small, cap, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        sheet[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = small
    return sheet


def pose_plot(path, euler_raw: np.ndarray, euler: np.ndarray, t_raw: np.ndarray, t: np.ndarray, fps: float,
              cuts: np.ndarray | None = None) -> None:
    """PNG of pitch/yaw/roll (degrees) and the head position in the camera frame over time, before
    (faint) and after smoothing; dashed lines mark the cuts found in the clip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    time = np.arange(len(euler)) / fps
    fig, axes = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True)
    series = [
        (axes[0], euler_raw, euler, ("pitch", "yaw", "roll"), (0, 1, 2), "rotation (deg)"),
        (axes[1], t_raw, t, ("x", "y"), (0, 1), "head x, y (m)"),
        (axes[2], t_raw, t, ("z (distance)",), (2,), "head z (m)"),
    ]
    for ax, raw, sm, names, cols, label in series:
        for k, (name, c) in enumerate(zip(names, cols, strict=True)):
            ax.plot(time, raw[:, c], lw=0.6, alpha=0.35, color=f"C{k}")
            ax.plot(time, sm[:, c], lw=1.2, color=f"C{k}", label=name)
        for c in [] if cuts is None else cuts:
            ax.axvline(c / fps, color="gray", ls="--", lw=0.8)
        ax.set_ylabel(label)
        ax.legend(loc="upper right", ncol=3, fontsize=8)
    axes[2].set_xlabel("time (s); faint = before smoothing, dashed = cut")
    fig.tight_layout()
    with fsutil.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)

"""Images a person looks at while training: render | ground truth | depth previews and loss/PSNR curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radnerf_cli import fsutil


def psnr(mse: float) -> float:
    """PSNR (dB) of images in [0, 1] from their mean squared error."""
    return float(-10.0 * np.log10(max(mse, 1e-10)))


def depth_to_rgb(depth: np.ndarray) -> np.ndarray:
    """[H, W] depth in [0, 1] -> [H, W, 3] uint8 (grey, near = bright)."""
    d = np.clip(depth, 0, 1)
    g = np.where(d > 0, 1.0 - d, 0.0)
    return (np.repeat(g[..., None], 3, -1) * 255 + 0.5).astype(np.uint8)


def save_preview(path: Path, render: np.ndarray, truth: np.ndarray, depth: np.ndarray) -> None:
    """A PNG of render | ground truth | depth side by side (all [H, W, 3] uint8 but depth [H, W])."""
    gap = np.full((render.shape[0], 4, 3), 255, dtype=np.uint8)
    fsutil.save_image(path, np.concatenate([render, gap, truth, gap, depth_to_rgb(depth)], axis=1))


def save_curves(path: Path, history: dict[str, dict[str, list[float]]]) -> None:
    """Loss and PSNR against step, one line per stage, as a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    for stage, h in history.items():
        if not h.get("step"):
            continue
        axes[0].plot(h["step"], h["loss"], label=stage)
        axes[1].plot(h["step"], h["psnr"], label=stage)
    axes[0].set_yscale("log")
    axes[0].set_title("training loss")
    axes[1].set_title("training PSNR (dB)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with fsutil.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)

"""A stand-in for a subject's original video: the dataset frames upscaled into a larger, textured frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from radnerf_cli import media
from radnerf_cli.preprocess.source_map import write_source_map


def source_frame(ori: np.ndarray, i: int, width: int, height: int, crop) -> np.ndarray:
    """A real frame: a textured surround with the dataset frame (resized) in the crop box."""
    yy, xx = np.mgrid[:height, :width]
    frame = np.stack([(xx * 1.5 + i) % 256, (yy * 1.7) % 256, ((xx + yy) * 0.8) % 256], -1).astype(np.uint8)
    x, y, w, h = crop
    frame[y:y + h, x:x + w] = cv2.resize(ori, (w, h), interpolation=cv2.INTER_CUBIC)
    return frame


def write_source_video(root: Path, video: Path, width: int, height: int, crop) -> int:
    """Write ``video`` for the subject folder ``root`` and its source.json; returns the frame count."""
    n = len(list((root / "ori_imgs").glob("*.jpg")))
    size = cv2.imread(str(root / "ori_imgs" / "0.jpg")).shape[0]
    with media.VideoWriter(video, width, height, crf=10) as vw:
        for i in range(n):
            ori = cv2.cvtColor(cv2.imread(str(root / "ori_imgs" / f"{i}.jpg")), cv2.COLOR_BGR2RGB)
            vw.write(source_frame(ori, i, width, height, crop))
    write_source_map(root, video, crop, width, height, size, 25.0, n)
    return n

"""Video step: check the source, pick a square head-and-shoulders crop, stream 25-fps frames.

The crop is chosen from a cheap first pass (face boxes at a few frames per second, mediapipe face
detection); the frames are then decoded once more at 25 fps, cropped and resized by ffmpeg itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radnerf_cli import media
from radnerf_cli.errors import InputError
from radnerf_cli.preprocess.config import PreprocessConfig

DETECT_SIDE = 640  # the face-box pass decodes at most this many pixels on the long side


@dataclass
class SourceInfo:
    """The checked source video."""

    path: Path
    width: int  # pixels, after display rotation
    height: int
    fps: float  # nominal source rate
    duration: float  # seconds


def check_source(path: str | Path, cfg: PreprocessConfig) -> SourceInfo:
    """Probe the file; raise InputError (one line, naming the file) when it cannot be used."""
    path = Path(path)
    info = media.probe(path)  # missing / not media -> InputError
    if not info.has_video:
        raise InputError(f"{path}: has no video stream (is it an audio file?)")
    if not info.has_audio:
        raise InputError(f"{path}: has no audio track", hint="the model learns from the speech; use a clip with sound")
    if info.width < 32 or info.height < 32:
        raise InputError(f"{path}: video is only {info.width}x{info.height} pixels, too small to hold a face")
    if 0 < info.duration < cfg.min_duration:
        raise InputError(f"{path}: video is {info.duration:.1f} s long; at least {cfg.min_duration:g} s are needed")
    return SourceInfo(path=path, width=info.width, height=info.height, fps=info.fps, duration=info.duration)


def _face_detector():
    import mediapipe as mp

    # model_selection=1: the full-range model (faces up to ~5 m), in the wheel.
    from radnerf_cli.preprocess.landmarks import start_graph

    return start_graph(lambda: mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5))


BAR_LEVEL = 24  # rows / columns darker than this in every sampled frame are letterbox bars
HAIR_MARGIN = 0.6  # the crop's top edge sits at least this many face sizes above the face box (hair)


@dataclass
class FaceBoxes:
    """Face boxes of the detection pass, in source pixels."""

    times: np.ndarray  # [T] seconds
    boxes: list[np.ndarray]  # per sample: [K, 4] (x0, y0, x1, y1), K faces (maybe 0)
    canvas: tuple[int, int, int, int] | None = None  # (x, y, w, h) of the picture inside black bars

    @property
    def max_faces(self) -> int:
        return max((len(b) for b in self.boxes), default=0)


def detect_faces(src: SourceInfo, cfg: PreprocessConfig) -> FaceBoxes:
    """Face boxes at ``cfg.detect_fps`` over the whole clip (decoded small: this pass is cheap)."""
    scale = min(1.0, DETECT_SIDE / max(src.width, src.height))
    w = max(2, int(round(src.width * scale / 2)) * 2)
    h = max(2, int(round(src.height * scale / 2)) * 2)
    det = _face_detector()
    boxes: list[np.ndarray] = []
    rows, cols = np.zeros(h, np.uint8), np.zeros(w, np.uint8)  # brightest value seen per row / column
    try:
        for frame in media.read_frames(src.path, fps=cfg.detect_fps, size=(w, h)):
            np.maximum(rows, frame.max(axis=(1, 2)), out=rows)
            np.maximum(cols, frame.max(axis=(0, 2)), out=cols)
            res = det.process(frame)
            bs = []
            for d in res.detections or []:
                b = d.location_data.relative_bounding_box
                bs.append([b.xmin, b.ymin, b.xmin + b.width, b.ymin + b.height])
            arr = np.asarray(bs, dtype=np.float64).reshape(-1, 4) * [src.width, src.height, src.width, src.height]
            boxes.append(arr)
    finally:
        det.close()
    if not boxes:
        raise InputError(f"{src.path}: no video frames could be decoded")
    times = np.arange(len(boxes)) / cfg.detect_fps
    return FaceBoxes(times=times, boxes=boxes, canvas=picture_box(rows, cols, src))


def picture_box(rows: np.ndarray, cols: np.ndarray, src: SourceInfo) -> tuple[int, int, int, int]:
    """(x, y, w, h) in source pixels of the frame without its black bars (dark all clip long)."""

    def span(v: np.ndarray, full: int) -> tuple[int, int]:
        lit = np.flatnonzero(v >= BAR_LEVEL)
        if len(lit) == 0 or len(lit) > 0.98 * len(v):
            return 0, full
        k = full / len(v)
        lo, hi = int(np.ceil((lit[0] + 1) * k)), int(np.floor(lit[-1] * k))  # one small pixel inwards
        lo, hi = (lo if lit[0] > 0 else 0), (hi if lit[-1] < len(v) - 1 else full)
        lo += lo % 2
        hi -= (hi - lo) % 2
        return (lo, hi) if hi - lo >= 32 else (0, full)

    y0, y1 = span(rows, src.height)
    x0, x1 = span(cols, src.width)
    return x0, y0, x1 - x0, y1 - y0


def track_main_face(fb: FaceBoxes) -> np.ndarray:
    """One box per sample for the main face (NaN where it is missing): [T, 4].

    The main face is the largest one where it first appears; afterwards each sample takes the box
    nearest the previous one, so a second person passing by never steals the track (a much smaller
    face is not taken even when the main face is hidden).
    """
    out = np.full((len(fb.boxes), 4), np.nan)
    sizes = [np.max(b[:, 2:] - b[:, :2], axis=1) if len(b) else np.zeros(0) for b in fb.boxes]
    largest = [s.max() for s in sizes if len(s)]
    if not largest:
        return out
    ref_size = float(np.median(largest))  # the main face's typical size
    prev = None
    for i, b in enumerate(fb.boxes):
        if not len(b):
            continue
        if prev is None:
            # start the track on a face of the main face's size (not a small passer-by)
            if sizes[i].max() < 0.6 * ref_size:
                continue
            j = int(np.argmax(sizes[i]))
        else:
            c = (b[:, :2] + b[:, 2:]) / 2
            pc = (prev[:2] + prev[2:]) / 2
            j = int(np.argmin(np.linalg.norm(c - pc, axis=1)))
            prev_size = float(np.max(prev[2:] - prev[:2]))
            if sizes[i][j] < 0.6 * prev_size:
                continue  # the main face is hidden here; the smaller face elsewhere is someone else
        out[i] = b[j]
        prev = b[j]
    return out


def choose_crop(src: SourceInfo, track: np.ndarray, cfg: PreprocessConfig,
                canvas: tuple[int, int, int, int] | None = None) -> tuple[int, int, int, int]:
    """Square crop (x, y, side, side) in source pixels holding the head and shoulders all clip long.

    The crop stays inside ``canvas`` (the picture without black bars; default the whole frame)
    where it can; it never cuts the head (hair included) to fit, and reaches past the picture's
    edge instead (:func:`radnerf_cli.media.read_frames` fills that part from the edge pixels).
    """
    ok = ~np.isnan(track[:, 0])
    if not ok.any():
        raise InputError(f"{src.path}: no face found in the video")
    bx, by, bw, bh = canvas or (0, 0, src.width, src.height)
    t = track[ok]
    face = float(np.median(np.max(t[:, 2:] - t[:, :2], axis=1)))
    union = np.concatenate([t[:, :2].min(0), t[:, 2:].max(0)])
    # the union of all boxes plus a margin of one face on each side, and at least crop_scale faces
    side = max(cfg.crop_scale * face, (union[2] - union[0]) + 1.2 * face, (union[3] - union[1]) + 1.2 * face)
    faces = max(union[2] - union[0], union[3] - union[1])  # the face boxes must fit, even past the picture
    side = int(np.ceil(max(min(side, bw, bh), faces)))
    side += side % 2
    cx = (union[0] + union[2]) / 2
    cy = (union[1] + union[3]) / 2 + cfg.crop_up * side  # shift down: room for the shoulders
    x = cx - side / 2 if side > bw else np.clip(cx - side / 2, bx, bx + bw - side)
    y = (union[1] + union[3] - side) / 2 if side > bh else np.clip(cy - side / 2, by, by + bh - side)
    # keep the whole head inside, hair included (up to the picture's top): never cut it for shoulders
    y = min(y, max(min(by, y), union[1] - HAIR_MARGIN * face))
    return int(round(x)), int(round(y)), side, side


MAX_UPSCALE = 2.0  # a crop enlarged more than this to reach --size is reported


def upscale_warning(src: SourceInfo, crop: tuple[int, int, int, int], cfg: PreprocessConfig) -> str | None:
    """A warning when the crop holds far fewer pixels than the output size (the frames would be blurry)."""
    side = crop[2]
    if side * MAX_UPSCALE >= cfg.size:
        return None
    return (f"{src.path}: the head-and-shoulders crop is only {side}x{side} source pixels; it is enlarged "
            f"{cfg.size / side:.1f}x to --size {cfg.size}, so the frames and the model will be blurry "
            f"(a closer or sharper video helps; --size {max(64, side - side % 2)} keeps the source detail)")


def stream_frames(src: SourceInfo, crop: tuple[int, int, int, int], cfg: PreprocessConfig,
                  canvas: tuple[int, int, int, int] | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames [size, size, 3] at ``cfg.fps`` (any source rate resampled by ffmpeg)."""
    yield from media.read_frames(src.path, fps=cfg.fps, crop=crop, size=(cfg.size, cfg.size), canvas=canvas)


def expected_frames(src: SourceInfo, cfg: PreprocessConfig) -> int:
    """Frame count at the output rate, for progress bars (0 when the duration is unknown)."""
    return int(round(src.duration * cfg.fps)) if src.duration > 0 else 0

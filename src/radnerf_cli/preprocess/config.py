"""Typed settings of `radnerf preprocess`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PreprocessConfig:
    """Everything the preprocessing pipeline can be told; defaults follow RAD-NeRF's data."""

    size: int = 512  # output frame side in pixels (square crop resized to this)
    fps: float = 25.0  # output frame rate; RAD-NeRF's audio windows assume 25
    audio_features: str = "whisper"  # audio feature kind: whisper | mel
    import_features: str | None = None  # a RAD-NeRF .npy (29/44/1024-d) adopted instead of extracting
    force: bool = False  # redo every step even when its completion marker exists
    min_duration: float = 5.0  # seconds; shorter clips are refused
    max_missing_fraction: float = 0.05  # refuse when more frames than this have no face
    max_gap_seconds: float = 0.5  # face dropouts shorter than this are interpolated
    detect_fps: float = 5.0  # frame rate of the first, face-box pass that picks the crop
    crop_scale: float = 2.4  # crop side over the largest face-box side (head and shoulders)
    crop_up: float = 0.12  # crop centre sits this fraction of the side below the faces' centre (shoulders)
    focal_min: float = 0.8  # focal search range, in units of the output size
    focal_max: float = 6.0  # upper end of the focal search, in units of the output size
    focal_frames: int = 120  # frames sampled for the focal search
    prior_distance_m: float = 0.8  # camera distance used when the clip does not determine the focal
    smooth_sigma: float = 1.5  # frames; Gaussian smoothing of the pose (zero lag: symmetric kernel)
    eye_distance_m: float = 0.095  # outer eye-corner distance of the reference shape, metres (sets scale)
    head_depth_m: float = 0.09  # the head-frame origin sits this far behind the mean face surface
    background_samples: int = 60  # frames sampled for the background estimate
    jpeg_quality: int = 95  # quality of the written JPEG frames
    preview_frames: int = 12  # frames in the overlay contact sheet

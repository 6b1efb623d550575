"""The demo subject's source video: the bundled portrait talking along to synthetic speech.

Everything comes from installed packages (scikit-image's astronaut photo, mediapipe's face mesh,
numpy/scipy synthesis, the bundled ffmpeg): nothing is downloaded.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radnerf_cli import media
from radnerf_cli.demo.portrait import PortraitAnimator, detect_geometry, portrait_image
from radnerf_cli.demo.speech import SpeechConfig, per_frame, synthesize_speech


@dataclass
class DemoVideoConfig:
    """How the demo source video is made."""

    duration: float = 30.0  # seconds of video (and speech)
    fps: float = 25.0  # frame rate
    size: int = 384  # output frame side in pixels (the portrait crop is resized to this)
    crop: tuple[int, int, int, int] = (32, 0, 384, 384)  # (x, y, w, h) of the 512x512 portrait kept
    blink_every: tuple[float, float] = (2.5, 5.0)  # seconds between blinks (uniform range)
    blink_length: float = 0.2  # seconds a blink lasts
    head_shift_px: float = 3.0  # amplitude of the head's sideways / up-down sway, output pixels
    head_roll_deg: float = 2.0  # amplitude of the head's roll, degrees
    seed: int = 0  # random seed for speech, blinks and motion
    speech: SpeechConfig = field(default_factory=SpeechConfig)  # the voice (duration is set from above)


def motion_tracks(cfg: DemoVideoConfig, n: int) -> dict[str, np.ndarray]:
    """Per-frame blink [n], yaw/pitch shifts [n] (pixels) and roll [n] (degrees)."""
    rng = np.random.default_rng(cfg.seed + 1)
    t = np.arange(n) / cfg.fps
    blink = np.zeros(n, dtype=np.float32)
    next_blink = rng.uniform(*cfg.blink_every)
    end = float(t[-1]) if n else 0.0
    while next_blink < end:
        mid = next_blink + cfg.blink_length / 2
        blink = np.maximum(blink, np.clip(1.0 - np.abs(t - mid) / (cfg.blink_length / 2), 0, 1))
        next_blink += rng.uniform(*cfg.blink_every)

    def sway(amplitude: float) -> np.ndarray:
        freqs = rng.uniform(0.05, 0.35, size=3)
        phases = rng.uniform(0, 2 * np.pi, size=3)
        s = sum(np.sin(2 * np.pi * f * t + p) for f, p in zip(freqs, phases, strict=True)) / 3
        return (amplitude * s).astype(np.float32)

    return {"blink": blink, "yaw": sway(cfg.head_shift_px), "pitch": sway(0.6 * cfg.head_shift_px),
            "roll": sway(cfg.head_roll_deg)}


def build_demo_video(out: str | Path, cfg: DemoVideoConfig | None = None) -> Path:
    """Write the demo source video (H.264 + AAC mp4) to ``out``, atomically. Returns ``out``."""
    import cv2

    from radnerf_cli.console import progress

    cfg = cfg or DemoVideoConfig()
    out = Path(out)
    image = portrait_image(cfg.crop)
    if image.shape[0] != cfg.size:
        image = cv2.resize(image, (cfg.size, cfg.size), interpolation=cv2.INTER_AREA
                           if image.shape[0] > cfg.size else cv2.INTER_CUBIC)
    geo = detect_geometry(image)
    anim = PortraitAnimator(image, geo)
    scfg = SpeechConfig(**{**cfg.speech.__dict__, "duration": cfg.duration, "seed": cfg.seed})
    audio, jaw = synthesize_speech(scfg)
    n = int(round(cfg.duration * cfg.fps))
    jaw_f = per_frame(jaw, scfg.sample_rate, cfg.fps, n)
    # A little lag-free smoothing so the jaw moves like a jaw, not a switch.
    jaw_f = np.convolve(np.pad(jaw_f, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    tracks = motion_tracks(cfg, n)
    scale = cfg.size / cfg.crop[2]
    with tempfile.TemporaryDirectory(prefix="radnerf-demo-") as tmp:
        wav = Path(tmp) / "speech.wav"
        media.write_wav(wav, audio, scfg.sample_rate)
        with media.VideoWriter(out, cfg.size, cfg.size, fps=cfg.fps, audio=wav) as vw, \
                progress("frames") as bar:
            task = bar.add_task("demo video", total=n)
            for i in range(n):
                vw.write(anim.frame(float(jaw_f[i]), float(tracks["blink"][i]), float(tracks["yaw"][i]) * scale,
                                    float(tracks["pitch"][i]) * scale, float(tracks["roll"][i])))
                bar.advance(task)
    return out

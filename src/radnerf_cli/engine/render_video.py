"""Render a trained talking head speaking new audio, streamed frame by frame into an mp4.

    audio file -> 16 kHz samples -> features of the model's kind [N, 16, C]
               -> per-frame windows [8, 16, C] (RAD-NeRF's ``get_audio_features``)
    pose track (the subject's, smoothed, played back and forth; or a transforms json)
    eye track (the subject's, or a fixed value)       -> TalkingHead.render_frame -> ffmpeg / PNGs

Frames are never all held in memory: each is encoded as soon as it is rendered.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from radnerf_cli.errors import InputError

if TYPE_CHECKING:
    from radnerf_cli.engine.inference import TalkingHead

FPS = 25  # video frame rate; RAD-NeRF's audio windows assume it
SAMPLE_RATE = 16000  # audio sample rate of the feature extractors
AUDIO_SUFFIXES_FEATURES = (".npy",)  # an --audio with this suffix is a feature file, not sound
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
NAMED_COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0), "green": (0, 177, 64), "grey": (128, 128, 128),
                 "gray": (128, 128, 128), "blue": (0, 71, 187)}


@dataclass
class RenderOptions:
    """What `radnerf render` can be told, besides the model and the audio."""

    start: float = 0.0  # seconds into the audio where the video starts
    duration: float | None = None  # seconds of video (None: to the end of the audio)
    pose_smooth: int = 7  # frames of the moving average over the pose track (1: no smoothing)
    fix_eye: float | None = None  # eye-opening value for every frame (None: the subject's blinks)
    background: str = "bc"  # bc (the subject's background), a colour (white, #rrggbb, r,g,b) or an image file
    torso: bool = True  # render the torso (False: the head alone over the background)
    crf: int = 18  # H.264 quality (lower is better; 18 is visually lossless)
    portrait: bool = False  # paste the face into the subject's real frames at their size (needs a source)


@dataclass
class RenderAudio:
    """The audio a render is driven by."""

    features: np.ndarray  # [N, 16, C] windows, one per 25 fps frame of the whole audio
    kind: str  # feature kind of ``features``
    seconds: float  # duration of the whole audio
    sound: Path | None  # file whose audio track is muxed into the video (None for a feature file)


# ----------------------------------------------------------------------------------------------
# audio


def frames_for(seconds: float) -> int:
    """Video frames at 25 fps covering ``seconds`` of audio."""
    return int(round(seconds * FPS))


@dataclass
class AudioSource:
    """Audio as read from the user's file, before features of the model's kind are made from it."""

    path: Path  # the file given
    samples: np.ndarray | None  # [S] 16 kHz mono float32 (None for a feature file)
    features: np.ndarray | None  # [N, 16, C] precomputed features (a .npy), or None
    kind: str | None  # kind of ``features``
    features_path: Path | None = None  # where ``features`` came from


def read_audio(path: str | os.PathLike, features: str | os.PathLike | None = None) -> AudioSource:
    """Read and validate ``path`` (wav, flac, mp3, a video, or a RAD-NeRF .npy feature file).

    ``features`` optionally gives precomputed features for the sound in ``path``. InputError
    (naming the file) when the audio is missing, corrupt, silent or shorter than one video frame.
    """
    from radnerf_cli import media
    from radnerf_cli.audio import check_audio, load_feature_file

    path = Path(path)
    if path.suffix.lower() in AUDIO_SUFFIXES_FEATURES:
        feats, kind = load_feature_file(path)
        return AudioSource(path, None, feats, kind, path)
    samples = check_audio(media.load_audio(path, SAMPLE_RATE), str(path))
    if frames_for(samples.size / SAMPLE_RATE) < 1:
        raise InputError(f"{path}: audio is too short ({samples.size / SAMPLE_RATE * 1000:.1f} ms); "
                         "it must last at least one video frame (40 ms)")
    if features is not None:
        feats, kind = load_feature_file(features)
        n = frames_for(samples.size / SAMPLE_RATE)
        if abs(feats.shape[0] - n) > 2:
            raise InputError(f"{features}: has {feats.shape[0]} frames of features but {path} lasts {n} frames",
                             hint="give the feature file made from this audio")
        return AudioSource(path, samples, feats, kind, Path(features))
    return AudioSource(path, samples, None, None)


def audio_features(src: AudioSource, head_kind: str, whisper_model: str | None = None,
                   device: str | None = None) -> RenderAudio:
    """Features of the model's kind for ``src``; InputError when the kinds cannot match."""
    from radnerf_cli.audio import FEATURE_KINDS, extract_features, fit_frames

    path = src.path
    if src.samples is None:  # a feature file alone: silent video
        _check_kind(src.kind, head_kind, path)
        return RenderAudio(src.features, src.kind, src.features.shape[0] / FPS, None)
    seconds = src.samples.size / SAMPLE_RATE
    n = frames_for(seconds)
    if src.features is not None:
        _check_kind(src.kind, head_kind, src.features_path or path)
        return RenderAudio(fit_frames(src.features, n), src.kind, seconds, path)
    if head_kind not in FEATURE_KINDS:
        raise InputError(
            f"{path}: the model was trained on '{head_kind}' audio features, which radnerf cannot compute from sound",
            hint=f"pass the matching RAD-NeRF feature file with --features (e.g. {path.stem}_{head_kind}.npy)",
        )
    feats = extract_features(src.samples, head_kind, n_frames=n, source=str(path), whisper_model=whisper_model,
                             device=device)
    return RenderAudio(feats, head_kind, seconds, path)


def load_render_audio(path: str | os.PathLike, head_kind: str, features: str | os.PathLike | None = None,
                      whisper_model: str | None = None, device: str | None = None) -> RenderAudio:
    """:func:`read_audio` then :func:`audio_features`: audio of any kind, ready for a model of ``head_kind``."""
    return audio_features(read_audio(path, features), head_kind, whisper_model, device)


def _check_kind(kind: str, head_kind: str, path: Path) -> None:
    if kind != head_kind:
        raise InputError(
            f"{path}: holds '{kind}' audio features but the model was trained on '{head_kind}' features",
            hint=f"give audio (wav, mp3, ...) or a '{head_kind}' feature file",
        )


# ----------------------------------------------------------------------------------------------
# poses and eyes


def load_pose_file(path: str | os.PathLike) -> np.ndarray:
    """Camera-to-world poses [N, 4, 4] (raw json convention) from a RAD-NeRF transforms json."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: pose file not found")
    try:
        data = json.loads(p.read_text())
        poses = np.array([f["transform_matrix"] for f in data["frames"]], dtype=np.float32)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{p}: not a JSON file") from None
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{p}: not a RAD-NeRF transforms file (needs frames[].transform_matrix as 4x4)") from None
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) == 0:
        raise InputError(f"{p}: transform_matrix entries must be 4x4 (got poses of shape {poses.shape})")
    if not np.isfinite(poses).all():
        raise InputError(f"{p}: poses contain NaN or infinite values")
    return poses


def smooth_poses(poses: np.ndarray, window: int) -> np.ndarray:
    """Moving average of a pose track [N, 4, 4] over ``window`` frames (rotations averaged as quaternions)."""
    from scipy.spatial.transform import Rotation

    from radnerf_cli.data.body_pose import smooth_track

    n = len(poses)
    if window <= 1 or n < 2:
        return poses.copy()
    half = window // 2
    rots = Rotation.from_matrix(poses[:, :3, :3].astype(np.float64))
    out = poses.astype(np.float64).copy()
    for i in range(n):
        lo, hi = max(0, i - half), min(n, i + half + 1)
        out[i, :3, :3] = rots[lo:hi].mean().as_matrix()
    out[:, :3, 3] = smooth_track(poses[:, :3, 3], window)  # the window the body track is smoothed with
    return out.astype(np.float32)


def ping_pong(i: int, n: int) -> int:
    """Index of frame ``i`` in a track of ``n`` played forwards, then backwards, then forwards again."""
    if n <= 1:
        return 0
    period = 2 * (n - 1)
    k = i % period
    return k if k < n else period - k


# ----------------------------------------------------------------------------------------------
# background


def background_spec(value: str) -> str | tuple[int, int, int] | Path:
    """Check a ``--bg`` value without a model: "bc", an (r, g, b) colour, or a readable image's path."""
    v = value.strip()
    if v.lower() in ("bc", "default", "subject"):
        return "bc"
    if v.lower() in NAMED_COLOURS:
        return NAMED_COLOURS[v.lower()]
    if _HEX.match(v):
        hx = _HEX.match(v).group(1)
        return tuple(int(hx[k:k + 2], 16) for k in (0, 2, 4))  # type: ignore[return-value]
    if re.fullmatch(r"\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*", v):
        rgb = tuple(int(x) for x in v.split(","))
        if max(rgb) > 255:
            raise InputError(f"background colour '{v}': components must be 0..255")
        return rgb  # type: ignore[return-value]
    p = Path(v).expanduser()
    if not p.is_file():
        raise InputError(f"background '{v}': neither bc, a colour (white, #rrggbb, r,g,b) nor an image file")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise InputError(f"{p}: not a readable image for the background") from None
    return p


def parse_background(value: str, head: TalkingHead) -> np.ndarray:
    """Background image uint8 [H, W, 3]: ``bc`` (the subject's), a colour name, ``#rrggbb``, ``r,g,b`` or an image."""
    h, w = head.H, head.W
    spec = background_spec(value)
    if spec == "bc":
        bg = np.asarray(head.background, dtype=np.uint8)
        if bg.shape != (h, w, 3):
            from PIL import Image

            bg = np.asarray(Image.fromarray(bg).resize((w, h), Image.BILINEAR))
        return bg
    if isinstance(spec, tuple):
        return np.broadcast_to(np.array(spec, dtype=np.uint8), (h, w, 3)).copy()
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(spec) as im:
            im = im.convert("RGB")
            if im.size != (w, h):
                im = im.resize((w, h), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError):
        raise InputError(f"{spec}: not a readable image for the background") from None


# ----------------------------------------------------------------------------------------------
# the render loop


@dataclass
class RenderResult:
    """What a render produced."""

    frames: int  # frames rendered
    seconds: float  # wall time of the render loop
    fps: float  # frames rendered per second
    out: Path | None  # the mp4 (None when only PNG frames were written)
    frames_dir: Path | None  # the PNG folder, if any
    size: tuple[int, int] = (0, 0)  # (width, height) of the frames written
    rays_per_frame: float = 0.0  # head rays rendered per frame


def frame_range(audio: RenderAudio, start: float, duration: float | None) -> tuple[int, int]:
    """First frame and frame count of the video inside the audio (InputError when out of range)."""
    return frame_span(audio.features.shape[0], audio.seconds, start, duration)


def source_span(src: AudioSource, start: float, duration: float | None) -> tuple[int, int]:
    """:func:`frame_range` for audio as read, before any features are made (checks --start early)."""
    if src.samples is None:
        total = src.features.shape[0]
        return frame_span(total, total / FPS, start, duration)
    seconds = src.samples.size / SAMPLE_RATE
    return frame_span(frames_for(seconds), seconds, start, duration)


def frame_span(total: int, seconds: float, start: float, duration: float | None) -> tuple[int, int]:
    """First frame and frame count of a video of ``duration`` from ``start`` in ``total`` frames of audio."""
    from radnerf_cli import validate

    validate.number("--start", start, 0.0)
    validate.number("--duration", duration, 0.0, lo_open=True)
    first = frames_for(start)
    if first >= total:
        raise InputError(f"--start {start:g}s is past the end of the audio ({seconds:.2f}s)")
    if duration is not None:
        count = max(1, frames_for(duration))
        if first + count > total:
            count = total - first
    else:
        count = total - first
    return first, count


def render_video(
    head: TalkingHead,
    audio: RenderAudio,
    out: str | os.PathLike | None,
    opts: RenderOptions | None = None,
    poses: np.ndarray | None = None,
    frames_dir: str | os.PathLike | None = None,
    show_progress: bool = True,
    portrait=None,
) -> RenderResult:
    """Render ``head`` speaking ``audio`` to an H.264/AAC mp4 at ``out`` and/or PNGs in ``frames_dir``.

    poses: [P, 4, 4] raw camera-to-world poses (default: the model's training track). Either is
    smoothed over ``opts.pose_smooth`` frames and played back and forth to cover the audio.
    portrait: a :class:`~radnerf_cli.engine.portrait.PortraitSource` of the training track, for
    ``opts.portrait``: each frame is then the real frame of the track entry played, at its size,
    with the rendered face pasted in (the track is not smoothed: the face must sit on its frame).
    """
    import time

    import torch

    from radnerf_cli import fsutil, media
    from radnerf_cli.console import progress
    from radnerf_cli.data import audio_window
    from radnerf_cli.engine.export import check_writable

    opts = opts or RenderOptions()
    if out is None and frames_dir is None:
        raise InputError("nothing to write: give an output video (--out) or a frames folder (--frames-dir)")
    if audio.features.shape[-1] != head.feature_dim:
        raise InputError(f"audio features have width {audio.features.shape[-1]} but the model expects {head.feature_dim}")
    out_path = check_writable(out, "video") if out is not None else None
    fdir = Path(frames_dir) if frames_dir is not None else None
    if fdir is not None:
        if fdir.exists() and not fdir.is_dir():
            raise InputError(f"{fdir}: exists and is not a folder")
        try:
            fdir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"{fdir}: cannot create the frames folder ({e.strerror})") from None
        if not os.access(fdir, os.W_OK):
            raise InputError(f"{fdir}: frames folder is not writable")
    first, count = frame_range(audio, opts.start, opts.duration)
    track = np.asarray(head.pose_track if poses is None else poses, dtype=np.float32)
    if track.ndim != 3 or track.shape[1:] != (4, 4) or len(track) == 0:
        raise InputError(f"pose track must be [N, 4, 4], got {track.shape}")
    reader = None
    out_w, out_h = head.W, head.H
    if opts.portrait:
        if portrait is None:
            raise InputError("portrait mode needs the subject's real frames (a source video or a bundle with frames)")
        if poses is not None:
            raise InputError("--portrait follows the subject's own frames and poses; it cannot take --pose")
        if len(portrait.lms) != len(track):
            raise InputError(f"the portrait frames cover {len(portrait.lms)} poses but the pose track has {len(track)}")
        out_w, out_h = portrait.width + portrait.width % 2, portrait.height + portrait.height % 2
    # the body pose goes with the track entry (a --pose track has none: the nearest entry's is used)
    bodies = head.body_track if poses is None else None
    if not opts.portrait:
        track = smooth_poses(track, opts.pose_smooth)
        if bodies is not None:
            from radnerf_cli.data.body_pose import smooth_track

            bodies = smooth_track(bodies, opts.pose_smooth)
    eyes = None if opts.fix_eye is not None or head.eye_track is None else np.asarray(head.eye_track, dtype=np.float32)
    bg = parse_background(opts.background, head)
    feats = torch.from_numpy(np.ascontiguousarray(audio.features))  # [N, 16, C]

    writer = None
    if out_path is not None:
        sound = audio.sound
        writer = media.VideoWriter(
            out_path, out_w, out_h, fps=FPS, audio=sound,
            audio_start=first / FPS if sound is not None else 0.0,
            audio_duration=(count / FPS if (opts.duration is not None or first > 0) else None) if sound is not None else None,
            crf=opts.crf,
        )
    head.reset()
    rays = 0
    t0 = time.perf_counter()
    try:
        if opts.portrait:
            reader = portrait.reader([ping_pong(j, len(track)) for j in range(count)])
        with progress("frames", transient=not show_progress) as bar:
            task = bar.add_task("render", total=count)
            for j in range(count):
                i = first + j
                k = ping_pong(j, len(track))
                if opts.fix_eye is not None:
                    eye = float(opts.fix_eye)
                elif eyes is not None:
                    eye = float(eyes[ping_pong(j, len(eyes))])
                else:
                    eye = None
                aud = audio_window(feats, i)  # [8, 16, C]
                if reader is not None:
                    from radnerf_cli.engine.portrait import head_render_fn, pad_even, paste

                    res = paste(reader.next(), portrait.crop, portrait.lms[k], head.H, head.W, portrait.size,
                                head_render_fn(head, track[k], aud, eye))
                    frame, rays = pad_even(res["image"]), rays + res["rays"]
                else:
                    frame = head.render_frame(track[k], aud, eye, bg=bg, torso=opts.torso,
                                              body=None if bodies is None else bodies[k])
                    rays += head.H * head.W
                if writer is not None:
                    writer.write(frame)
                if fdir is not None:
                    fsutil.save_image(fdir / f"{j:06d}.png", frame)
                bar.advance(task)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if reader is not None:
            reader.close()
    if writer is not None:
        writer.close()
    dt = time.perf_counter() - t0
    return RenderResult(count, dt, count / dt if dt > 0 else 0.0, out_path, fdir, (out_w, out_h), rays / max(count, 1))

"""Video and audio I/O through imageio-ffmpeg's bundled ffmpeg binary.

Everything streams: frames are read and written one at a time, never all held in memory.
Failures raise :class:`InputError` naming the file.
"""

from __future__ import annotations

import os
import re
import subprocess
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radnerf_cli import fsutil
from radnerf_cli.errors import InputError


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass
class MediaInfo:
    """What ffmpeg says about a file."""

    path: Path
    duration: float  # seconds (0 when unknown)
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0  # nominal frame rate of the video stream
    audio_rate: int = 0
    rotation: int = 0  # display rotation in degrees, from side data


_DUR = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_VID = re.compile(r"Stream #\d+:\d+.*?Video:.*?(\d{2,5})x(\d{2,5})")
_FPS = re.compile(r"(\d+(?:\.\d+)?)\s*fps")
_TBR = re.compile(r"(\d+(?:\.\d+)?)\s*tbr")
_AUD = re.compile(r"Stream #\d+:\d+.*?Audio:.*?(\d+)\s*Hz")
_ROT = re.compile(r"rotation of\s*(-?\d+(?:\.\d+)?)\s*degrees|rotate\s*:\s*(-?\d+)")


def probe(path: str | os.PathLike) -> MediaInfo:
    """Inspect a media file. Raises InputError when the file is missing or not a media file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
    )
    err = proc.stderr
    if "Invalid data found" in err or ("Stream #" not in err):
        raise InputError(f"{path}: not a readable video or audio file")
    m = _DUR.search(err)
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else 0.0
    info = MediaInfo(path=path, duration=duration, has_video=False, has_audio=False)
    for line in err.splitlines():
        if "Video:" in line and "Stream #" in line and not info.has_video:
            if "attached pic" in line:
                continue
            mv = _VID.search(line)
            if mv:
                info.has_video = True
                info.width, info.height = int(mv.group(1)), int(mv.group(2))
                mf = _FPS.search(line) or _TBR.search(line)
                info.fps = float(mf.group(1)) if mf else 0.0
        if "Audio:" in line and "Stream #" in line and not info.has_audio:
            ma = _AUD.search(line)
            info.has_audio = True
            info.audio_rate = int(ma.group(1)) if ma else 0
    mr = _ROT.search(err)
    if mr:
        info.rotation = int(float(mr.group(1) or mr.group(2))) % 360
        if info.rotation in (90, 270):
            info.width, info.height = info.height, info.width
    return info


def load_audio(path: str | os.PathLike, sample_rate: int = 16000) -> np.ndarray:
    """Decode the audio of any file ffmpeg reads (wav, flac, mp3, a video's track) to mono float32."""
    path = Path(path)
    info = probe(path)
    if not info.has_audio:
        raise InputError(f"{path}: has no audio track")
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
         "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-"],
        capture_output=True,
    )
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"{path}: audio could not be decoded ({msg[-1] if msg else 'ffmpeg failed'})")
    audio = np.frombuffer(proc.stdout, dtype=np.float32).copy()
    if audio.size == 0:
        raise InputError(f"{path}: audio track is empty")
    return audio


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = 16000) -> None:
    """Write mono float audio in [-1, 1] as 16-bit PCM wav, atomically."""
    pcm = (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2")
    with fsutil.atomic_path(path) as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sample_rate)
            w.writeframes(pcm.tobytes())


def crop_filters(crop: tuple[int, int, int, int], canvas: tuple[int, int, int, int],
                 frame: tuple[int, int]) -> list[str]:
    """ffmpeg filters cutting ``crop`` out of ``canvas`` (both x, y, w, h) of a ``frame`` (w, h);
    the part of the crop outside the canvas repeats the canvas's edge pixels."""
    cx, cy, cw, ch = crop
    bx, by, bw, bh = canvas
    out = [] if (bx, by, bw, bh) == (0, 0, *frame) else [f"crop={bw}:{bh}:{bx}:{by}"]
    rx, ry = cx - bx, cy - by
    left, top = max(0, -rx), max(0, -ry)
    right, bottom = max(0, rx + cw - bw), max(0, ry + ch - bh)
    if left or top or right or bottom:
        out += ["format=gbrp", f"pad={bw + left + right}:{bh + top + bottom}:{left}:{top}",
                f"fillborders=left={left}:right={right}:top={top}:bottom={bottom}:mode=smear"]
        rx, ry = rx + left, ry + top
    return out + [f"crop={cw}:{ch}:{rx}:{ry}"]


def read_frames(
    path: str | os.PathLike,
    fps: float | None = 25.0,
    crop: tuple[int, int, int, int] | None = None,
    size: tuple[int, int] | None = None,
    start: float = 0.0,
    duration: float | None = None,
    canvas: tuple[int, int, int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames [H, W, 3], resampled to ``fps`` (None keeps the source timing).

    ``crop`` is (x, y, w, h) in source pixels (after rotation); ``size`` is the output (w, h).
    ``canvas`` (x, y, w, h) is the part of the frame with picture in it (black bars left out); a
    crop reaching beyond it (or beyond the frame) is filled by repeating the canvas's edge pixels.
    """
    path = Path(path)
    info = probe(path)
    if not info.has_video:
        raise InputError(f"{path}: has no video stream")
    w, h = info.width, info.height
    filters = []
    if fps:
        filters.append(f"fps={fps:g}")
    if crop is not None:
        filters += crop_filters(crop, canvas or (0, 0, w, h), (w, h))
        w, h = crop[2], crop[3]
    if size is not None:
        filters.append(f"scale={size[0]}:{size[1]}:flags=area")
        w, h = size
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    if start > 0:
        cmd += ["-ss", f"{start:.3f}"]
    cmd += ["-i", str(path)]
    if duration is not None:
        cmd += ["-t", f"{duration:.3f}"]
    if filters:
        cmd += ["-vf", ",".join(filters)]
    cmd += ["-an", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    nbytes = w * h * 3
    try:
        assert proc.stdout is not None
        while True:
            buf = proc.stdout.read(nbytes)
            if len(buf) < nbytes:
                break
            yield np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
    finally:
        if proc.stdout:
            proc.stdout.close()
        proc.kill() if proc.poll() is None else None
        proc.wait()
    if proc.returncode not in (0, -9, None):
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        raise InputError(f"{path}: video could not be decoded ({err.splitlines()[-1] if err else 'ffmpeg failed'})")


class VideoWriter:
    """Stream RGB frames into an H.264 mp4 (yuv420p, 25 fps), optionally muxing an audio file as AAC.

    The file appears at ``path`` only when :meth:`close` succeeds (written to a temp file first).

    >>> with VideoWriter("talk.mp4", 512, 512, audio="speech.wav") as vw:  # doctest: +SKIP
    ...     vw.write(frame)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        fps: float = 25.0,
        audio: str | os.PathLike | None = None,
        audio_start: float = 0.0,
        audio_duration: float | None = None,
        crf: int = 18,
    ):
        self.path = Path(path)
        if width % 2 or height % 2:
            raise InputError(f"{self.path}: H.264 needs an even frame size, got {width}x{height}")
        self.width, self.height = width, height
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"{self.path}: cannot create the output folder ({e.strerror})") from None
        if not os.access(self.path.parent, os.W_OK):
            raise InputError(f"{self.path}: output folder is not writable")
        self._ctx = fsutil.atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-"]
        if audio is not None:
            if audio_start > 0:
                cmd += ["-ss", f"{audio_start:.3f}"]
            if audio_duration is not None:
                cmd += ["-t", f"{audio_duration:.3f}"]
            cmd += ["-i", str(audio)]
        cmd += ["-map", "0:v:0"]
        if audio is not None:
            cmd += ["-map", "1:a:0", "-c:a", "aac", "-b:a", "160k"]
        cmd += ["-c:v", "libx264", "-preset", "medium", "-crf", str(crf), "-pix_fmt", "yuv420p",
                "-movflags", "+faststart", "-f", "mp4", str(self._tmp)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one frame: uint8 [H, W, 3]."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 [{self.height}, {self.width}, 3], got {frame.dtype} {list(frame.shape)}")
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
            self.abort()
            raise InputError(f"{self.path}: ffmpeg stopped while encoding ({err.strip()[-200:]})") from None
        self.frames += 1

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        rc = self._proc.wait()
        if rc != 0:
            err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
            self._ctx.__exit__(RuntimeError, RuntimeError(err), None)
            raise InputError(f"{self.path}: encoding failed ({err.strip()[-200:]})")
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        try:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)
        except RuntimeError:
            pass

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

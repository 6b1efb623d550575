"""Where live frames go: a fragmented mp4 growing on disk, raw RGB on a pipe, or any ffmpeg output URL.

Video and audio reach ffmpeg (imageio-ffmpeg's bundled binary) through two pipes, frames on its
stdin and 16-bit PCM on file descriptor 3, each fed by its own thread so neither can block the
other. The mp4 is fragmented (a fragment per second, starting with an empty ``moov``), so it is
playable while it is written and stays valid when the writer stops at any point. ffmpeg runs in
its own session: a Ctrl-C in the terminal reaches radnerf, which finishes the frames it owes and
closes the pipes, and not ffmpeg, which would otherwise drop what is still buffered.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from pathlib import Path
from typing import BinaryIO

import numpy as np

from radnerf_cli.errors import InputError

URL_FORMATS = {"rtmp": "flv", "rtmps": "flv", "udp": "mpegts", "srt": "mpegts", "tcp": "mpegts", "rtp": "rtp_mpegts"}


def is_url(target: str) -> bool:
    return "://" in target and not target.startswith("file://")


class _PipeFeeder:
    """A thread writing queued byte strings to one pipe; errors are kept for :meth:`close`."""

    def __init__(self, pipe: BinaryIO, name: str):
        self.pipe = pipe
        self.q: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                b = self.q.get()
                if b is None:
                    break
                self.pipe.write(b)
        except (BrokenPipeError, OSError, ValueError) as e:
            self.error = e
        finally:
            try:
                self.pipe.close()
            except OSError:
                pass

    def put(self, b: bytes) -> None:
        if self.error is None:
            self.q.put(b)

    def close(self, timeout: float = 60.0) -> None:
        self.q.put(None)
        self.thread.join(timeout)


class FfmpegSink:
    """Frames [H, W, 3] uint8 at 25 fps plus 16 kHz mono audio, encoded by ffmpeg to a file or URL."""

    def __init__(self, target: str, width: int, height: int, fps: int = 25, sample_rate: int = 16000,
                 fmt: str | None = None, crf: int = 20):
        from radnerf_cli import media

        self.target = target
        self.shape = (height, width, 3)
        self.frames = 0
        self.samples = 0
        url = is_url(target)
        if not url:
            p = Path(target)
            if p.parent and not p.parent.is_dir():
                raise InputError(f"{p}: folder {p.parent} does not exist")
            if p.exists() and p.is_dir():
                raise InputError(f"{p}: is a folder, not a video file")
            if fmt is None and p.suffix.lower() not in (".mp4", ".m4v", ".mov"):
                raise InputError(f"{p}: the live video must be an .mp4 (fragmented, playable while written)")
        fmt = fmt or (URL_FORMATS.get(target.split("://", 1)[0].lower()) if url else "mp4")
        r, w = os.pipe()
        cmd = [media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", str(fps),
               "-thread_queue_size", "512", "-i", "pipe:0",
               "-f", "s16le", "-ar", str(sample_rate), "-ac", "1", "-thread_queue_size", "512", "-i", f"pipe:{r}",
               "-map", "0:v", "-map", "1:a",
               "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-crf", str(crf),
               "-pix_fmt", "yuv420p", "-g", str(fps), "-c:a", "aac", "-b:a", "96k"]
        if fmt == "mp4":
            # the edit list keeps frame 0 at t=0 despite the AAC encoder's priming samples
            cmd += ["-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-use_editlist", "1"]
        # write each fragment out as it is made: a well-compressed face fills ffmpeg's output buffer
        # only after many seconds, and a reader would see nothing grow until then
        cmd += ["-flush_packets", "1"]
        if fmt:
            cmd += ["-f", fmt]
        cmd += [target]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(r,),
                                         start_new_session=True)
        finally:
            os.close(r)
        self._err_lines: list[str] = []
        self._err_thread = threading.Thread(target=self._read_err, daemon=True)
        self._err_thread.start()
        self.video = _PipeFeeder(self.proc.stdin, "ffmpeg-video")
        self.audio = _PipeFeeder(os.fdopen(w, "wb"), "ffmpeg-audio")

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self._err_lines.append(line.decode(errors="replace").rstrip())

    def write_frame(self, image: np.ndarray) -> None:
        if image.shape != self.shape:
            raise ValueError(f"frame must be {list(self.shape)}, got {list(image.shape)}")
        self.video.put(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
        self.frames += 1

    def write_audio(self, samples: np.ndarray) -> None:
        pcm = (np.clip(np.asarray(samples, np.float32), -1, 1) * 32767.0).astype("<i2")
        self.audio.put(pcm.tobytes())
        self.samples += pcm.size

    def close(self) -> None:
        """Finish the file (or stream); InputError naming the target when ffmpeg failed."""
        self.audio.close()
        self.video.close()
        try:
            rc = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._err_thread.join(5)
        if rc != 0:
            msg = self._err_lines[-1] if self._err_lines else f"ffmpeg exited with {rc}"
            raise InputError(f"{self.target}: could not write the live video ({msg})")

    def abort(self) -> None:
        self.proc.kill()
        self.proc.wait()


class RawSink:
    """Raw RGB frames (H*W*3 bytes each, 25 fps) on a binary stream, e.g. stdout; audio is not written."""

    def __init__(self, stream: BinaryIO, width: int, height: int):
        self.stream = stream
        self.shape = (height, width, 3)
        self.frames = 0
        self.closed_by_reader = False

    def write_frame(self, image: np.ndarray) -> None:
        if self.closed_by_reader:
            return
        try:
            self.stream.write(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
            self.stream.flush()
            self.frames += 1
        except BrokenPipeError:
            self.closed_by_reader = True  # the reading program went away: stop writing, quietly

    def write_audio(self, samples: np.ndarray) -> None:
        pass

    def close(self) -> None:
        if not self.closed_by_reader:
            try:
                self.stream.flush()
            except BrokenPipeError:
                pass

    def abort(self) -> None:
        pass


def open_sink(target: str, width: int, height: int, fmt: str | None = None):
    """``-``: raw RGB on stdout; a URL: ffmpeg streams to it; otherwise a fragmented mp4 file."""
    import sys

    if target == "-":
        return RawSink(sys.stdout.buffer, width, height)
    return FfmpegSink(target, width, height, fmt=fmt)

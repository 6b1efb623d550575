"""`radnerf stream`: PCM on stdin in, a growing fragmented mp4 (or raw RGB) out; Ctrl-C ends it cleanly."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from radnerf_cli import media

REPO = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def small_bundle() -> Path:
    """The tiny trained test subject at half size (32 x 32) as a bundle: quick to render on a CPU."""
    from radnerf_cli.engine.export import save_bundle
    from test_live_engine import _small_head

    path = Path(tempfile.mkdtemp(prefix="radnerf-live-")) / "small.radnerf"
    return save_bundle(_small_head(), path, subject="syn")


def video_frames(path: Path) -> int:
    """Video frames stored in a file (packets, not a decode resampled to a frame rate)."""
    r = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:v",
                        "-c", "copy", "-f", "framecrc", "-"], capture_output=True, text=True, check=True)
    return sum(1 for line in r.stdout.splitlines() if line.startswith("0,"))


def _pcm(seconds: float) -> bytes:
    t = np.arange(int(seconds * 16000)) / 16000
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (x * 32767).astype("<i2").tobytes()


def _start(*args: str, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.Popen([sys.executable, "-m", "radnerf_cli", "stream", "--model", str(small_bundle()), *args],
                            stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.PIPE, env=env)


def _wait_ready(proc: subprocess.Popen) -> str:
    """Read stderr until the command says it is streaming (the model is loaded and warmed up)."""
    seen = ""
    while "Ctrl-C" not in seen:
        line = proc.stderr.readline().decode(errors="replace")
        if not line:
            raise AssertionError(f"stream ended before starting: {seen}")
        seen += line
    return seen


def _feed(proc: subprocess.Popen, pcm: bytes, seconds_per_chunk: float = 0.04, watch=None) -> list:
    chunk = int(16000 * seconds_per_chunk) * 2
    seen = []
    t0 = time.perf_counter()
    for k in range(0, len(pcm), chunk):
        proc.stdin.write(pcm[k : k + chunk])
        proc.stdin.flush()
        time.sleep(max(0.0, t0 + (k + chunk) / 32000 - time.perf_counter()))
        if watch is not None:
            seen.append(watch())
    return seen


@pytest.mark.slow
def test_stream_pcm_on_stdin_writes_a_growing_playable_mp4(tmp_path):
    out = tmp_path / "live.mp4"
    proc = _start("--audio", "-", "--out", str(out))
    _wait_ready(proc)
    size = lambda: out.stat().st_size if out.exists() else 0  # noqa: E731
    sizes = _feed(proc, _pcm(3.0), watch=size)
    # fragments are written while the stream is still open (stdin not closed yet): the file grows, and it
    # can be read already. A slow machine may render the first frames only after the audio has arrived,
    # so keep watching (the stream stays open) until two fragments are in or a generous limit passes.
    t_end = time.perf_counter() + 600
    while len({s for s in sizes if s > 0}) < 3 and time.perf_counter() < t_end and proc.poll() is None:
        time.sleep(0.5)
        sizes.append(size())
    assert proc.poll() is None  # still streaming
    mid = [s for s in sizes if s > 0]
    assert len(set(mid)) >= 2 and mid == sorted(mid), sizes
    assert video_frames(out) > 0
    proc.stdin.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=600) == 0, err
    info = media.probe(out)
    n = video_frames(out)
    assert n == 75, err  # 3 s at 25 fps, as `radnerf render` makes of the same audio
    assert info.has_audio and abs(info.duration - 3.0) < 0.1, info
    assert "latency median" in err


@pytest.mark.slow
def test_stream_ctrl_c_ends_the_file_cleanly(tmp_path):
    out = tmp_path / "live.mp4"
    proc = _start("--audio", "-", "--out", str(out))
    _wait_ready(proc)
    _feed(proc, _pcm(1.6))
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=600) == 0, err
    assert "interrupted" in err
    n = video_frames(out)
    assert n == 40, err  # every frame owed for the 1.6 s taken in
    assert abs(media.probe(out).duration - 1.6) < 0.1


@pytest.mark.slow
def test_stream_raw_rgb_to_stdout_and_wav_input(tmp_path):
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(_pcm(0.8))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    r = subprocess.run([sys.executable, "-m", "radnerf_cli", "stream", "--model", str(small_bundle()),
                        "--audio", "-", "--out", "-", "--no-realtime"], input=buf.getvalue(), capture_output=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr.decode()
    assert len(r.stdout) == 20 * 32 * 32 * 3  # 20 frames of 32 x 32 RGB
    frames = np.frombuffer(r.stdout, np.uint8).reshape(20, 32, 32, 3)
    assert frames.std() > 1  # an image, not zeros


def test_stream_bad_input_is_one_clear_error(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    base = [sys.executable, "-m", "radnerf_cli", "stream", "-w", str(tmp_path)]
    r = subprocess.run([*base, "--out", str(tmp_path / "x.mp4")], capture_output=True, env=env, timeout=600)
    assert r.returncode == 1 and "give the audio with --audio - (stdin)" in r.stderr.decode()
    r = subprocess.run([*base, "--audio", str(tmp_path / "none.wav"), "--out", str(tmp_path / "x.mp4")],
                       capture_output=True, env=env, timeout=600)
    assert r.returncode == 1 and "none.wav: file not found" in r.stderr.decode()
    r = subprocess.run([*base, "--audio", "-", "--sizes", "2", "--out", "x.mp4"], capture_output=True, env=env,
                       timeout=600)
    assert r.returncode == 1 and "--sizes 2: every size must be in (0, 1]" in r.stderr.decode()

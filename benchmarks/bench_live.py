"""Live latency on this machine: from an audio chunk entering to the frame showing that sound leaving.

    python -m benchmarks.bench_live [--quick]

Trains the synthetic subject the render benchmark uses, then plays synthetic speech into the live
engine in 20 ms chunks at real-time pace, once per render size (that size alone, with holds when it
is too slow) and once with the scheduler free to degrade through all sizes. Reports the median and
95th-percentile latency, the render cost per frame and the share of frames that had to be held.
It also works out what the same design reaches on a GPU rendering 450 px at RAD-NeRF's reported
40 fps: the audio the windows need, plus one chunk, plus one 25 ms render.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CHUNK = 320  # 20 ms


def _play(engine, audio: np.ndarray) -> list:
    def feed():
        t0 = time.perf_counter()
        for k in range(0, audio.size, CHUNK):
            time.sleep(max(0.0, t0 + (k + CHUNK) / 16000 - time.perf_counter()))
            engine.feed(audio[k : k + CHUNK])
        engine.end()

    th = threading.Thread(target=feed, daemon=True)
    th.start()
    frames = list(engine.frames())
    th.join()
    return frames


def measure(head, audio: np.ndarray, sizes, latency: float | None = None) -> dict:
    from radnerf_cli.engine.live import LiveEngine, LiveOptions

    eng = LiveEngine(head, LiveOptions(sizes=sizes, latency=latency))
    costs = eng.warm_up()
    frames = _play(eng, audio)
    st = eng.stats()
    held = sum(f.level == "hold" for f in frames)
    return {
        "sizes": ",".join(f"{s:g}" for s in sizes),
        "render_px": "/".join(f"{round(head.W * s)}" for s in sizes),
        "ms_per_render": "/".join(f"{c * 1000:.0f}" for c in costs.values()),
        "frames": len(frames),
        "held_pct": round(100 * held / max(1, len(frames)), 1),
        "levels": st["levels"],
        "latency_median_ms": round(1000 * st["latency_median"]),
        "latency_p95_ms": round(1000 * st["latency_p95"]),
        "stated_latency_ms": round(1000 * st["stated_latency"]),
        "late_frames": st["late"],
    }


def gpu_estimate(audio_wait_s: float) -> dict:
    """The same pipeline with RAD-NeRF's reported speed (450 x 450 at 40 fps) and mel features."""
    render = 1 / 40
    return {
        "audio_windows_ms": round(1000 * audio_wait_s),
        "chunk_ms": round(1000 * CHUNK / 16000),
        "render_ms": round(1000 * render),
        "latency_ms": round(1000 * (audio_wait_s + CHUNK / 16000 + render)),
        "fps": 25,
    }


def run(quick: bool = False) -> dict:
    from rich.table import Table

    from benchmarks.bench_render import _train
    from radnerf_cli.console import console
    from radnerf_cli.demo.speech import SpeechConfig, synthesize_speech
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.engine.live import DEFAULT_SIZES, LiveEngine, LiveOptions
    from radnerf_cli.workspace import Workspace

    size, seconds, iters = (64, 2.0, 100) if quick else (64, 6.0, 300)
    tmp = Path(tempfile.mkdtemp(prefix="radnerf-bench-live-"))
    try:
        _train(tmp / "ws", size, 60, iters)
        head = TalkingHead.from_subject(Workspace(tmp / "ws").subject("bench"), device="cpu")
        audio, _ = synthesize_speech(SpeechConfig(duration=seconds, seed=5))
        audio = np.asarray(audio, np.float32)
        rows = [measure(head, audio, [s]) for s in DEFAULT_SIZES]
        rows.append(measure(head, audio, DEFAULT_SIZES))
        wait = LiveEngine(head, LiveOptions()).audio_wait
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = Table(title=f"live latency (cpu, {size}x{size} subject, 20 ms chunks, real-time pace)", show_edge=False)
    for k in rows[0]:
        table.add_column(k)
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    console.print(table)
    gpu = gpu_estimate(wait)
    console.print(f"GPU at RAD-NeRF's 40 fps (450 px), mel features: {gpu['latency_ms']} ms "
                  f"= {gpu['audio_windows_ms']} ms audio windows + {gpu['chunk_ms']} ms chunk + {gpu['render_ms']} ms render")
    return {"cpu": rows, "gpu_estimate": gpu}


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)

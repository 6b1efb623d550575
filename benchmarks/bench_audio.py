"""Audio feature extraction speed: whisper and mel on the shared speech clips, in x real time.

    python benchmarks/bench_audio.py [--quick]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from rich.table import Table

from radnerf_cli.audio import extract_features
from radnerf_cli.audio.whisper import default_device, load_model
from radnerf_cli.console import console
from radnerf_cli.media import load_audio

DATA = Path(os.environ.get("RADNERF_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
CLIPS = ("speech_jfk.flac", "speech_ian.wav")


def _best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(quick: bool = False) -> dict:
    """Time each extractor on each clip; returns {clip: {kind: {seconds, x_realtime, frames}}}."""
    if not DATA.is_dir():
        raise SystemExit(f"shared test data not found at {DATA}")
    repeat = 1 if quick else 3
    device = default_device()
    load_model(device=device)  # weights load once, outside the timings
    results: dict = {"device": device}
    table = Table(title=f"audio features (whisper on {device})")
    for col in ("clip", "seconds of audio", "kind", "frames", "time (s)", "x real time"):
        table.add_column(col, justify="right" if col not in ("clip", "kind") else "left")
    for name in CLIPS:
        audio = load_audio(DATA / name)
        dur = audio.size / 16000
        results[name] = {}
        for kind in ("whisper", "mel"):
            feats = extract_features(audio, kind, progress=False)  # warm-up
            t = _best_time(lambda a=audio, k=kind: extract_features(a, k, progress=False), repeat)
            results[name][kind] = {"seconds": t, "x_realtime": dur / t, "frames": int(feats.shape[0])}
            table.add_row(name, f"{dur:.2f}", kind, str(feats.shape[0]), f"{t:.3f}", f"{dur / t:,.1f}")
    console.print(table)
    return results


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)

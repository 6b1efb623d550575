"""Whole preprocess of the shared 71-s clip: seconds and frames/s per step, and x real time.

    python benchmarks/bench_preprocess.py [--quick]

Target (the issue): under 2x the clip's duration on a 2-core CPU; goal: faster than real time.
``--quick`` runs a 15-s cut instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.table import Table

from radnerf_cli.console import console

DATA = Path(os.environ.get("RADNERF_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
CLIP = "anchor_cnn_25fps.mp4"


def run(quick: bool = False) -> dict:
    """Preprocess the clip into a temporary workspace; returns per-step seconds and rates."""
    from radnerf_cli import media
    from radnerf_cli.preprocess.config import PreprocessConfig
    from radnerf_cli.preprocess.pipeline import run_preprocess
    from radnerf_cli.workspace import Workspace

    src = DATA / CLIP
    if not src.is_file():
        raise SystemExit(f"shared test data not found at {src}")
    with tempfile.TemporaryDirectory(prefix="radnerf-bench-pre-") as tmp:
        video = src
        if quick:
            video = Path(tmp) / "cut15.mp4"
            subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-t", "15",
                            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "aac", str(video)], check=True)
        duration = media.probe(video).duration
        subj = Workspace(Path(tmp) / "ws").subject("bench")
        t0 = time.perf_counter()
        s = run_preprocess(video, subj, PreprocessConfig(), show=False)
        total = time.perf_counter() - t0
    frames = s["frames"]
    table = Table(title=f"preprocess {video.name}: {frames} frames, {duration:.1f} s of video", show_edge=False)
    for col in ("step", "seconds", "cpu seconds", "items", "items/s", "video frames/s"):
        table.add_column(col, justify="left" if col == "step" else "right")
    steps = {}
    for name, v in s["steps"].items():
        sec = v["seconds"]
        cpu = v.get("cpu_seconds") or 0.0
        steps[name] = {"seconds": sec, "cpu_seconds": cpu, "items": v["items"],
                       "items_per_s": v["items"] / sec if sec else None, "frames_per_s": frames / sec if sec else None}
        table.add_row(name, f"{sec:.2f}", f"{cpu:.2f}", str(v["items"]), f"{v['items'] / sec:.1f}" if sec else "",
                      f"{frames / sec:.1f}" if sec else "")
    cpu_total = sum(v["cpu_seconds"] for v in steps.values())
    table.add_row("total", f"{total:.2f}", f"{cpu_total:.2f}", str(frames), "", f"{frames / total:.1f}")
    console.print(table)
    ratio = total / duration
    verdict = "faster than real time" if ratio < 1 else ("within the 2x target" if ratio < 2 else "OVER the 2x target")
    console.print(f"total {total:.1f} s for {duration:.1f} s of video = {ratio:.2f}x the clip's duration ({verdict})")
    # wall time depends on what else runs on the machine; CPU time does not. On an idle 2-core
    # machine the wall time cannot be below half the CPU time.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    console.print(f"CPU time {cpu_total:.1f} s (processes and ffmpeg children); load average at the end {load:.1f} "
                  f"on {os.cpu_count()} cores")
    return {"clip": video.name, "frames": frames, "video_seconds": duration, "total_seconds": total,
            "x_duration": ratio, "cpu_seconds": cpu_total, "load_average": load, "steps": steps, "focal": s["focal"], "jitter_raw_deg": s["jitter_raw_deg"],
            "jitter_smooth_deg": s["jitter_smooth_deg"], "reproj_px_mean": s["reproj_px_mean"]}


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)

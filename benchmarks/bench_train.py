"""Training and inference speed of the model on a synthetic 450x450 subject.

    python benchmarks/bench_train.py [--quick] [--threads N]

Measures, per device (cpu, and cuda when present): training rays/s and network samples/s of the
head stage (fast preset's rays per step, full resolution), torso rays/s, inference frames/s at
450x450 and 256x256 (after a short training, so the occupancy grid is pruned like a real model's),
and peak memory. Target on a 2-core CPU: inference >= 1 frame/s at 450x450.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.table import Table

from radnerf_cli.console import console

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _resized(th, size: int):
    """The same model rendering at ``size`` x ``size`` (intrinsics and background scaled)."""
    import cv2

    from radnerf_cli.engine.inference import TalkingHead

    tensors, meta = th.state_and_meta()
    s = size / th.W
    meta = dict(meta, H=size, W=size, intrinsics=[float(v) * s for v in meta["intrinsics"]])
    bg = cv2.resize(th.background, (size, size), interpolation=cv2.INTER_AREA)
    tensors["data/background"] = torch.from_numpy(bg)
    return TalkingHead.from_state(tensors, meta, device=th.device)


def _fps(th, frames: int) -> tuple[float, float]:
    """Frames per second of ``render_frame`` (after one warm-up frame) and head samples per frame."""
    aud = torch.zeros(8, 16, th.feature_dim)
    th.reset()
    th.render_frame(th.pose_track[0], aud, None)  # warm-up
    count = [0]
    geometry = th.model.head.geometry

    def counting(x, *a, **k):
        count[0] += x.shape[0]
        return geometry(x, *a, **k)

    th.model.head.geometry = counting
    t0 = time.perf_counter()
    for i in range(frames):
        th.render_frame(th.pose_track[i % len(th.pose_track)], aud, None)
    fps = frames / (time.perf_counter() - t0)
    th.model.head.geometry = geometry
    return fps, count[0] / frames


def _bench_device(root: Path, device: str, quick: bool) -> dict:
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.engine.trainer import Trainer
    from radnerf_cli.model.config import load_run_config
    from radnerf_cli.workspace import Workspace

    sub = Workspace(root).find_subject("bench")
    import shutil

    shutil.rmtree(sub.run_dir, ignore_errors=True)
    # Train at 225x225 (downscale 2, the fast preset's) long enough for the occupancy grid to be
    # pruned like a real model's, then render the same model at 450x450 and 256x256.
    head_iters = 150 if quick else 1500
    over = ["train.downscale=2", f"train.head_iters={head_iters}", "train.torso_iters=40", "train.lips_iters=1",
            "train.preview_every=100000", "train.val_frames=1", "train.log_every=50"]
    preset = "full" if device == "cuda" else "fast"
    if device == "cuda":
        over += ["train.num_rays=65536"]
    cfg = load_run_config(preset, None, over)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    tr = Trainer(sub, cfg, device, quiet=True)
    head, _, torso = tr.run(["head", "lips", "torso"])
    th = TalkingHead.from_subject(sub, device=device)
    n = 3 if quick else 8
    out = {
        "preset": preset,
        "rays_per_step": int(cfg.train.num_rays),
        "head_it_per_s": head.it_per_s,
        "head_rays_per_s": head.rays_per_s,
        "head_samples_per_s": head.samples_per_s,
        "torso_rays_per_s": torso.rays_per_s,
        "threads": torch.get_num_threads(),
    }
    out["fps_450"], out["samples_per_frame_450"] = _fps(_resized(th, 450), n)
    out["fps_256"], out["samples_per_frame_256"] = _fps(_resized(th, 256), n)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run(quick: bool = False) -> dict:
    """Benchmark every available device; returns {device: {metric: value}}."""
    from synthetic_scene import make_synthetic_subject

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="radnerf-bench-") as tmp:
        root = Path(tmp)
        with console.status("making a 450x450 synthetic subject"):
            make_synthetic_subject(root / "subjects" / "bench", n_frames=12 if quick else 24, size=450, feature_dim=44)
        for dev in devices:
            with console.status(f"training and rendering on {dev}"):
                results[dev] = _bench_device(root, dev, quick)
    table = Table(title=f"training and inference speed (synthetic 450x450 subject, {torch.get_num_threads()} threads)")
    rows = [
        ("preset", "preset"),
        ("rays per step", "rays_per_step"),
        ("head it/s", "head_it_per_s"),
        ("head rays/s", "head_rays_per_s"),
        ("head samples/s", "head_samples_per_s"),
        ("torso rays/s", "torso_rays_per_s"),
        ("frames/s at 450x450", "fps_450"),
        ("frames/s at 256x256", "fps_256"),
        ("samples per frame at 450x450", "samples_per_frame_450"),
        ("peak RSS (MB)", "peak_rss_mb"),
    ]
    table.add_column("metric")
    for dev in results:
        table.add_column(dev, justify="right")
    for name, key in rows:
        cells = []
        for r in results.values():
            v = r[key]
            cells.append(v if isinstance(v, str) else (f"{v:,.0f}" if v >= 100 else f"{v:.2f}"))
        table.add_row(name, *cells)
    console.print(table)
    if "cuda" in results:
        console.print(f"peak CUDA memory: {results['cuda']['peak_cuda_mb']:.0f} MB")
    ok = results["cpu"]["fps_450"] >= 1.0
    console.print(f"cpu inference at 450x450: {results['cpu']['fps_450']:.2f} frames/s (target >= 1: {'met' if ok else 'NOT met'})")
    return results


if __name__ == "__main__":
    if "--threads" in sys.argv:  # e.g. --threads 1 on a machine shared with other jobs
        torch.set_num_threads(int(sys.argv[sys.argv.index("--threads") + 1]))
    run(quick="--quick" in sys.argv)

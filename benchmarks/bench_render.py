"""Render speed on CPU: a small trained model speaking new audio, end to end into an mp4.

    python -m benchmarks.bench_render [--quick]

Trains a synthetic subject for a few hundred steps (render speed depends on the image size and on
how sparse the occupancy grid has become, reported as ``occupied_fraction``), then times `radnerf render`'s engine:
loading the model, audio features, the frame loop and the H.264/AAC encoding.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _train(root: Path, size: int, frames: int, iters: int) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from radnerf_cli.engine.trainer import Trainer
    from radnerf_cli.model.config import load_run_config
    from radnerf_cli.workspace import Workspace
    from synthetic_scene import make_synthetic_subject

    sub = Workspace(root).subject("bench")
    make_synthetic_subject(sub.root, n_frames=frames, size=size, feature_dim=80)
    cfg = load_run_config("fast", overrides=["train.downscale=1", "train.num_rays=1024", f"train.head_iters={iters}",
                                             "train.lips_iters=0", "train.torso_iters=10", "train.ckpt_every=1000",
                                             "train.preview_every=1000", "train.val_frames=1"])
    Trainer(sub, cfg, device="cpu", quiet=True).run(["head", "torso"])
    return root


def run(quick: bool = False) -> dict:
    """Frames per second of the render loop and of the whole command, on CPU."""
    import torch

    from radnerf_cli import media
    from radnerf_cli.demo.speech import SpeechConfig, synthesize_speech
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.engine.render_video import RenderOptions, load_render_audio, render_video
    from radnerf_cli.workspace import Workspace

    # A barely trained model is still fog everywhere and marches every ray through the whole box;
    # a few hundred steps make the occupancy grid sparse, as in a real model.
    size, seconds, iters = (64, 1.0, 100) if quick else (64, 4.0, 300)
    tmp = Path(tempfile.mkdtemp(prefix="radnerf-bench-render-"))
    try:
        t0 = time.perf_counter()
        _train(tmp / "ws", size, 60, iters)
        train_s = time.perf_counter() - t0
        wav = tmp / "speech.wav"
        audio, _ = synthesize_speech(SpeechConfig(duration=seconds, seed=5))
        media.write_wav(wav, audio)
        t0 = time.perf_counter()
        head = TalkingHead.from_subject(Workspace(tmp / "ws").subject("bench"), device="cpu")
        load_s = time.perf_counter() - t0
        bits = [v for k, v in head.model.state_dict().items() if k.endswith("bitfield")]
        occupied = float(np.unpackbits(bits[0].numpy()).mean()) if bits else float("nan")
        t1 = time.perf_counter()
        clip = load_render_audio(wav, head.feature_kind)
        feat_s = time.perf_counter() - t1
        res = render_video(head, clip, tmp / "out.mp4", RenderOptions(), show_progress=False)
        total_s = time.perf_counter() - t0
        frames = res.frames
        out = {
            "device": "cpu",
            "threads": torch.get_num_threads(),
            "image": f"{size}x{size}",
            "train_steps": iters,
            "occupied_fraction": round(occupied, 3),
            "frames": frames,
            "render_fps": round(res.fps, 2),
            "end_to_end_fps": round(frames / total_s, 2),
            "model_load_s": round(load_s, 2),
            "audio_features_s": round(feat_s, 2),
            "train_setup_s": round(train_s, 1),
            "ms_per_frame": round(1000 * res.seconds / max(frames, 1), 1),
            "mp4_bytes": (tmp / "out.mp4").stat().st_size,
        }
        assert np.isfinite(out["render_fps"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return print_results("render (cpu, end to end)", out)


def print_results(title: str, out: dict) -> dict:
    """``out`` as a one-row table, a column per key; returns ``out``."""
    from rich.table import Table

    from radnerf_cli.console import console

    table = Table(title=title, show_edge=False)
    for k in out:
        table.add_column(k)
    table.add_row(*(str(v) for v in out.values()))
    console.print(table)
    return out


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)

"""Portrait render speed: the face pasted into the real frames vs the whole crop synthesized, same audio.

    python -m benchmarks.bench_portrait [--quick]

Renders 10 s of speech twice in one run with the same model: the whole crop (head, torso and
background synthesized at the model's size) and portrait mode (only the face rays rendered, pasted
into the source frames at the source's size). With ``RADNERF_BENCH_SUBJECT=WORKSPACE:NAME`` it uses
that trained subject (it needs its source video); otherwise a synthetic subject trained here, with a
stand-in source video larger than its crop.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC_W, SRC_H, CROP = 320, 288, (40, 16, 256, 256)  # the synthetic subject's stand-in source video


def _synthetic(root: Path, quick: bool):
    sys.path.insert(0, str(REPO / "tests"))
    from benchmarks.bench_render import _train
    from portrait_video import write_source_video
    from radnerf_cli.workspace import Workspace

    size, iters = (64, 100) if quick else (128, 300)
    _train(root / "ws", size, 60, iters)
    sub = Workspace(root / "ws").subject("bench")
    write_source_video(sub.dataset, root / "source.mp4", SRC_W, SRC_H, CROP)
    return sub


def run(quick: bool = False) -> dict:
    import torch

    from benchmarks.bench_render import print_results
    from radnerf_cli import media
    from radnerf_cli.demo.speech import SpeechConfig, synthesize_speech
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.engine.portrait import check_track, track_source
    from radnerf_cli.engine.render_video import RenderOptions, load_render_audio, render_video
    from radnerf_cli.workspace import Workspace

    seconds = 2.0 if quick else 10.0
    tmp = Path(tempfile.mkdtemp(prefix="radnerf-bench-portrait-"))
    try:
        spec = os.environ.get("RADNERF_BENCH_SUBJECT")
        if spec:
            ws, name = spec.rsplit(":", 1)
            sub = Workspace(ws).subject(name)
        else:
            sub = _synthetic(tmp, quick)
        wav = tmp / "speech.wav"
        audio, _ = synthesize_speech(SpeechConfig(duration=seconds, seed=7))
        media.write_wav(wav, audio)
        head = TalkingHead.from_subject(sub, device="cpu")
        clip = load_render_audio(wav, head.feature_kind)
        src = track_source(sub)
        check_track(src, head, sub.name)
        whole = render_video(head, clip, tmp / "whole.mp4", RenderOptions(), show_progress=False)
        t0 = time.perf_counter()
        port = render_video(head, clip, tmp / "portrait.mp4", RenderOptions(portrait=True), portrait=src,
                            show_progress=False)
        port_total = time.perf_counter() - t0
        src.close()
        out = {
            "subject": sub.name,
            "device": "cpu",
            "threads": torch.get_num_threads(),
            "audio_s": seconds,
            "frames": port.frames,
            "whole_crop": f"{whole.size[0]}x{whole.size[1]}",
            "whole_fps": round(whole.fps, 2),
            "whole_rays_per_frame": int(whole.rays_per_frame),
            "portrait": f"{port.size[0]}x{port.size[1]}",
            "portrait_fps": round(port.fps, 2),
            "portrait_rays_per_frame": int(port.rays_per_frame),
            "portrait_speedup": round(port.fps / whole.fps, 2) if whole.fps > 0 else None,
            "portrait_s_with_setup": round(port_total, 1),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return print_results("portrait vs whole-crop render (cpu, same audio, same run)", out)


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)

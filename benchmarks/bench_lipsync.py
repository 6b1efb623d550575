"""Lip sync and head quality of the `fast` preset on the shared clip, against the bars.

    python -m benchmarks.bench_lipsync [--quick] [--workspace DIR]

Preprocesses ../shared/data/anchor_cnn_25fps.mp4 (71 s), trains all three stages with
``--preset fast`` (timed), then evaluates the held-out last 1/11 of the clip and renders two other
speakers (speech_jfk.flac, speech_ian.wav) for the lip-sync measure. A workspace that already holds
a trained ``anchor`` subject is reused (``--workspace``); ``--quick`` trains on the first 20 s only.

Bars: opening spread >= 0.7x the real video's on held-out audio and on other speakers; agreement
with the audio positive and >= half the real video's on the held-out split, best offset within 2
frames of 0; held-out head PSNR (over the real torso) >= 31; all stages in under 15 minutes. And for
the frame a user ships: whole synthesized frame >= 27 dB, portrait >= 32 dB, head >= 31.5 dB.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.table import Table

from radnerf_cli.console import console

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIP = SHARED / "anchor_cnn_25fps.mp4"
OTHERS = [SHARED / "speech_jfk.flac", SHARED / "speech_ian.wav"]


def _prepare(ws: Path, quick: bool) -> tuple[float | None, float | None]:
    """Preprocess and train the subject unless already done: (preprocess s, train s)."""
    from radnerf_cli import media
    from radnerf_cli.engine.inference import latest_stage
    from radnerf_cli.engine.trainer import Trainer
    from radnerf_cli.model.config import STAGES, load_run_config
    from radnerf_cli.preprocess import PreprocessConfig
    from radnerf_cli.preprocess.pipeline import run_preprocess
    from radnerf_cli.workspace import Workspace

    sub = Workspace(ws).subject("anchor")
    t_pre = t_train = None
    if not (sub.dataset / "transforms_val.json").is_file():
        src = CLIP
        if quick:
            src = ws / "anchor_20s.mp4"
            if not src.is_file():
                import subprocess

                src.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-i", str(CLIP), "-t", "20", str(src)], check=True)
        t0 = time.perf_counter()
        run_preprocess(src, sub, PreprocessConfig(), show=False)
        t_pre = time.perf_counter() - t0
    if latest_stage(sub) != "torso":
        overrides = ["train.head_iters=1500", "train.torso_iters=1000"] if quick else []
        cfg = load_run_config("fast", overrides=overrides)
        t0 = time.perf_counter()
        Trainer(sub, cfg).run(list(STAGES))
        t_train = time.perf_counter() - t0
    return t_pre, t_train


def run(quick: bool = False, workspace: str | None = None) -> dict:
    from radnerf_cli.engine.evaluate import evaluate
    from radnerf_cli.workspace import Workspace

    if not CLIP.is_file():
        return {"skipped": f"{CLIP} not found"}
    ws = Path(workspace) if workspace else Path("bench-results") / ("lipsync-quick" if quick else "lipsync")
    t_pre, t_train = _prepare(ws, quick)
    sub = Workspace(ws).subject("anchor")
    others = [str(p) for p in OTHERS if p.is_file()]
    res_head = evaluate(sub, stage="lips", video=False, show=False, audios=[])
    res = evaluate(sub, video=True, show=False, audios=others, audio_seconds=8.0)
    ls = res["lipsync"]
    h = ls["heldout"]
    real_sync = h["real"]["sync"]["corr"]
    out = {
        "preprocess_seconds": t_pre,
        "train_seconds": t_train,
        "head_psnr_over_real_torso": res_head["psnr"],
        "head_lpips": res_head["lpips"],
        "whole_frame_psnr": res["psnr"],
        "whole_frame_lpips": res["lpips"],
        "portrait_psnr": (res["protocols"].get("portrait") or {}).get("psnr"),
        "portrait_lpips": (res["protocols"].get("portrait") or {}).get("lpips"),
        "lmd": res["lmd"],
        "lmd_uncentred": h["mouth_error"]["lmd_uncentred"],
        "heldout": {
            "spread_ratio": h["render"]["amplitude_ratio"],
            "sync": h["render"]["sync"]["corr"],
            "best_offset": h["render"]["sync"]["best_offset"],
            "real_sync": real_sync,
        },
        "other_speakers": [
            {"audio": Path(a["audio"]).name, "spread_ratio": a["amplitude_ratio"],
             "sync": a["sync"]["corr"] if a["sync"] else None,
             "best_offset": a["sync"]["best_offset"] if a["sync"] else None}
            for a in ls["audio"]
        ],
    }
    bars = {
        "heldout spread >= 0.7x": (out["heldout"]["spread_ratio"] or 0) >= 0.7,
        "other speakers spread >= 0.7x": all((o["spread_ratio"] or 0) >= 0.7 for o in out["other_speakers"]),
        "heldout sync > 0 and >= half real": (out["heldout"]["sync"] or 0) > 0
        and (out["heldout"]["sync"] or 0) >= 0.5 * (real_sync or 0),
        "heldout best offset within 2": out["heldout"]["best_offset"] is not None
        and abs(out["heldout"]["best_offset"]) <= 2,
        "head PSNR >= 31": (out["head_psnr_over_real_torso"] or 0) >= 31,
        "train < 15 min": t_train is None or t_train < 900,
        # the frame a user ships (the portrait/torso bars)
        "whole frame PSNR >= 27": (out["whole_frame_psnr"] or 0) >= 27,
        "portrait PSNR >= 32": (out["portrait_psnr"] or 0) >= 32,
        "head PSNR >= 31.5": (out["head_psnr_over_real_torso"] or 0) >= 31.5,
    }
    out["bars"] = bars
    t = Table(title="lip sync, fast preset, shared clip" + (" (quick)" if quick else ""))
    t.add_column("clip")
    t.add_column("spread vs real", justify="right")
    t.add_column("sync r (best offset)", justify="right")
    t.add_row("held-out, real video", "1.00x", f"{real_sync:+.2f}" if real_sync is not None else "-")
    t.add_row("held-out, render", f"{out['heldout']['spread_ratio']:.2f}x",
              f"{out['heldout']['sync']:+.2f} ({out['heldout']['best_offset']:+d})")
    for o in out["other_speakers"]:
        t.add_row(o["audio"], f"{o['spread_ratio']:.2f}x" if o["spread_ratio"] is not None else "-",
                  f"{o['sync']:+.2f} ({o['best_offset']:+d})" if o["sync"] is not None else "-")
    console.print(t)
    portrait = "-" if out["portrait_psnr"] is None else f"{out['portrait_psnr']:.2f} dB / {out['portrait_lpips']:.3f}"
    console.print(f"head over the real torso {out['head_psnr_over_real_torso']:.2f} dB / {out['head_lpips']:.3f}, "
                  f"whole frame {out['whole_frame_psnr']:.2f} dB / {out['whole_frame_lpips']:.3f}, portrait "
                  f"{portrait} (PSNR / LPIPS), " + ("trained before (reused)" if t_train is None else f"train {t_train:.0f} s"))
    for k, v in bars.items():
        console.print(f"  {'[green]met[/green]' if v else '[red]missed[/red]'}  {k}")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workspace", default=None)
    a = ap.parse_args()
    run(a.quick, a.workspace)

"""How far the trained field opens the mouth when the audio is taken out of the loop.

    RADNERF_BENCH_SUBJECT=WORKSPACE:NAME python -m benchmarks.run --only field [--quick]

Renders the first held-out frames of a trained subject (``model.audio_path=mouth``) at their own
poses, head over the real torso, three times: driven by the mouth codes the audio predicts, by the
codes tracked from the real frames (what the field can show at all, whatever the audio), and by the
tracked codes doubled (does the field saturate?). Each render and the real frames are tracked with
the face mesh; the table gives the spread of the mouth opening against the real frames' and the
per-frame correlation of the two openings. Without ``RADNERF_BENCH_SUBJECT`` it uses the subject
the ``lipsync`` suite trains (bench-results/lipsync), and is skipped when there is none.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

MODES = ("predicted", "tracked", "tracked x2")


def _subject():
    from radnerf_cli.engine.inference import latest_stage
    from radnerf_cli.workspace import Workspace

    spec = os.environ.get("RADNERF_BENCH_SUBJECT")
    ws, name = spec.rsplit(":", 1) if spec else (str(Path("bench-results") / "lipsync"), "anchor")
    sub = Workspace(ws).subject(name)
    return sub if sub.has_dataset and latest_stage(sub) is not None else None


def run(quick: bool = False) -> dict:
    from radnerf_cli.data import SubjectData, audio_window
    from radnerf_cli.data.mouth_code import mouth_codes
    from radnerf_cli.engine import eval_protocols as ep
    from radnerf_cli.engine.evaluate import load_split
    from radnerf_cli.engine.inference import TalkingHead, stage_checkpoint
    from radnerf_cli.metrics import lipsync as L
    from radnerf_cli.preprocess.landmarks import FaceTracker

    sub = _subject()
    if sub is None:
        return {"skipped": "no trained subject (set RADNERF_BENCH_SUBJECT=WORKSPACE:NAME or run the lipsync suite)"}
    stage = "lips" if stage_checkpoint(sub, "lips").is_file() else "head"
    head = TalkingHead.from_subject(sub, device="cpu", stage=stage)
    if head.cfg.model.audio_path != "mouth":
        return {"skipped": f"{sub.name} was trained with model.audio_path={head.cfg.model.audio_path}: no mouth code"}
    val = load_split(sub, "val", head)
    train = SubjectData(sub.dataset, "train", feature=head.feature_kind, preload=False, downscale=val.downscale)
    _, _, rest = mouth_codes(train.lms68, head.cfg.model.mouth_dim, {"val": val.lms68})
    tracked = rest["val"]
    n = min(len(val), 16 if quick else 80)
    bg_u8 = (val.bg.numpy() * 255 + 0.5).astype(np.uint8)
    tracker = FaceTracker()
    openings: dict[str, np.ndarray] = {}
    try:
        real = L.track((val.image_uint8(i) for i in range(n)), tracker)
        codes = {"predicted": None, "tracked": tracked, "tracked x2": 2.0 * tracked}
        torsos = [ep.real_torso_background(val.torso_uint8(i), bg_u8) for i in range(n)]  # the same for each mode
        for mode in MODES:
            head.reset()
            frames = []
            for i in range(n):
                aud = audio_window(val.auds, int(val.aud_ids[i]))
                eye = None if val.eye is None else float(val.eye[i])
                code = None if codes[mode] is None else codes[mode][i]
                layers = head.render_layers(val.poses_raw[i], aud, eye, mouth_code=code)  # no_grad inside
                frames.append(ep.head_frame(layers, torsos[i], val.H, val.W))
            openings[mode] = L.track(frames, tracker).opening
    finally:
        tracker.close()
    real_std = L.spread(real.opening)["std"]
    out: dict = {"subject": sub.name, "stage": stage, "frames": n, "real_spread": real_std, "modes": {}}
    for mode in MODES:
        s = L.spread(openings[mode])["std"]
        r = L.pearson(openings[mode], real.opening)
        out["modes"][mode] = {"spread_vs_real": round(s / real_std, 3) if (s is not None and real_std) else None,
                              "r_with_real_opening": round(r, 3) if r is not None else None}
    _print(out)
    return out


def _print(out: dict) -> None:
    from rich.table import Table

    from radnerf_cli.console import console

    t = Table(title=f"field of {out['subject']} ({out['stage']}): mouth opening on {out['frames']} held-out frames")
    for col in ("codes driving the field", "spread vs real", "r with the real opening"):
        t.add_column(col, justify="left" if col.startswith("codes") else "right")
    for mode, m in out["modes"].items():
        t.add_row(mode, *("-" if v is None else f"{v:.2f}" for v in (m["spread_vs_real"], m["r_with_real_opening"])))
    console.print(t)


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)

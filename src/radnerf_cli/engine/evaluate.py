"""Evaluate a trained subject on its held-out frames: PSNR, LPIPS (AlexNet) and LMD, as in RAD-NeRF.

Each frame of the split is rendered with its own pose, audio window and eye value and compared with
its ground truth (``gt_imgs``):

    PSNR   on the whole frame, in dB (images in [0, 1])
    LPIPS  AlexNet, v0.1 linear heads, on the whole frame
    LMD    mouth landmarks (iBUG 48-67) of render and ground truth found by the same face tracker as
           preprocess, each set centred on its mean, mean Euclidean distance in pixels; frames where
           either face is not found are left out of the mean (and counted)

A model without a trained torso is rendered over the ground-truth torso composited on the
background, as RAD-NeRF evaluates its head stage. Writes, under ``out_dir`` (default
``run/eval``): ``metrics.json`` (means and per-frame values), ``{split}.mp4`` (render | ground truth,
with the split's audio) and ``{split}_samples.png`` (render | ground truth | error, a few frames).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from radnerf_cli.errors import WorkspaceError
from radnerf_cli.render.composite import torso_over

if TYPE_CHECKING:
    from radnerf_cli.workspace import Subject

FPS = 25  # dataset frame rate
MOUTH = slice(48, 68)  # iBUG-68 mouth landmarks (outer and inner lips)
# ER-NeRF (ICCV'23) Table 1, RAD-NeRF row: the reference numbers printed beside ours
REFERENCE = {"psnr": 33.13, "lpips": 0.0519, "lmd": 2.812}
N_SAMPLES = 4  # frames shown in the samples PNG


def lmd(pred_lms: np.ndarray, gt_lms: np.ndarray) -> float:
    """Landmark distance of the mouth: [68, 2] (or [20, 2] mouth-only) sets, each centred on its mean.

    >>> a = np.zeros((20, 2)); b = a + 5.0   # the same mouth, moved
    >>> lmd(a, b)
    0.0
    """
    p, g = np.asarray(pred_lms, dtype=np.float64), np.asarray(gt_lms, dtype=np.float64)
    if p.shape != g.shape or p.ndim != 2 or p.shape[1] != 2 or p.shape[0] not in (68, 20):
        raise ValueError(f"landmarks must be two [68, 2] or [20, 2] arrays, got {p.shape} and {g.shape}")
    if p.shape[0] == 68:
        p, g = p[MOUTH], g[MOUTH]
    p = p - p.mean(0)
    g = g - g.mean(0)
    return float(np.sqrt(((p - g) ** 2).sum(1)).mean())


def _mean(values: list[float | None]) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else None


def _error_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-pixel absolute error as an 'inferno' heat map (uint8 [H, W, 3]); 0.25 and above saturate."""
    from matplotlib import colormaps

    err = np.abs(pred.astype(np.float32) - gt.astype(np.float32)).mean(-1) / 255.0
    rgb = colormaps["inferno"](np.clip(err / 0.25, 0, 1))[..., :3]
    return (rgb * 255 + 0.5).astype(np.uint8)


def _even(img: np.ndarray) -> np.ndarray:
    """Pad to an even height and width (H.264 needs them) by repeating the last row/column."""
    h, w = img.shape[:2]
    return np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _load_dataset(subject: Subject, split: str, head: Any):
    from radnerf_cli.data import SubjectData

    data = SubjectData(subject.dataset, split, feature=head.feature_kind, preload=False)
    if (data.H, data.W) != (head.H, head.W):
        k = data.H // head.H if head.H else 0
        if k > 1 and data.H // k == head.H and data.W // k == head.W:
            data = SubjectData(subject.dataset, split, feature=head.feature_kind, preload=False, downscale=k)
        else:
            raise WorkspaceError(
                f"the model renders {head.W}x{head.H} but {subject.dataset} holds {data.W}x{data.H} frames",
                hint="the dataset changed after training; re-train the subject",
            )
    if data.feature_dim != head.feature_dim:
        raise WorkspaceError(
            f"{data.feature_path}: C = {data.feature_dim}, but the model was trained on C = {head.feature_dim}",
            hint="the audio features changed after training; re-train the subject",
        )
    return data


def evaluate(
    subject: Subject,
    split: str = "val",
    device=None,
    max_frames: int | None = None,
    out_dir: str | Path | None = None,
    stage: str | None = None,
    head: Any = None,
    landmarks: bool = True,
    video: bool = True,
    show: bool = True,
    audios: list[str | Path] | None = None,
    audio_seconds: float | None = None,
) -> dict[str, Any]:
    """Render every frame of ``split`` and score it against the ground truth.

    ``head``: a TalkingHead to evaluate (default: the subject's latest trained stage, or ``stage``).
    ``landmarks``: compute LMD and the lip-sync section (face tracker on every frame). ``video``:
    write the side-by-side mp4. ``audios``: other audio files to render and score for lip sync.
    Returns what ``metrics.json`` holds: means (None where nothing could be measured), per-frame
    values, the frame count, timings and the paths written.
    """
    import torch

    from radnerf_cli import fsutil, media
    from radnerf_cli.console import progress, results
    from radnerf_cli.data import audio_window
    from radnerf_cli.metrics import get_lpips, psnr

    if head is None:
        from radnerf_cli.engine.inference import TalkingHead

        head = TalkingHead.from_subject(subject, device=device, stage=stage)
    data = _load_dataset(subject, split, head)
    n = len(data) if max_frames is None else max(0, min(len(data), int(max_frames)))
    if n == 0:
        raise WorkspaceError(f"no {split} frames to evaluate in {subject.dataset}")
    out_dir = Path(out_dir) if out_dir is not None else subject.run_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    head_device = getattr(head, "device", None)
    lp_device = torch.device(head_device) if head_device is not None else torch.device("cpu")
    lp = get_lpips(lp_device)
    tracker = None
    if landmarks:
        from radnerf_cli.preprocess.landmarks import FaceTracker, to_ibug68

        tracker = FaceTracker()
    torso_trained = bool(getattr(head, "torso_trained", False))
    bg_u8 = np.asarray(head.background, dtype=np.uint8)

    writer = None
    video_path = out_dir / f"{split}.mp4"
    if video:
        wav = subject.dataset / "aud.wav"
        first = int(data.aud_ids[0])
        sample = _even(np.zeros((data.H, 2 * data.W, 3), np.uint8))
        writer = media.VideoWriter(
            video_path, sample.shape[1], sample.shape[0], fps=FPS,
            audio=wav if wav.is_file() else None, audio_start=first / FPS, audio_duration=n / FPS,
        )

    per_frame: list[dict[str, Any]] = []
    samples: list[np.ndarray] = []
    sample_at = set(np.linspace(0, n - 1, min(N_SAMPLES, n)).round().astype(int).tolist())
    lmd_missed = 0
    meshes_pred: list[np.ndarray | None] = []
    meshes_gt: list[np.ndarray | None] = []
    head.reset()
    t0 = time.perf_counter()
    try:
        with progress("frames", extra="PSNR {task.fields[psnr]}") as bar:
            task = bar.add_task(f"evaluating {split}", total=n, psnr="-")
            for i in range(n):
                gt = data.image_uint8(i)
                if torso_trained or not data.torso_paths:
                    bg = None
                else:
                    bg = torso_over(data.torso_uint8(i), bg_u8)
                eye = None if data.eye is None else float(data.eye[i])
                aud = audio_window(data.auds, int(data.aud_ids[i]))
                pred = head.render_frame(data.poses_raw[i], aud, eye, bg=bg, torso=True)
                if pred.shape != gt.shape:
                    raise WorkspaceError(f"the model rendered {list(pred.shape)} for a {list(gt.shape)} frame")
                p_t = torch.from_numpy(pred).to(lp_device).float().permute(2, 0, 1)[None] / 255
                g_t = torch.from_numpy(gt).to(lp_device).float().permute(2, 0, 1)[None] / 255
                rec: dict[str, Any] = {"index": i, "img_id": data.frame_ids[i]}
                rec["psnr"] = float(psnr(pred.astype(np.float32) / 255, gt.astype(np.float32) / 255))
                with torch.no_grad():
                    rec["lpips"] = float(lp(p_t, g_t).item())
                rec["lmd"] = None
                if tracker is not None:
                    m_pred, m_gt = tracker.mesh(pred), tracker.mesh(gt)
                    meshes_pred.append(m_pred)
                    meshes_gt.append(m_gt)
                    lp_pred = None if m_pred is None else to_ibug68(m_pred)[:, :2]
                    lp_gt = None if m_gt is None else to_ibug68(m_gt)[:, :2]
                    if lp_pred is None or lp_gt is None:
                        lmd_missed += 1
                    else:
                        rec["lmd"] = lmd(lp_pred, lp_gt)
                per_frame.append(rec)
                if writer is not None:
                    writer.write(_even(np.concatenate([pred, gt], 1)))
                if i in sample_at:
                    samples.append(np.concatenate([pred, gt, _error_map(pred, gt)], 1))
                bar.update(task, advance=1, psnr=f"{_mean([r['psnr'] for r in per_frame]):.2f}")
        if writer is not None:
            writer.close()
            writer = None
    finally:
        if writer is not None:
            writer.abort()
        if tracker is not None:
            tracker.close()
    seconds = time.perf_counter() - t0
    stages = list(getattr(head, "stages", None) or [])

    samples_path = out_dir / f"{split}_samples.png"
    fsutil.save_image(samples_path, np.concatenate(samples, 0))
    result: dict[str, Any] = {
        "subject": subject.name,
        "split": split,
        "stage": stage or (stages[-1] if stages else None),
        "frames": n,
        "psnr": _mean([r["psnr"] for r in per_frame]),
        "lpips": _mean([r["lpips"] for r in per_frame]),
        "lmd": _mean([r["lmd"] for r in per_frame]),
        "lmd_frames": sum(r["lmd"] is not None for r in per_frame),
        "lmd_missed": lmd_missed if tracker is not None else None,
        "seconds": seconds,
        "fps": n / seconds if seconds > 0 else None,
        "device": str(head_device) if head_device is not None else None,
        "size": [data.W, data.H],
        "video": str(video_path) if video else None,
        "samples": str(samples_path),
        "reference_radnerf": REFERENCE,
        "per_frame": per_frame,
    }
    if tracker is not None:
        from radnerf_cli.engine import lipsync_eval

        result["lipsync"] = lipsync_eval.section(subject.dataset, head, np.asarray(data.aud_ids[:n]),
                                                 meshes_pred, meshes_gt, audios or [], show,
                                                 audio_seconds)
    metrics_path = out_dir / "metrics.json"
    result["metrics"] = str(metrics_path)
    fsutil.write_json(metrics_path, result)
    if show:
        print_table(result)
        results.print(f"metrics: {metrics_path}")
        if video:
            results.print(f"video (render | ground truth): {video_path}")
        results.print(f"samples: {samples_path}")
    return result


def print_table(result: dict[str, Any]) -> None:
    """A rich table of the means beside RAD-NeRF's published numbers."""
    from rich.table import Table

    from radnerf_cli.console import results

    t = Table(title=f"{result['subject']} / {result['split']}: {result['frames']} frames "
                    f"({result['fps'] or 0:.2f} frames/s)")
    t.add_column("metric")
    t.add_column("ours", justify="right")
    t.add_column("RAD-NeRF (paper)", justify="right")
    t.add_column("better", justify="center")

    def fmt(v, digits):
        return "-" if v is None else f"{v:.{digits}f}"

    lmd_note = ""
    if result.get("lmd_missed"):
        lmd_note = f" ({result['lmd_frames']}/{result['frames']} frames with faces)"
    t.add_row("PSNR (dB)", fmt(result["psnr"], 2), f"{REFERENCE['psnr']:.2f}", "higher")
    t.add_row("LPIPS (AlexNet)", fmt(result["lpips"], 4), f"{REFERENCE['lpips']:.4f}", "lower")
    t.add_row("LMD (px)" + lmd_note, fmt(result["lmd"], 3), f"{REFERENCE['lmd']:.3f}", "lower")
    ls = result.get("lipsync")
    if ls:
        err = ls["heldout"]["mouth_error"]
        t.add_row("mouth error, not centred (px)", fmt(err["lmd_uncentred"], 3), "-", "lower")
    results.print(t)
    if ls:
        from radnerf_cli.engine.lipsync_eval import rows

        s = Table(title="lip sync (face-mesh mouth opening vs. the speech envelope; not SyncNet)")
        s.add_column("clip")
        s.add_column("opening spread vs real", justify="right")
        s.add_column("agreement with audio: r at 0 (best)", justify="right")
        for r in rows(ls):
            s.add_row(*r)
        results.print(s)

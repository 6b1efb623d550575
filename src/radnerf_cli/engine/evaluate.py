"""Evaluate a trained subject on its held-out frames: PSNR, LPIPS (AlexNet) and LMD, as in RAD-NeRF.

Each frame of the split is rendered once, with its own pose, audio window and eye value, and scored
under three protocols, reported separately (:mod:`radnerf_cli.engine.eval_protocols`): the whole
synthesized frame (RAD-NeRF's; needs a trained torso), the head over the real torso, and portrait
(the face pasted into the real frame, SyncTalk's; needs the source video).

    PSNR   in dB over the protocol's frame (images in [0, 1])
    LPIPS  AlexNet, v0.1 linear heads, over the protocol's frame
    LMD    mouth landmarks (iBUG 48-67) of the synthesized frame and the ground truth found by the
           same face tracker as preprocess, each set centred on its mean, mean Euclidean distance in
           pixels; frames where either face is not found are left out of the mean (and counted)

Writes, under ``out_dir`` (default ``run/eval``): ``metrics.json`` (means per protocol and per-frame
values), ``{split}.mp4`` (synthesized frame | ground truth, with the split's audio),
``{split}_portrait.mp4`` (portrait | real frame, at the source size), and the matching
``{split}_samples.png`` / ``{split}_portrait_samples.png`` (render | truth | error, a few frames).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from radnerf_cli.errors import WorkspaceError

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


def load_split(subject: Subject, split: str, head: Any):
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


def _portrait_source(subject: Subject, data, portrait: bool, source):
    """(PortraitSource of the split's frames, None) or (None, why portrait is not scored)."""
    if not portrait:
        return None, "not asked for (--no-portrait)"
    from radnerf_cli.engine.portrait import subject_source
    from radnerf_cli.errors import RadNerfError

    try:
        return subject_source(subject, data.frame_ids, source), None
    except RadNerfError as e:
        return None, str(e)


class _Scorer:
    """PSNR, LPIPS and the per-frame records of one protocol."""

    def __init__(self, name: str, lp, device):
        self.name, self.lp, self.device = name, lp, device
        self.psnr: list[float] = []
        self.lpips: list[float] = []
        self.size: list[int] | None = None

    def score(self, pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
        import torch

        from radnerf_cli.metrics import psnr

        if pred.shape != gt.shape:
            raise WorkspaceError(f"{self.name}: the model rendered {list(pred.shape)} for a {list(gt.shape)} frame")
        self.size = [int(gt.shape[1]), int(gt.shape[0])]
        p_t = torch.from_numpy(pred).to(self.device).float().permute(2, 0, 1)[None] / 255
        g_t = torch.from_numpy(gt).to(self.device).float().permute(2, 0, 1)[None] / 255
        rec = {"psnr": float(psnr(pred.astype(np.float32) / 255, gt.astype(np.float32) / 255))}
        with torch.no_grad():
            rec["lpips"] = float(self.lp(p_t, g_t).item())
        self.psnr.append(rec["psnr"])
        self.lpips.append(rec["lpips"])
        return rec

    def summary(self) -> dict[str, Any]:
        from radnerf_cli.engine.eval_protocols import LABELS

        return {"label": LABELS[self.name], "psnr": _mean(self.psnr), "lpips": _mean(self.lpips), "size": self.size}


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
    portrait: bool = True,
    source: str | Path | None = None,
    audios: list[str | Path] | None = None,
    audio_seconds: float | None = None,
) -> dict[str, Any]:
    """Render every frame of ``split`` once and score it under each protocol of
    :mod:`radnerf_cli.engine.eval_protocols`: whole synthesized frame (with a trained torso), head
    over the real torso, and portrait (with the source video; ``source`` overrides its path).

    ``head``: a TalkingHead to evaluate (default: the subject's latest trained stage, or ``stage``).
    ``landmarks``: compute LMD on the synthesized frame (needs the face tracker). ``video``: write
    the side-by-side mp4s. ``audios``: other audio files to render and score for lip sync
    (with ``landmarks``). Returns what ``metrics.json`` holds: ``protocols`` (means per protocol,
    None where one could not be measured), ``psnr``/``lpips``/``lmd`` of RAD-NeRF's protocol
    (``protocol``: the whole frame, or the head over the real torso when no torso is trained),
    per-frame values, the frame count, timings and the paths written.
    """
    import torch

    from radnerf_cli import fsutil, media
    from radnerf_cli.console import progress, results
    from radnerf_cli.data import audio_window
    from radnerf_cli.engine import eval_protocols as ep
    from radnerf_cli.metrics import get_lpips

    if head is None:
        from radnerf_cli.engine.inference import TalkingHead

        head = TalkingHead.from_subject(subject, device=device, stage=stage)
    data = load_split(subject, split, head)
    n = len(data) if max_frames is None else max(0, min(len(data), int(max_frames)))
    if n == 0:
        raise WorkspaceError(f"no {split} frames to evaluate in {subject.dataset}")
    out_dir = Path(out_dir) if out_dir is not None else subject.run_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    head_device = getattr(head, "device", None)
    lp_device = torch.device(head_device) if head_device is not None else torch.device("cpu")
    lp = get_lpips(lp_device)
    torso_trained = bool(getattr(head, "torso_trained", False))
    primary = "whole" if torso_trained else "head"
    psrc, portrait_note = _portrait_source(subject, data, portrait, source)
    scorers = {k: _Scorer(k, lp, lp_device) for k in ep.PROTOCOLS
               if (k != "whole" or torso_trained) and (k != "portrait" or psrc is not None)}
    bg_u8 = np.asarray(head.background, dtype=np.uint8)

    wav = subject.dataset / "aud.wav"
    first = int(data.aud_ids[0])
    videos: dict[str, Path] = {}
    writers: dict[str, Any] = {}
    tracker = reader = None
    per_frame: list[dict[str, Any]] = []
    samples: dict[str, list[np.ndarray]] = {"main": [], "portrait": []}
    sample_at = set(np.linspace(0, n - 1, min(N_SAMPLES, n)).round().astype(int).tolist())
    lmd_missed = 0
    meshes_pred: list[np.ndarray | None] = []
    meshes_gt: list[np.ndarray | None] = []
    head.reset()
    t0 = time.perf_counter()
    try:
        if landmarks:
            from radnerf_cli.preprocess.landmarks import FaceTracker, to_ibug68

            tracker = FaceTracker()
        if psrc is not None:
            reader = psrc.reader(range(n))
        if video:
            shapes = {"main": (data.H, 2 * data.W)}
            if psrc is not None:
                shapes["portrait"] = (psrc.height, 2 * psrc.width)
            for key, (h, w) in shapes.items():
                videos[key] = out_dir / (f"{split}.mp4" if key == "main" else f"{split}_portrait.mp4")
                writers[key] = media.VideoWriter(
                    videos[key], w + w % 2, h + h % 2, fps=FPS,
                    audio=wav if wav.is_file() else None, audio_start=first / FPS, audio_duration=n / FPS,
                )
        # the torso gets each held-out frame's body pose, as the head gets its head pose
        bodies = data.body_pose() if torso_trained and head.body_track is not None else None
        with progress("frames", extra="PSNR {task.fields[psnr]}") as bar:
            task = bar.add_task(f"evaluating {split}", total=n, psnr="-")
            for i in range(n):
                gt = data.image_uint8(i)
                eye = None if data.eye is None else float(data.eye[i])
                aud = audio_window(data.auds, int(data.aud_ids[i]))
                layers = head.render_layers(data.poses_raw[i], aud, eye, torso=torso_trained,
                                            body=None if bodies is None else bodies[i].numpy())
                rec: dict[str, Any] = {"index": i, "img_id": data.frame_ids[i]}
                real_torso = ep.real_torso_background(data.torso_uint8(i), bg_u8)
                frames = {"head": ep.head_frame(layers, real_torso, data.H, data.W)}
                if "whole" in scorers:
                    frames["whole"] = ep.whole_frame(layers, bg_u8, data.H, data.W)
                for key in ("whole", "head"):
                    if key in scorers:
                        rec[key] = scorers[key].score(frames[key], gt)
                pred = frames[primary]
                if reader is not None:
                    real = reader.next()
                    frames["portrait"] = ep.portrait_frame(layers, real, psrc, i, data.H, data.W)
                    rec["portrait"] = scorers["portrait"].score(frames["portrait"], real)
                rec["psnr"], rec["lpips"] = rec[primary]["psnr"], rec[primary]["lpips"]
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
                if "main" in writers:
                    writers["main"].write(_even(np.concatenate([pred, gt], 1)))
                if "portrait" in writers:
                    writers["portrait"].write(_even(np.concatenate([frames["portrait"], real], 1)))
                if i in sample_at:
                    samples["main"].append(np.concatenate([pred, gt, _error_map(pred, gt)], 1))
                    if reader is not None:
                        samples["portrait"].append(np.concatenate([frames["portrait"], real,
                                                                   _error_map(frames["portrait"], real)], 1))
                bar.update(task, advance=1, psnr=f"{_mean([r['psnr'] for r in per_frame]):.2f}")
        for key in list(writers):
            writers.pop(key).close()
    finally:
        for w in writers.values():
            w.abort()
        if tracker is not None:
            tracker.close()
        if reader is not None:
            reader.close()
    seconds = time.perf_counter() - t0
    stages = list(getattr(head, "stages", None) or [])

    samples_path = out_dir / f"{split}_samples.png"
    fsutil.save_image(samples_path, np.concatenate(samples["main"], 0))
    portrait_samples = None
    if samples["portrait"]:
        portrait_samples = out_dir / f"{split}_portrait_samples.png"
        fsutil.save_image(portrait_samples, np.concatenate(samples["portrait"], 0))
    protocols = {k: (scorers[k].summary() if k in scorers else None) for k in ep.PROTOCOLS}
    result: dict[str, Any] = {
        "subject": subject.name,
        "split": split,
        "stage": stage or (stages[-1] if stages else None),
        "frames": n,
        "protocol": primary,
        "psnr": protocols[primary]["psnr"],
        "lpips": protocols[primary]["lpips"],
        "lmd": _mean([r["lmd"] for r in per_frame]),
        "lmd_frames": sum(r["lmd"] is not None for r in per_frame),
        "lmd_missed": lmd_missed if tracker is not None else None,
        "protocols": protocols,
        "notes": {
            "whole": (("the torso is given each frame's body pose (model.torso_body), as the head its head pose"
                       if bodies is not None else None)
                      if torso_trained else "no trained torso: the whole frame is not synthesized"),
            "portrait": portrait_note,
        },
        "seconds": seconds,
        "fps": n / seconds if seconds > 0 else None,
        "device": str(head_device) if head_device is not None else None,
        "size": [data.W, data.H],
        "video": str(videos["main"]) if "main" in videos else None,
        "video_portrait": str(videos["portrait"]) if "portrait" in videos else None,
        "samples": str(samples_path),
        "samples_portrait": str(portrait_samples) if portrait_samples else None,
        "reference_radnerf": REFERENCE,
        "per_frame": per_frame,
    }
    if psrc is not None:
        psrc.close()
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
        for key, what in (("video", f"render ({LABEL_SHORT[primary]}) | ground truth"),
                          ("video_portrait", "portrait | real frame")):
            if result[key]:
                results.print(f"video ({what}): {result[key]}")
        results.print(f"samples: {samples_path}" + (f", {portrait_samples}" if portrait_samples else ""))
    return result


LABEL_SHORT = {"whole": "whole synthesized frame", "head": "head over the real torso"}


def print_table(result: dict[str, Any]) -> None:
    """A rich table of each protocol's means beside RAD-NeRF's published numbers."""
    from rich.table import Table

    from radnerf_cli.console import results
    from radnerf_cli.engine.eval_protocols import LABELS, PROTOCOLS

    t = Table(title=f"{result['subject']} / {result['split']}: {result['frames']} frames "
                    f"({result['fps'] or 0:.2f} frames/s)")
    t.add_column("protocol")
    t.add_column("size", justify="right")
    t.add_column("PSNR (dB)", justify="right")
    t.add_column("LPIPS (AlexNet)", justify="right")

    def fmt(v, digits):
        return "-" if v is None else f"{v:.{digits}f}"

    protocols = result.get("protocols") or {}
    for key in PROTOCOLS:
        p = protocols.get(key)
        if p is None:
            t.add_row(LABELS[key], "", "-", "-")
        else:
            size = f"{p['size'][0]}x{p['size'][1]}" if p.get("size") else ""
            t.add_row(LABELS[key], size, fmt(p["psnr"], 2), fmt(p["lpips"], 4))
    t.add_row("RAD-NeRF paper (whole frame, 450x450, GPU)", "", f"{REFERENCE['psnr']:.2f}", f"{REFERENCE['lpips']:.4f}")
    ls = result.get("lipsync")
    if ls:
        err = ls["heldout"]["mouth_error"]
        t.add_row("mouth error, not centred (px)", "", fmt(err["lmd_uncentred"], 3), "")
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
    lmd_note = ""
    if result.get("lmd_missed"):
        lmd_note = f" ({result['lmd_frames']}/{result['frames']} frames with faces)"
    results.print(f"LMD (px, mouth landmarks, {LABEL_SHORT[result['protocol']]}){lmd_note}: "
                  f"{fmt(result['lmd'], 3)} (RAD-NeRF paper {REFERENCE['lmd']:.3f}, lower is better)")
    for key, note in (result.get("notes") or {}).items():
        if note:
            results.print(f"[dim]{key}: {note}[/dim]")

"""What training writes besides checkpoints: validation renders, previews, curves and metrics.json.

Renders use the EMA weights and individual code 0, as inference does. ``metrics.json`` holds one
entry per stage (its :class:`StageReport` and loss/PSNR history) and the device.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radnerf_cli import fsutil
from radnerf_cli.engine import visuals
from radnerf_cli.engine.ema import WeightEMA
from radnerf_cli.engine.inference import stage_checkpoint
from radnerf_cli.engine.sampling import background
from radnerf_cli.model.config import STAGES


@dataclass
class StageReport:
    """What one stage did in this run."""

    stage: str
    start_step: int  # step the run started from (> 0 when resumed)
    step: int  # step reached
    iters: int  # iterations of the stage
    seconds: float  # wall time of this run's steps
    it_per_s: float  # iterations per second
    rays_per_s: float  # training rays per second
    samples_per_s: float  # network samples per second (head and lips)
    loss: float  # mean loss of the last logging window
    psnr: float  # training PSNR of the last logging window
    val_psnr: float | None  # PSNR on validation frames at the end of the stage
    checkpoint: str  # checkpoint path
    skipped: bool = False  # the stage was already complete


@torch.no_grad()
def render_eval(model, renderer, ema: WeightEMA, coords, data, i: int, stage: str, device, fp16: bool):
    """Render frame ``i`` of ``data`` (EMA weights, code 0): ([H, W, 3] float, [H, W] depth).

    Before the torso stage the head is rendered over the ground-truth torso layer; in it, over the
    model's torso layer.
    """
    from radnerf_cli.data import get_rays

    fr, dev = data.frame(i), device
    pose = fr["pose"][None].to(dev)
    rays = get_rays(pose, data.intrinsics, data.H, data.W)
    pose6 = None
    if stage == "torso":
        bg = fr["bg"].view(-1, 3)
        body = data.body_pose()[i : i + 1] if model.torso.body_dim else None
        pose6 = model.torso.condition(pose, body)
    else:
        bg = background(fr)
    eye = fr["eye"].view(1, 1).to(dev) if fr["eye"] is not None else None
    was_training = model.training
    model.eval()
    with ema.applied():
        enc_a = model.audio(fr["aud"].to(dev))
        out = renderer.frame(
            rays["rays_o"][0].contiguous(), rays["rays_d"][0].contiguous(), coords.to(dev), bg.to(dev),
            enc_a, eye, pose6, fp16=fp16,
        )
    model.train(was_training)
    H, W = data.H, data.W
    return out["image"].view(H, W, 3).float().cpu().numpy(), out["depth"].view(H, W).float().cpu().numpy()


def validation_indices(n_frames: int, count: int) -> np.ndarray:
    """``count`` (at least 1, at most ``n_frames``) evenly spaced frame indices."""
    n = max(1, min(count, n_frames))
    return np.linspace(0, n_frames - 1, n).round().astype(int)


def validate(render, data, count: int) -> float:
    """PSNR over ``count`` evenly spaced frames of ``data``; ``render(data, i)`` -> ([H, W, 3], depth)."""
    mses = []
    for i in validation_indices(len(data), count):
        img, _ = render(data, int(i))
        truth = data.frame(int(i))["image"].numpy()
        mses.append(float(np.mean((img - truth) ** 2)))
    return visuals.psnr(float(np.mean(mses)))


def save_preview(run_dir: Path, stage: str, step: int, img: np.ndarray, truth: np.ndarray, depth: np.ndarray) -> None:
    """``previews/{stage}_{step}.png``: render | ground truth | depth (floats in [0, 1])."""
    out = run_dir / "previews" / f"{stage}_{step:06d}.png"
    visuals.save_preview(out, (img * 255 + 0.5).astype(np.uint8), (truth * 255 + 0.5).astype(np.uint8), depth)


def save_curves(subject, current: str, history: dict[str, list[float]]) -> None:
    """``curves.png``: the current stage's history and that of every other stage with a checkpoint."""
    hist: dict[str, dict[str, list[float]]] = {}
    for s in STAGES:
        if s == current:
            hist[s] = history
            continue
        p = stage_checkpoint(subject, s)
        m = read_metrics(subject.run_dir).get("stages", {}).get(s)
        if m and p.is_file():
            hist[s] = m.get("history", {})
    visuals.save_curves(subject.run_dir / "curves.png", hist)


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """The run's ``metrics.json`` ({} when missing or unreadable)."""
    p = run_dir / "metrics.json"
    if p.is_file():
        try:
            return json.loads(p.read_text())
        except ValueError:
            return {}
    return {}


def write_metrics(run_dir: Path, rep: StageReport, history: dict[str, list[float]], device) -> None:
    """Record a stage's report and history in ``metrics.json`` (atomically; other stages kept)."""
    m = read_metrics(run_dir)
    m.setdefault("stages", {})[rep.stage] = {**asdict(rep), "history": history}
    m["device"] = str(device)
    fsutil.write_json(run_dir / "metrics.json", m)


def write_metrics_entry(run_dir: Path, key: str, report: dict) -> None:
    """Record one report of the run in ``metrics.json`` under ``key`` (``mouth_fit``: the audio ->
    mouth-code fit; ``mouth_render_gain``: the render gain)."""
    m = read_metrics(run_dir)
    m[key] = report
    fsutil.write_json(run_dir / "metrics.json", m)

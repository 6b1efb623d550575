"""Fitting the audio -> mouth-code predictor on a subject's training frames (seconds on a CPU).

The predictor sees the same 8 x 16 feature windows as the field's audio network and regresses the
tracked mouth code of each frame. Speech of one person for a few minutes is little data, so the
fit is regularised towards what generalises to other audio:

    noise     Gaussian noise on the normalised features (``noise``)
    masking   a random run of rows of each 16-row window is zeroed (``time_mask``), and whole
              frames of the 8-frame window are dropped (``frame_drop``)
    dropout   on the first convolution and before the output layer

The last ``holdout`` fraction of the training frames (one contiguous stretch of the clip) is kept
out of the fit. After fitting, the code components are given gains from those frames
(:func:`calibration_gain`): the mouth opening's brings the spread of its predictions up to the
tracked codes' (a predictor trained by squared error shrinks towards the mean; without this the
mouth would open less than the person's), the others keep their least-squares scale (or, with
``opening`` None, every component the predictor follows is brought up to its tracked spread).
The subject's validation split is never seen here: it stays a fair test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from radnerf_cli.data.audio_window import audio_window


@dataclass
class MouthFitConfig:
    steps: int = 1500  # optimisation steps
    batch: int = 64  # consecutive frames per step
    lr: float = 2e-3  # Adam learning rate (cosine decay to 0)
    weight_decay: float = 1e-4  # AdamW weight decay
    noise: float = 0.3  # std of the Gaussian noise on the normalised features
    time_mask: int = 4  # up to this many consecutive rows of a 16-row window are zeroed
    frame_drop: float = 0.1  # probability of dropping each frame of the 8-frame window
    calibrate: bool = True  # match the predictions' spread to the tracked codes' on held-out frames
    opening: int | None = None  # calibrate: the only component matched in spread (None: each one followed)
    holdout: float = 0.1  # fraction of the training frames (the last stretch) kept out of the fit


@dataclass
class MouthFitReport:
    steps: int
    train_loss: float
    holdout_frames: int  # training frames kept out of the fit for calibration
    val_corr: list[float]  # per component: correlation of predicted and tracked codes (held-out)
    val_std_ratio: list[float]  # per component, before calibration: std(pred) / std(tracked)
    gain: list[float]  # calibration gain applied per component
    seconds: float
    alpha: float | None = None  # ridge predictor: regularisation per training frame (None: the network)
    opening: int | None = None  # the component matched in spread (None: every component followed)


def windows(feats: Tensor, aud_ids: Tensor) -> Tensor:
    """[T, 16, C] features, [N] aud ids -> [N, 8, 16, C] attention windows."""
    if not len(aud_ids):
        return feats.new_zeros((0, 8, *feats.shape[1:]))
    return torch.stack([audio_window(feats, int(a)) for a in aud_ids.tolist()])


def _segment_rows(feats: Tensor, aud_ids: Tensor) -> tuple[Tensor, Tensor]:
    """Rows feats[a - 4 .. a + 3] for a run of aud ids: ([R, 16, C] zero-padded, [N, 8] indices into them)."""
    lo, hi = int(aud_ids.min()) - 4, int(aud_ids.max()) + 4
    T = feats.shape[0]
    rows = feats.new_zeros((hi - lo, *feats.shape[1:]))
    a, b = max(lo, 0), min(hi, T)
    if b > a:
        rows[a - lo : b - lo] = feats[a:b]
    idx = (aud_ids.view(-1, 1) - 4 - lo) + torch.arange(8).view(1, 8)
    return rows, idx


def _augment(x: Tensor, cfg: MouthFitConfig, gen: torch.Generator) -> Tensor:
    """Normalised windows [R, 16, C]: Gaussian noise and a masked run of rows in each."""
    R, W, C = x.shape
    live = (x.abs().sum(-1, keepdim=True) > 0).float()
    x = x + torch.randn(x.shape, generator=gen) * cfg.noise * live
    if cfg.time_mask > 0:
        length = torch.randint(0, cfg.time_mask + 1, (R, 1), generator=gen)
        start = torch.randint(0, W, (R, 1), generator=gen)
        rows = torch.arange(W).view(1, W)
        x = x * (~((rows >= start) & (rows < start + length))).unsqueeze(-1)
    return x


def calibration_gain(ratio: list[float], corr: list[float], opening: int | None = None) -> list[float]:
    """Per component, from the held-out predictions' spread ratio (pred / tracked) and correlation.

    ``opening`` None: every component the predictor follows (correlation > 0.1) gets the gain that
    brings its spread up to the tracked codes' (1 to 3), the rest 1: scaling noise up helps nobody.
    ``opening`` k: only component k (the mouth opening) is brought up to the tracked spread; every
    other one gets its least-squares scale, corr / ratio clipped to [0, 1] (what the sound predicts of
    it and no more: a spread-matched component the sound predicts badly is mostly noise, and a
    wrong mouth shape costs more than a mean one).
    """
    def spread(r: float, c: float) -> float:
        return float(np.clip(1.0 / max(r, 1e-3), 1.0, 3.0)) if c > 0.1 else 1.0

    if opening is None:
        return [spread(r, c) for r, c in zip(ratio, corr, strict=True)]
    return [spread(r, c) if j == opening else float(np.clip(max(c, 0.0) / max(r, 1e-3), 0.0, 1.0))
            for j, (r, c) in enumerate(zip(ratio, corr, strict=True))]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    d = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / d) if d > 0 else 0.0


def fit_predictor(
    predictor,
    feats: Tensor,  # [T, 16, C] the subject's features
    aud_ids: Tensor,  # [N] aud ids of the training frames, in clip order
    codes: Tensor,  # [N, k] their tracked codes
    cfg: MouthFitConfig,
    seed: int = 0,
    progress=None,  # callable(step, loss) or None
) -> MouthFitReport:
    """Fit ``predictor`` (a :class:`~radnerf_cli.model.mouth.MouthPredictor`) in place, on the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops: one thread is faster than two that wait on each other
    try:
        return _fit(predictor, feats, aud_ids, codes, cfg, seed, progress)
    finally:
        torch.set_num_threads(threads)


def _fit(predictor, feats, aud_ids, codes, cfg, seed, progress) -> MouthFitReport:
    import time

    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    dev = predictor.feat_mean.device
    feats = feats.float().cpu()
    predictor.set_normalisation(feats)
    predictor.gain.fill_(1.0)
    frozen = [p for p in predictor.parameters() if not p.requires_grad]
    for p in frozen:  # the trainer freezes what its stage does not optimise; the fit needs gradients
        p.requires_grad_(True)
    n_all = len(aud_ids)
    n_hold = int(round(n_all * cfg.holdout)) if n_all * cfg.holdout >= 16 else 0
    fit_ids, val_ids = aud_ids[: n_all - n_hold].cpu(), aud_ids[n_all - n_hold :].cpu()
    ys = codes[: n_all - n_hold].float().cpu()
    val_codes = codes[n_all - n_hold :].float().cpu()
    opt = torch.optim.AdamW(predictor.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(fit_ids)
    seg = max(1, min(cfg.batch, n))
    predictor.train()
    loss_avg = float("nan")
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / max(cfg.steps, 1)))
        s0 = int(torch.randint(0, n - seg + 1, (1,), generator=gen))
        sel = torch.arange(s0, s0 + seg)
        rows, idx = _segment_rows(feats, fit_ids[sel])
        x = _augment(predictor.normalise(rows.to(dev)).cpu(), cfg, gen).to(dev)
        h = predictor.frame_embed(x)  # [R, width]
        if cfg.frame_drop > 0:  # a dropped neighbour looks like audio past the clip's end
            zero = predictor.frame_embed(torch.zeros_like(x[:1]))
            drop = (torch.rand((len(sel), 8, 1), generator=gen) < cfg.frame_drop).to(dev)
            hw = torch.where(drop, zero.view(1, 1, -1), h[idx.to(dev)])
        else:
            hw = h[idx.to(dev)]
        pred = predictor.pool(hw)
        loss = ((pred - ys[sel].to(dev)) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        v = float(loss.detach())
        loss_avg = v if math.isnan(loss_avg) else 0.95 * loss_avg + 0.05 * v
        if progress is not None:
            progress(step + 1, loss_avg)
    predictor.eval()
    for p in frozen:
        p.requires_grad_(False)
    cx, cy = (windows(feats, val_ids), val_codes) if n_hold else (windows(feats, fit_ids), ys)
    with torch.no_grad():
        p = torch.cat([predictor(cx[s : s + 256].to(dev)).cpu() for s in range(0, len(cx), 256)]).numpy()
    y = cy.numpy()
    k = y.shape[1]
    corr = [_corr(p[:, j], y[:, j]) for j in range(k)]
    ratio = [float(p[:, j].std() / max(y[:, j].std(), 1e-9)) for j in range(k)]
    gain = [1.0] * k
    if cfg.calibrate:
        gain = calibration_gain(ratio, corr, cfg.opening)
        predictor.gain.copy_(torch.tensor(gain, dtype=torch.float32))
    return MouthFitReport(cfg.steps, loss_avg, n_hold, corr, ratio, gain, time.perf_counter() - t0, opening=cfg.opening)

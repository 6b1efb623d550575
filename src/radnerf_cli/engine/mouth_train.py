"""The mouth-code part of the head stage: the tracked codes of the training frames and the predictor's fit.

    codes = tracked_codes(data, dim)        # [N, dim], from the frames' 68 landmarks
    k = scaled_component(data, cfg)         # the component the gains scale up: the opening (0 on speech)
    report = fit(predictor, data, codes, cfg)   # audio -> code predictor (net or ridge), fitted before the field

Both are deterministic for a given dataset and config, so a resumed or later stage recomputes the
same codes instead of storing them.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from torch import Tensor

from radnerf_cli.data.mouth_code import mouth_codes
from radnerf_cli.engine.mouth_fit import MouthFitConfig, MouthFitReport, fit_predictor
from radnerf_cli.engine.mouth_ridge import fit_ridge


def tracked_codes(data, dim: int) -> Tensor:
    """[N, dim] mouth codes of a training split (basis fitted on these frames)."""
    _, codes, _ = mouth_codes(data.lms68, dim)
    return torch.from_numpy(codes)


def opening_component(data, dim: int) -> int:
    """The code component of a training split's basis that parts the lips the most (the opening)."""
    basis, _, _ = mouth_codes(data.lms68, dim)
    return basis.opening_component()


def scaled_component(data, cfg) -> int | None:
    """The one component the predictor's gains scale up to the person's spread (the opening, with
    ``train.mouth_gain=opening``), or None when they scale every component (``all``)."""
    return opening_component(data, cfg.model.mouth_dim) if cfg.train.mouth_gain == "opening" else None


def fit(predictor, data, codes: Tensor, cfg, quiet: bool = False) -> dict[str, Any]:
    """Fit ``predictor`` on the split's features and codes (with a progress bar); the report as a dict."""
    from radnerf_cli.console import progress

    order = torch.argsort(data.aud_ids)  # the calibration stretch is the clip's last part
    opening = scaled_component(data, cfg)
    if cfg.model.mouth_predictor == "ridge":
        rep = fit_ridge(predictor, data.auds, data.aud_ids[order], codes[order], float(cfg.train.mouth_ridge_alpha),
                        opening=opening)
        if not quiet:
            _say(rep, f"ridge fit (alpha {rep.alpha:g} per frame) in {rep.seconds:.1f} s")
        return asdict(rep)
    steps = int(cfg.train.mouth_fit_steps)
    mf = MouthFitConfig(steps=min(steps, max(100, 3 * len(data))), opening=opening)
    bar = progress("steps", extra="loss {task.fields[loss]:.3f}") if not quiet else None
    if bar is not None:
        with bar:
            task = bar.add_task("audio -> mouth", total=mf.steps, loss=float("nan"))
            rep: MouthFitReport = fit_predictor(
                predictor, data.auds, data.aud_ids[order], codes[order], mf, seed=int(cfg.train.seed),
                progress=lambda s, v: bar.update(task, completed=s, loss=v),
            )
    else:
        rep = fit_predictor(predictor, data.auds, data.aud_ids[order], codes[order], mf, seed=int(cfg.train.seed))
    if not quiet:
        _say(rep, f"{rep.steps} steps in {rep.seconds:.0f} s")
    return asdict(rep)


def _say(rep: MouthFitReport, what: str) -> None:
    from radnerf_cli.console import console

    corr = ", ".join(f"{c:+.2f}" for c in rep.val_corr)
    console.print(
        f"[bold]audio -> mouth[/bold]: {what}; on {rep.holdout_frames} "
        f"held-back training frames the predicted codes correlate {corr} with the tracked ones"
    )

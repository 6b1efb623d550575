"""Fitting the ridge audio -> mouth-code predictor (:class:`~radnerf_cli.model.mouth.MouthRidge`) in closed form.

A few minutes of one person's speech is little data for a network: its fit depends on the seed and
it learns the moments of the clip as well as the sounds. A linear map of the pooled feature window,
regularised hard, has neither problem, and it is fitted in a second or two:

    alpha     ``alpha_per_frame`` x frames; 0 picks it from ALPHAS by cross-validation over ``folds``
              contiguous stretches of the training frames (lowest squared error over the components)
    gain      fitted on all but the last ``holdout`` stretch, its predictions there give each component
              a gain (:func:`~radnerf_cli.engine.mouth_fit.calibration_gain`): the opening's spread is
              matched to the tracked codes' (a regularised fit shrinks towards the mean), the rest
              keep their least-squares scale
    final     refitted on every training frame with that alpha; the gain is kept

The subject's validation split is never seen here, as with the network's fit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from radnerf_cli.engine.mouth_fit import MouthFitReport, calibration_gain, windows
from radnerf_cli.metrics.lipsync import pearson

ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0)  # candidate regularisation per training frame


def pooled_windows(predictor, feats: Tensor, aud_ids: Tensor, chunk: int = 256) -> np.ndarray:
    """[N, 8 * C] float64 pooled windows of the frames ``aud_ids`` (in chunks: windows are large)."""
    out = []
    with torch.no_grad():
        for s in range(0, len(aud_ids), chunk):
            out.append(predictor.pooled(windows(feats, aud_ids[s : s + chunk])).double().numpy())
    return np.concatenate(out) if out else np.zeros((0, predictor.in_mean.numel()))


def ridge_solver(X: np.ndarray, Y: np.ndarray) -> Callable[[float], np.ndarray]:
    """alpha -> coefficients [D, k] of ridge regression of centred ``Y`` [N, k] on ``X`` [N, D]
    (one eigendecomposition of the smaller Gram matrix serves every alpha)."""
    Yc = Y - Y.mean(0)
    if X.shape[0] <= X.shape[1]:
        s, U = np.linalg.eigh(X @ X.T)
        UtY = U.T @ Yc
        return lambda alpha: X.T @ (U @ (UtY / (np.maximum(s, 0) + alpha)[:, None]))
    s, V = np.linalg.eigh(X.T @ X)
    VtXY = V.T @ (X.T @ Yc)
    return lambda alpha: V @ (VtXY / (np.maximum(s, 0) + alpha)[:, None])


def choose_alpha(X: np.ndarray, Y: np.ndarray, folds: int = 5, alphas=ALPHAS) -> tuple[float, dict[float, float]]:
    """The per-frame alpha with the lowest cross-validated squared error, and each candidate's error."""
    N = X.shape[0]
    parts = np.array_split(np.arange(N), max(2, min(folds, N // 8)))
    err = dict.fromkeys(alphas, 0.0)
    for part in parts:
        train = np.setdiff1d(np.arange(N), part)
        solve = ridge_solver(X[train], Y[train])
        for a in alphas:
            pred = X[part] @ solve(a * len(train)) + Y[train].mean(0)
            err[a] += float(((pred - Y[part]) ** 2).sum())
    err = {a: e / (N * Y.shape[1]) for a, e in err.items()}
    return min(err, key=err.get), err


def fit_ridge(
    predictor,
    feats: Tensor,  # [T, 16, C] the subject's features
    aud_ids: Tensor,  # [N] aud ids of the training frames, in clip order
    codes: Tensor,  # [N, k] their tracked codes
    alpha_per_frame: float = 0.0,  # 0: cross-validated
    holdout: float = 0.1,
    calibrate: bool = True,
    opening: int | None = None,  # the component matched in spread (None: every component followed)
) -> MouthFitReport:
    """Fit ``predictor`` (a :class:`~radnerf_cli.model.mouth.MouthRidge`) in place."""
    t0 = time.perf_counter()
    feats = feats.float().cpu()
    predictor.set_normalisation(feats)
    P = pooled_windows(predictor, feats, aud_ids.cpu())
    Y = codes.double().cpu().numpy()
    mean, std = P.mean(0), P.std(0) + 1e-4
    X = (P - mean) / std
    alpha = float(alpha_per_frame) if alpha_per_frame > 0 else choose_alpha(X, Y)[0]
    n_all = len(X)
    n_hold = int(round(n_all * holdout)) if n_all * holdout >= 16 else 0
    k = Y.shape[1]
    if n_hold:
        fit, hold = slice(0, n_all - n_hold), slice(n_all - n_hold, n_all)
        p = X[hold] @ ridge_solver(X[fit], Y[fit])(alpha * (n_all - n_hold)) + Y[fit].mean(0)
        y = Y[hold]
    else:
        p, y = X @ ridge_solver(X, Y)(alpha * n_all) + Y.mean(0), Y
    corr = [pearson(p[:, j], y[:, j]) or 0.0 for j in range(k)]
    ratio = [float(p[:, j].std() / max(y[:, j].std(), 1e-9)) for j in range(k)]
    gain = [1.0] * k
    if calibrate:  # as the network's fit
        gain = calibration_gain(ratio, corr, opening)
    coef = ridge_solver(X, Y)(alpha * n_all)
    with torch.no_grad():
        predictor.in_mean.copy_(torch.from_numpy(mean).float())
        predictor.in_std.copy_(torch.from_numpy(std).float())
        predictor.coef.copy_(torch.from_numpy(coef).float())
        predictor.out_mean.copy_(torch.from_numpy(Y.mean(0)).float())
        predictor.gain.copy_(torch.tensor(gain, dtype=torch.float32))
    train_mse = float(((X @ coef + Y.mean(0) - Y) ** 2).mean())
    return MouthFitReport(0, train_mse, n_hold, corr, ratio, gain, time.perf_counter() - t0, alpha, opening=opening)

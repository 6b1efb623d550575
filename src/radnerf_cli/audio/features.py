"""One entry point for every extractor: 16 kHz mono audio -> RAD-NeRF windows [N_frames, 16, C]."""

from __future__ import annotations

import numpy as np

from radnerf_cli.audio.files import feature_dim
from radnerf_cli.audio.melspec import mel_features
from radnerf_cli.audio.whisper import whisper_rows
from radnerf_cli.audio.windows import SAMPLE_RATE, WINDOW, unwindow_features, window_features
from radnerf_cli.errors import InputError

FEATURE_KINDS = ("whisper", "mel")  # kinds we can compute from audio
MIN_SAMPLES = SAMPLE_RATE // 25  # one video frame (40 ms)
SILENCE_PEAK = 1e-4  # audio whose peak stays below this (-80 dBFS) counts as silent


def check_audio(audio: np.ndarray, source: str | None = None) -> np.ndarray:
    """Validate 16 kHz mono audio; returns it as contiguous float32 [S].

    InputError (naming ``source``) when it is not 1-D, shorter than one video frame (40 ms),
    not finite, or silent.
    """
    where = source or "audio"
    x = np.ascontiguousarray(np.asarray(audio, dtype=np.float32))
    if x.ndim != 1:
        raise InputError(f"{where}: expected mono audio samples [S], got shape {x.shape}")
    if x.size < MIN_SAMPLES:
        raise InputError(
            f"{where}: audio is too short ({x.size / SAMPLE_RATE * 1000:.1f} ms); it must last at least one video frame (40 ms)"
        )
    if not np.isfinite(x).all():
        raise InputError(f"{where}: audio contains NaN or infinite samples")
    if float(np.abs(x).max()) < SILENCE_PEAK:
        raise InputError(f"{where}: audio is silent (peak below -80 dBFS)", hint="check the file has speech in it")
    return x


def extract_features(
    audio: np.ndarray,
    kind: str,
    n_frames: int | None = None,
    progress: bool = True,
    source: str | None = None,
    whisper_model: str | None = None,
    device: str | None = None,
) -> np.ndarray:
    """Audio features per video frame (25 fps), in RAD-NeRF's layout.

    audio: [S] 16 kHz mono float32. kind: one of FEATURE_KINDS. n_frames: pad (with the same zero
    rows as at the edges) or trim to this many frames; default RAD-NeRF's count ``(S-80)//320//2+1``.
    source: the file name used in error messages. whisper_model: a CTranslate2 Whisper folder
    (default ``$RADNERF_WHISPER_MODEL``, then the packaged tiny.en). device: None/"auto" (CUDA when
    ctranslate2 sees a GPU), "cpu", "cuda" or "cuda:N".
    Returns [N_frames, 16, C] float32 (C = feature_dim(kind)).
    """
    if kind not in FEATURE_KINDS:
        raise InputError(
            f"audio feature kind '{kind}' cannot be computed (choose {' or '.join(FEATURE_KINDS)}; "
            "RAD-NeRF's eo/ds/hu features can only be imported from their .npy files)"
        )
    x = check_audio(audio, source)
    if kind == "whisper":
        rows = whisper_rows(x, model_path=whisper_model, device=device, progress=progress)
    else:
        rows = mel_features(x)
    assert rows.shape[1] == feature_dim(kind)
    return window_features(rows, n_frames)


def fit_frames(features: np.ndarray, n_frames: int) -> np.ndarray:
    """Trim or pad windows [N, 16, C] to [n_frames, 16, C] the way :func:`extract_features` does.

    Padding continues the zero-padded edge windows (the last real rows slide out of view), so
    imported RAD-NeRF files and our own features line up with a video of ``n_frames`` frames.
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 3 or features.shape[1] != WINDOW:
        raise ValueError(f"features must be [N, {WINDOW}, C], got shape {features.shape}")
    if n_frames <= features.shape[0]:
        return features[:n_frames]
    return window_features(unwindow_features(features), n_frames)

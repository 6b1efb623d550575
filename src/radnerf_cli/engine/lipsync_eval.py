"""The lip-sync section of `radnerf evaluate`: on the held-out frames and on any other audio.

Held-out split (with ground truth): the mouth opening of every rendered frame and of the real frame
(face mesh on both), their spreads and the ratio, each one's agreement with the split's audio (see
:mod:`radnerf_cli.metrics.lipsync`), and the per-frame mouth error against the real frames without
centring (``lmd_uncentred``), next to the centred LMD.

Extra audio (``--audio FILE``, no ground truth): rendered over the subject's pose track and
scored for spread (relative to the real held-out video's) and agreement with that audio.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from radnerf_cli.metrics import lipsync as L

FPS = 25
SAMPLE_RATE = 16000


def split_envelope(subject_dir: Path, aud_ids: np.ndarray) -> np.ndarray | None:
    """Envelope of the subject's own audio at the frames ``aud_ids`` (None without ``aud.wav``)."""
    from radnerf_cli import media

    wav = Path(subject_dir) / "aud.wav"
    if not wav.is_file():
        return None
    samples = media.load_audio(wav, SAMPLE_RATE)
    n = int(np.max(aud_ids)) + 1 if len(aud_ids) else 0
    env = L.speech_envelope(samples, max(n, int(round(samples.size / SAMPLE_RATE * FPS))))
    return env[np.minimum(np.asarray(aud_ids, dtype=int), len(env) - 1)]


def heldout(pred: L.MouthTrack, real: L.MouthTrack, envelope: np.ndarray | None) -> dict[str, Any]:
    """Lip-sync figures of a rendered split against its real frames and its audio."""
    real_spread = L.spread(real.opening)
    out: dict[str, Any] = {
        "render": L.report(pred.opening, envelope, real_spread["std"]) if envelope is not None else
        {"amplitude": L.spread(pred.opening), "amplitude_ratio": None, "sync": None},
        "real": L.report(real.opening, envelope, real_spread["std"]) if envelope is not None else
        {"amplitude": real_spread, "amplitude_ratio": 1.0, "sync": None},
        "mouth_error": L.mouth_error(pred, real),
        "faces_missed": {"render": pred.missed, "real": real.missed},
    }
    return out


def extra_audio(head, path: str | Path, tracker, real_std: float | None, max_seconds: float | None = None,
                show_progress: bool = True) -> dict[str, Any]:
    """Render ``head`` speaking the audio at ``path`` and score its lip sync (no ground truth)."""
    from PIL import Image

    from radnerf_cli import media
    from radnerf_cli.engine.render_video import RenderOptions, load_render_audio, render_video

    audio = load_render_audio(path, head.feature_kind)
    opts = RenderOptions(duration=min(audio.seconds, max_seconds) if max_seconds else None)
    with tempfile.TemporaryDirectory(prefix=".radnerf-eval-") as tmp:
        res = render_video(head, audio, None, opts, frames_dir=tmp, show_progress=show_progress)
        frames = (np.asarray(Image.open(p).convert("RGB")) for p in sorted(Path(tmp).glob("*.png")))
        pred = L.track(frames, tracker)
    samples = media.load_audio(path, SAMPLE_RATE) if audio.sound is not None else None
    if samples is not None:
        samples = samples[: res.frames * SAMPLE_RATE // FPS + SAMPLE_RATE // FPS]
    env = L.speech_envelope(samples, res.frames) if samples is not None else None
    rep = L.report(pred.opening, env, real_std) if env is not None else {
        "amplitude": L.spread(pred.opening), "amplitude_ratio": None, "sync": None}
    rep.update({"audio": str(path), "frames": res.frames, "faces_missed": pred.missed})
    return rep


def _track_of(meshes: list) -> L.MouthTrack:
    from radnerf_cli.preprocess.landmarks import to_ibug68

    m = np.stack([np.full((468, 2), np.nan, np.float32) if x is None else np.asarray(x)[:, :2] for x in meshes]) \
        if meshes else np.zeros((0, 468, 2), np.float32)
    return L.MouthTrack(m, np.asarray(to_ibug68(m))[..., :2])


def section(dataset: Path, head, aud_ids: np.ndarray, meshes_pred: list, meshes_gt: list,
            audios: list, show: bool = True, audio_seconds: float | None = None) -> dict[str, Any]:
    """The whole lip-sync section of an evaluation (held-out split, then each extra audio)."""
    from radnerf_cli.preprocess.landmarks import FaceTracker

    pred, real = _track_of(meshes_pred), _track_of(meshes_gt)
    out: dict[str, Any] = {"heldout": heldout(pred, real, split_envelope(dataset, aud_ids)), "audio": []}
    real_std = out["heldout"]["real"]["amplitude"]["std"]
    if audios:
        tracker = FaceTracker()
        try:
            for a in audios:
                out["audio"].append(extra_audio(head, a, tracker, real_std, audio_seconds, show_progress=show))
        finally:
            tracker.close()
    return out


def rows(section: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(clip, spread ratio, sync at 0 / best offset) rows for the printed table."""

    def fmt_sync(s):
        if not s or s.get("corr") is None:
            return "-"
        return f"{s['corr']:+.2f} (best {s['best_corr']:+.2f} at {s['best_offset']:+d})"

    def fmt_ratio(r):
        return "-" if r is None else f"{r:.2f}x"

    out = []
    h = section.get("heldout")
    if h:
        out.append(("held-out, real video", "1.00x", fmt_sync(h["real"]["sync"])))
        out.append(("held-out, render", fmt_ratio(h["render"]["amplitude_ratio"]), fmt_sync(h["render"]["sync"])))
    for a in section.get("audio", []):
        out.append((Path(a["audio"]).name, fmt_ratio(a["amplitude_ratio"]), fmt_sync(a["sync"])))
    return out

"""Lip sync, measured without SyncNet: how far the mouth opens, and whether it opens with the speech.

SyncNet's LSE-C / LSE-D (what talking-head papers report) need SyncNet's weights, which no package on
the registry ships; radnerf therefore measures lip sync with what it has offline:

    opening    inner-lip gap of the face mesh (mean of five upper/lower inner-lip landmark pairs),
               divided by the distance of the outer eye corners, per frame (so it does not depend
               on the image size or on how far the face is from the camera)
    amplitude  the spread (standard deviation) of the opening over a clip, and its ratio to the
               spread in the subject's real video: a mouth that barely moves scores near 0
    envelope   per video frame, the log energy of the audio in the speech band (300-3000 Hz) over
               the frame's 40 ms, a signal that is high while sound is voiced and open
    sync       Pearson correlation of opening and envelope at audio-video offsets of -5..+5
               frames: the value at offset 0, the best offset and its correlation. Real talking
               video scores clearly positive at an offset near 0; unrelated audio scores near 0

What it is not: a phoneme-level judge. A mouth that opens on loud syllables but makes the wrong
shapes (an 'o' for an 'ee') still scores well, and closed-mouth consonants (m, b, p) count as quiet
sound. It is a check that the mouth moves as much as the person's does and in time with the voice.

>>> env = speech_envelope(np.zeros(16000, np.float32), 25)
>>> env.shape
(25,)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FPS = 25
SAMPLE_RATE = 16000
# face mesh indices (468-point topology): upper and lower inner-lip points, paired
INNER_LIP_PAIRS = ((13, 14), (82, 87), (312, 317), (81, 178), (311, 402))
EYE_CORNERS = (33, 263)  # outer eye corners: the scale reference, independent of the jaw
MAX_OFFSET = 5  # frames searched each way for the best audio-video offset


def mouth_opening(mesh: np.ndarray) -> np.ndarray:
    """Inner-lip gap over eye-corner distance: mesh [..., 468, 2+] -> [...] (NaN where the mesh is NaN).

    >>> m = np.zeros((468, 2)); m[263, 0] = 100.0; m[14, 1] = 10.0; m[87, 1] = 10.0
    >>> round(float(mouth_opening(m)), 3)   # two of five pairs open by 10 px, eyes 100 px apart
    0.04
    """
    m = np.asarray(mesh, dtype=np.float64)[..., :2]
    up = m[..., [a for a, _ in INNER_LIP_PAIRS], :]
    lo = m[..., [b for _, b in INNER_LIP_PAIRS], :]
    gap = np.linalg.norm(lo - up, axis=-1).mean(-1)
    eyes = np.linalg.norm(m[..., EYE_CORNERS[1], :] - m[..., EYE_CORNERS[0], :], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(eyes > 0, gap / eyes, np.nan)


def speech_envelope(samples: np.ndarray, n_frames: int, sr: int = SAMPLE_RATE, fps: int = FPS,
                    band: tuple[float, float] = (300.0, 3000.0), floor_db: float = 50.0) -> np.ndarray:
    """Per-frame log energy (dB) of the speech band: samples [S] -> [n_frames].

    Frame i covers [i / fps, (i + 1) / fps); a Hann window of two frames' length centred on it
    smooths the estimate. Values are floored ``floor_db`` below the loudest frame (silence).
    """
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    hop = sr // fps
    win = 2 * hop
    nfft = 1 << int(math.ceil(math.log2(win)))
    pad = np.concatenate([np.zeros(win), x, np.zeros(win + n_frames * hop)])
    freqs = np.fft.rfftfreq(nfft, 1.0 / sr)
    sel = (freqs >= band[0]) & (freqs <= band[1])
    w = np.hanning(win)
    out = np.empty(n_frames)
    for i in range(n_frames):
        c = win + i * hop + hop // 2  # centre of frame i in the padded signal
        seg = pad[c - win // 2 : c - win // 2 + win] * w
        spec = np.abs(np.fft.rfft(seg, nfft)) ** 2
        out[i] = 10 * np.log10(spec[sel].sum() + 1e-12)
    if n_frames:
        out = np.maximum(out, out.max() - floor_db)
    return out.astype(np.float32)


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 8:
        return None
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    if a.std() < 1e-9 or b.std() < 1e-9:  # a constant signal: no correlation to speak of
        return None
    d = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / d)


def sync(opening: np.ndarray, envelope: np.ndarray, max_offset: int = MAX_OFFSET) -> dict:
    """Correlation of mouth opening with the audio envelope over offsets -max..max frames.

    A positive offset k pairs frame t's mouth with the audio at t + k (mouth leading the sound).
    Returns {"corr": at offset 0, "best_offset", "best_corr", "by_offset": {k: corr}}.
    """
    o = np.asarray(opening, dtype=np.float64)
    e = np.asarray(envelope, dtype=np.float64)
    n = min(len(o), len(e))
    o, e = o[:n], e[:n]
    by: dict[int, float | None] = {}
    for k in range(-max_offset, max_offset + 1):
        if k >= 0:
            by[k] = pearson(o[: n - k], e[k:])
        else:
            by[k] = pearson(o[-k:], e[: n + k])
    valid = {k: v for k, v in by.items() if v is not None}
    best = max(valid, key=lambda k: valid[k]) if valid else None
    return {"corr": by.get(0), "best_offset": best, "best_corr": valid.get(best) if best is not None else None,
            "by_offset": {str(k): v for k, v in by.items()}}


def spread(opening: np.ndarray) -> dict:
    """Amplitude of a clip's mouth opening: std and the 10/50/90th percentiles over frames with a face."""
    o = np.asarray(opening, dtype=np.float64)
    o = o[np.isfinite(o)]
    if o.size < 2:
        return {"std": None, "p10": None, "p50": None, "p90": None, "frames": int(o.size)}
    p10, p50, p90 = np.percentile(o, [10, 50, 90])
    return {"std": float(o.std()), "p10": float(p10), "p50": float(p50), "p90": float(p90), "frames": int(o.size)}


@dataclass
class MouthTrack:
    """The face mesh of each frame of a clip, as far as the tracker found it."""

    mesh: np.ndarray  # [N, 468, 2] pixel (x, y), NaN where no face was found
    lms68: np.ndarray  # [N, 68, 2] iBUG-68 landmarks from the same mesh, NaN where none

    @property
    def opening(self) -> np.ndarray:  # [N]
        return mouth_opening(self.mesh)

    @property
    def missed(self) -> int:
        return int(np.isnan(self.mesh[:, 0, 0]).sum())


def track(frames, tracker) -> MouthTrack:
    """Run ``tracker`` (a :class:`~radnerf_cli.preprocess.landmarks.FaceTracker`) over uint8 RGB frames."""
    from radnerf_cli.preprocess.landmarks import to_ibug68

    meshes = []
    for f in frames:
        m = tracker.mesh(np.ascontiguousarray(f))
        meshes.append(np.full((468, 2), np.nan, np.float32) if m is None else m[:, :2].astype(np.float32))
    mesh = np.stack(meshes) if meshes else np.zeros((0, 468, 2), np.float32)
    lms = to_ibug68(mesh) if len(mesh) else np.zeros((0, 68, 2), np.float32)
    return MouthTrack(mesh, np.asarray(lms)[..., :2])


def mouth_error(pred: MouthTrack, real: MouthTrack) -> dict:
    """Per-frame mouth error against the real frames, NOT centred (the opening itself counts).

    ``lmd_uncentred``: mean distance (px) of the 20 iBUG mouth landmarks; ``opening_mae``: mean
    absolute difference of the opening; ``opening_corr``: correlation of the two openings over time.
    """
    d = np.linalg.norm(pred.lms68[:, 48:68] - real.lms68[:, 48:68], axis=-1).mean(-1)
    d = d[np.isfinite(d)]
    po, ro = pred.opening, real.opening
    ok = np.isfinite(po) & np.isfinite(ro)
    return {
        "lmd_uncentred": float(d.mean()) if d.size else None,
        "opening_mae": float(np.abs(po[ok] - ro[ok]).mean()) if ok.any() else None,
        "opening_corr": pearson(po, ro),
    }


def report(opening: np.ndarray, envelope: np.ndarray, real_std: float | None) -> dict:
    """Amplitude (with its ratio to the real video's ``real_std``) and sync of one clip."""
    s = spread(opening)
    ratio = s["std"] / real_std if (s["std"] is not None and real_std) else None
    return {"amplitude": s, "amplitude_ratio": ratio, "sync": sync(opening, envelope)}

"""How wide the trained field opens the mouth, and the render gain that makes it open as wide as the person's.

Trained with a squared error, the field hedges: where one mouth code stands for several slightly
different mouths it renders their average, a mouth that parts its lips less than the person does.
After the lips stage the training frames tell by how much, without the validation split:

    frames    ``frames`` training frames evenly spaced over the clip, each rendered whole at its own
              pose (the head over the real torso: a face mesh given a rendered mouth inside the
              real face leans on the real context and sees almost no difference), driven by
              ``drive``: the codes predicted from its audio (``predicted``, what `render` does) or
              the codes tracked from it (``tracked``: the field alone)
    ratio     spread (std over the frames) of the rendered mouth opening over the real frames'
              spread, both from the face mesh (:mod:`radnerf_cli.metrics.lipsync`)
    gain      1 / ratio, clipped to [1, ``max_gain``]: the predicted code's deviation from the mean
              mouth is scaled by it at render time (it multiplies the predictor's gain of the opening
              component, or of every component with ``component`` None); the other components also
              part the lips a little, so scaling the opening alone leaves the rendered spread a few
              percent short of the person's

The gain is measured once and stored in the lips checkpoint (and so in every later checkpoint and
export); ``train.mouth_render_gain=false`` leaves the field's own amplitude.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

GAIN_KEY = "model/audio.predictor.gain"  # the predictor's per-component gain in a checkpoint


@dataclass
class RenderGainReport:
    drive: str  # predicted | tracked
    frames: int  # frames rendered (with a face found in both the render and the real frame)
    real_spread: float  # std of the real frames' opening
    render_spread: float  # std of the rendered opening
    ratio: float  # render_spread / real_spread
    opening_corr: float | None  # per-frame correlation of the two openings
    gain: float  # the factor applied to the predictor's gain
    seconds: float
    component: int | None = None  # the code component it scales (None: every component)


def spaced(n: int, k: int) -> list[int]:
    """``k`` indices evenly spaced over ``range(n)`` (all of them when ``n <= k``)."""
    if n <= k:
        return list(range(n))
    return [int(round(v)) for v in np.linspace(0, n - 1, k)]


def measure(head, data, codes: np.ndarray | None, frames: int, max_gain: float) -> RenderGainReport:
    """The rendered against the real mouth opening on ``frames`` frames of ``data`` (a training split).

    ``head``: a :class:`~radnerf_cli.engine.inference.TalkingHead`; ``codes`` [N, k]: the tracked codes
    of ``data`` to drive the field with, or None to drive it from the audio as `render` does.
    """
    from radnerf_cli.data import audio_window
    from radnerf_cli.engine import eval_protocols as ep
    from radnerf_cli.metrics import lipsync as L

    t0 = time.perf_counter()
    bg = np.asarray(head.background, dtype=np.uint8)
    rendered, real = [], []
    for i in spaced(len(data), frames):
        head.reset()  # frames are far apart: each one's own code, no smoothing across them
        aud = audio_window(data.auds, int(data.aud_ids[i]))
        eye = None if data.eye is None else float(data.eye[i])
        layers = head.render_layers(data.poses_raw[i], aud, eye, mouth_code=None if codes is None else codes[i])
        rendered.append(ep.head_frame(layers, ep.real_torso_background(data.torso_uint8(i), bg), data.H, data.W))
        real.append(data.image_uint8(i))
    o_r, o_g = openings(rendered, real)
    n, s_real, s_rend, ratio, gain = gain_rule(o_r, o_g, max_gain)
    ok = np.isfinite(o_r) & np.isfinite(o_g)
    return RenderGainReport("tracked" if codes is not None else "predicted", n, s_real, s_rend, ratio,
                            L.pearson(o_r[ok], o_g[ok]) if n >= 2 else None, gain, time.perf_counter() - t0)


def openings(rendered: list[np.ndarray], real: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The face mesh's mouth opening of each rendered and each real frame (NaN where no face is found)."""
    from radnerf_cli.metrics import lipsync as L
    from radnerf_cli.preprocess.landmarks import FaceTracker

    tracker = FaceTracker()
    try:
        return L.track(rendered, tracker).opening, L.track(real, tracker).opening
    finally:
        tracker.close()


def gain_rule(o_render: np.ndarray, o_real: np.ndarray, max_gain: float) -> tuple[int, float, float, float, float]:
    """(frames, real spread, rendered spread, ratio, gain) over the frames where both openings are known.

    Gain = 1 / ratio clipped to [1, ``max_gain``]; with fewer than two such frames (no face found: a
    synthetic scene) nothing is measured and the gain is 1.
    """
    ok = np.isfinite(o_render) & np.isfinite(o_real)
    n = int(ok.sum())
    if n < 2 or float(o_real[ok].std()) <= 0:
        return n, 0.0, 0.0, 1.0, 1.0
    s_real, s_rend = float(o_real[ok].std()), float(o_render[ok].std())
    ratio = s_rend / s_real
    return n, s_real, s_rend, ratio, float(np.clip(1.0 / max(ratio, 1e-3), 1.0, max_gain))


def calibrate_checkpoint(path: Path, data, codes: Tensor | None, frames: int, max_gain: float,
                         device=None, component: int | None = None) -> dict[str, Any] | None:
    """Measure the render gain of the checkpoint at ``path`` (a lips or head stage) and store it there.

    The predictor's gain (of ``component`` only, when given) is multiplied by the measured factor, the
    checkpoint rewritten atomically, and the report (also kept in its metadata under
    ``mouth_render_gain``) returned as a dict; None, and nothing done, when the checkpoint already
    holds one (a gain is never applied twice).
    """
    from radnerf_cli.engine import checkpoint
    from radnerf_cli.engine.inference import TalkingHead, inference_state

    tensors, meta = checkpoint.load(path)
    if stored(meta) is not None:
        return None
    head = TalkingHead.checked(inference_state(tensors), checkpoint.prefixed(tensors, "data"), meta["model_meta"],
                               device=device, source=path)
    rep = measure(head, data, None if codes is None else codes.cpu().numpy(), frames, max_gain)
    rep.component = component
    gain = tensors[GAIN_KEY].float().clone()
    if component is None:
        gain *= rep.gain
    else:
        gain[component] *= rep.gain
    tensors[GAIN_KEY] = gain
    out = asdict(rep)
    meta["mouth_render_gain"] = out
    checkpoint.save(path, tensors, meta)
    return out


def stored(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The render-gain report a checkpoint's metadata holds, or None when it was never calibrated."""
    rep = meta.get("mouth_render_gain")
    return rep if isinstance(rep, dict) else None

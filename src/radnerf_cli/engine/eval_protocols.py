"""The three ways `radnerf evaluate` scores a render, each its own function, never mixed.

One render per frame gives the model's layers (head premultiplied by its opacity, the opacity, and
the synthesized torso); each protocol composes them its own way and is scored against its own truth:

    whole     the whole synthesized frame: head over the synthesized torso over the background,
              against ``gt_imgs`` at the model's size (RAD-NeRF's protocol; needs a trained torso;
              a torso on the body pose gets the frame's body pose, as the head gets its head pose)
    head      the head over the real torso (``torso_imgs`` over the background), against ``gt_imgs``
              (RAD-NeRF's head-stage protocol)
    portrait  the face pasted into the real frame (portrait mode), against the real frame at the
              source video's size (SyncTalk's protocol; needs the source video)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from radnerf_cli.render.composite import over, torso_over

PROTOCOLS = ("whole", "head", "portrait")
LABELS = {
    "whole": "whole synthesized frame (RAD-NeRF protocol)",
    "head": "head over the real torso",
    "portrait": "portrait: face pasted into the real frame (SyncTalk protocol)",
}


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def real_torso_background(torso: np.ndarray | None, bg: np.ndarray) -> np.ndarray:
    """The real torso layer (RGBA uint8) over the background (uint8), float [H, W, 3] in [0, 1]."""
    b = bg.astype(np.float32) / 255.0
    if torso is None:
        return b
    return torso_over(torso.astype(np.float32) / 255.0, b)


def whole_frame(layers: dict[str, np.ndarray], bg: np.ndarray, H: int, W: int) -> np.ndarray | None:
    """Head over the synthesized torso over ``bg``: uint8 [H, W, 3], or None without a torso."""
    if "torso_alpha" not in layers:
        return None
    b = bg.astype(np.float32).reshape(-1, 3) / 255.0
    under = over(layers["torso_rgb"], layers["torso_alpha"][:, None], b)
    img = layers["head"] + (1 - layers["weights"])[:, None] * under
    return _u8(img).reshape(H, W, 3)


def head_frame(layers: dict[str, np.ndarray], real_torso: np.ndarray, H: int, W: int) -> np.ndarray:
    """Head over the real torso layer (float [H, W, 3] from :func:`real_torso_background`): uint8."""
    img = layers["head"] + (1 - layers["weights"])[:, None] * real_torso.reshape(-1, 3)
    return _u8(img).reshape(H, W, 3)


def portrait_frame(layers: dict[str, np.ndarray], real: np.ndarray, src: Any, k: int, H: int, W: int) -> np.ndarray:
    """The face of ``layers`` pasted into ``real`` (entry ``k`` of the portrait source): uint8, real's size."""
    from radnerf_cli.engine.portrait import paste

    def render(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return layers["head"][pixels], layers["weights"][pixels]

    return paste(real, src.crop, src.lms[k], H, W, src.size, render)["image"]

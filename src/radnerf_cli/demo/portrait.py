"""A talking portrait made from a still photo: jaw, blinks and a little head motion, frame by frame.

The photo is scikit-image's bundled ``astronaut`` portrait (in the installed package, no download).
Its face landmarks are found once with mediapipe's face mesh; every frame then warps the lower face
down by the jaw opening (with a dark mouth cavity between the lips), closes the eyes during blinks,
and turns the head a little about the neck, leaving the background still.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radnerf_cli.errors import InputError

# Face-mesh landmark indices (mediapipe's 468-point topology).
MOUTH_LEFT, MOUTH_RIGHT = 61, 291
UPPER_LIP_INNER, LOWER_LIP_INNER = 13, 14
CHIN = 152
FOREHEAD = 10
EYES = ((159, 145, 33, 133), (386, 374, 362, 263))  # (upper lid, lower lid, corner, corner)


@dataclass
class FaceGeometry:
    """Where the parts of the face are in the portrait, in pixels (x, y)."""

    mouth_left: np.ndarray  # [2]
    mouth_right: np.ndarray  # [2]
    lip_upper: np.ndarray  # [2] inner upper lip
    lip_lower: np.ndarray  # [2] inner lower lip
    chin: np.ndarray  # [2]
    forehead: np.ndarray  # [2]
    eyes: list[np.ndarray]  # per eye [4, 2]: upper lid, lower lid, two corners


def portrait_image(crop: tuple[int, int, int, int] = (32, 0, 384, 384)) -> np.ndarray:
    """The bundled astronaut portrait cropped to (x, y, w, h): uint8 [h, w, 3]."""
    from skimage import data

    img = data.astronaut()
    x, y, w, h = crop
    return np.ascontiguousarray(img[y:y + h, x:x + w])


def detect_geometry(image: np.ndarray) -> FaceGeometry:
    """Face-mesh landmarks of the portrait (mediapipe, weights inside its wheel)."""
    from radnerf_cli.demo.facemesh import face_landmarks

    pts = face_landmarks(image)
    if pts is None:
        raise InputError("demo portrait: no face found by mediapipe's face mesh")
    return FaceGeometry(
        mouth_left=pts[MOUTH_LEFT], mouth_right=pts[MOUTH_RIGHT],
        lip_upper=pts[UPPER_LIP_INNER], lip_lower=pts[LOWER_LIP_INNER],
        chin=pts[CHIN], forehead=pts[FOREHEAD],
        eyes=[pts[list(idx)] for idx in EYES],
    )


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


class PortraitAnimator:
    """Renders frames of the portrait for a jaw opening, a blink amount and a head pose."""

    def __init__(self, image: np.ndarray, geo: FaceGeometry, max_jaw_px: float | None = None):
        self.image = image.astype(np.float32)
        self.geo = geo
        h, w = image.shape[:2]
        self.H, self.W = h, w
        self.ys, self.xs = np.mgrid[0:h, 0:w].astype(np.float32)
        mouth_w = float(np.linalg.norm(geo.mouth_right - geo.mouth_left))
        self.mouth_c = (geo.mouth_left + geo.mouth_right) / 2
        self.lip_mid_y = float(geo.lip_upper[1] + geo.lip_lower[1]) / 2
        face_h = float(geo.chin[1] - geo.forehead[1])
        self.max_jaw = max_jaw_px if max_jaw_px is not None else 0.11 * face_h
        # Jaw weight: moves what lies below the lips, fading out sideways past the jaw and below the chin.
        half = 1.35 * mouth_w
        wx = 1.0 - _smoothstep((np.abs(self.xs - self.mouth_c[0]) - 0.55 * mouth_w) / (half - 0.55 * mouth_w))
        chin_y = float(geo.chin[1])
        below = _smoothstep((self.ys - self.lip_mid_y) / 3.0)
        fade = 1.0 - _smoothstep((self.ys - chin_y) / (0.45 * (chin_y - self.lip_mid_y)))
        self.jaw_weight = wx * below * fade
        self.mouth_w = mouth_w
        # Head weight: the head and neck follow the head pose; the background and shoulders stay still.
        centre = np.array([self.mouth_c[0], (geo.forehead[1] + geo.chin[1]) / 2])
        rx, ry = 1.1 * mouth_w * 1.6, 0.85 * face_h
        r = np.sqrt(((self.xs - centre[0]) / rx) ** 2 + ((self.ys - centre[1]) / ry) ** 2)
        self.head_weight = 1.0 - _smoothstep((r - 1.0) / 0.6)
        self.pivot = np.array([self.mouth_c[0], chin_y + 0.2 * face_h], dtype=np.float32)
        # Skin colour for the closed eyelids: the median of the band between each eye and its brow.
        self.lid_colour = []
        for eye in geo.eyes:
            x0, x1 = int(eye[:, 0].min()), int(eye[:, 0].max()) + 1
            y_top = int(eye[0, 1])
            band = self.image[max(0, y_top - 9):max(1, y_top - 5), x0:x1].reshape(-1, 3)
            self.lid_colour.append(np.median(band, axis=0))

    def frame(self, jaw: float, blink: float, yaw: float, pitch: float, roll: float) -> np.ndarray:
        """One frame: jaw in [0, 1], blink in [0, 1], yaw/pitch in pixels of shift, roll in degrees.

        Returns uint8 [H, W, 3].
        """
        import cv2

        img = self.image.copy()
        # Eyes: lids close towards the lower lid line, filled with skin colour.
        for eye, colour in zip(self.geo.eyes, self.lid_colour, strict=True):
            if blink <= 0.01:
                continue
            cx = (eye[2, 0] + eye[3, 0]) / 2
            cy = (eye[0, 1] + eye[1, 1]) / 2
            ax = abs(eye[3, 0] - eye[2, 0]) / 2 + 1.5
            ay = max(abs(eye[1, 1] - eye[0, 1]) / 2, 1.5) + 2.0
            inside = ((self.xs - cx) / ax) ** 2 + ((self.ys - cy) / ay) ** 2
            covered = (self.ys < cy - ay + 2 * ay * blink).astype(np.float32)
            a = (1.0 - _smoothstep((inside - 0.7) / 0.3)) * covered * min(1.0, blink * 1.3)
            img = img * (1 - a[..., None]) + colour * a[..., None]
        # Jaw: sample each pixel from higher up by the jaw displacement (backward warp).
        d = jaw * self.max_jaw
        map_x = self.xs.copy()
        map_y = self.ys - d * self.jaw_weight
        img = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        # Mouth cavity: a dark ellipse between the upper lip and the lowered lower lip.
        if d > 0.5:
            cy = self.lip_mid_y + d / 2
            ax, ay = 0.36 * self.mouth_w, d / 2 + 0.5
            r = ((self.xs - self.mouth_c[0]) / ax) ** 2 + ((self.ys - cy) / ay) ** 2
            a = 1.0 - _smoothstep((r - 0.75) / 0.25)
            cavity = np.array([55.0, 18.0, 22.0], dtype=np.float32)
            teeth = (self.ys < cy - 0.45 * ay) & (r < 0.9)  # a strip of upper teeth
            colour = np.where(teeth[..., None], np.array([225.0, 215.0, 205.0], dtype=np.float32), cavity)
            img = img * (1 - a[..., None]) + colour * a[..., None]
        # Head motion: rotate by roll about a pivot under the chin and shift, weighted to the head.
        if abs(yaw) + abs(pitch) + abs(roll) > 1e-3:
            t = np.deg2rad(roll)
            c, s = np.cos(t), np.sin(t)
            px, py = self.pivot
            dx = self.xs - px
            dy = self.ys - py
            src_x = px + c * dx + s * dy - yaw
            src_y = py - s * dx + c * dy - pitch
            wgt = self.head_weight
            map_x = self.xs + wgt * (src_x - self.xs)
            map_y = self.ys + wgt * (src_y - self.ys)
            img = cv2.remap(img, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)

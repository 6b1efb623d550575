"""Face-mesh landmarks of one image through mediapipe (its weights ship inside the wheel)."""

from __future__ import annotations

import os
import warnings

import numpy as np


def face_landmarks(image: np.ndarray) -> np.ndarray | None:
    """468+ face-mesh points of the largest face in an RGB uint8 image [H, W, 3] as pixels [P, 2], or None."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ start-up chatter
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # protobuf deprecation notes from inside mediapipe
        import mediapipe as mp

        from radnerf_cli.preprocess.landmarks import quiet_native_logs

        h, w = image.shape[:2]
        with quiet_native_logs(), mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.5) as mesh:
            res = mesh.process(np.ascontiguousarray(image))
    if not res.multi_face_landmarks:
        return None
    lm = res.multi_face_landmarks[0].landmark
    return np.array([[p.x * w, p.y * h] for p in lm], dtype=np.float32)

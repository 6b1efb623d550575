"""Source frames for portrait mode, read in any order from a video that can only be decoded forwards.

A render plays the pose track forwards, then backwards, so it asks for frames out of order. The
order is known in advance, so the video is decoded once, forwards, and each frame that will be
asked for is kept until its last use (raw while that fits in ``max_raw_bytes``, else JPEG-encoded
at high quality), then dropped.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from radnerf_cli.errors import InputError

MAX_RAW_BYTES = 1 << 30  # frames kept undecoded above this are held as JPEG (quality 97)


class FrameReader:
    """Frames ``order[0], order[1], ...`` of ``video`` decoded at ``fps``, to be fetched in that order.

    >>> r = FrameReader("clip.mp4", 25.0, [0, 1, 2, 1, 0])   # doctest: +SKIP
    >>> [r.next().shape for _ in range(5)]                   # doctest: +SKIP
    """

    def __init__(self, video: str | os.PathLike, fps: float | None, order: Sequence[int],
                 size: tuple[int, int] | None = None, max_raw_bytes: int = MAX_RAW_BYTES):
        from radnerf_cli import media

        self.video = Path(video)
        self.order = [int(i) for i in order]
        if self.order and min(self.order) < 0:
            raise ValueError("frame indices must not be negative")
        self._uses = Counter(self.order)
        self._cache: dict[int, np.ndarray | bytes] = {}
        self._frames = media.read_frames(self.video, fps=fps)
        self._decoded = 0  # frames taken from the decoder so far
        self._pos = 0
        self._size = size
        self._raw = True
        if self.order and size is not None:
            self._raw = len(self._uses) * size[0] * size[1] * 3 <= max_raw_bytes

    def _decode_until(self, idx: int) -> None:
        while self._decoded <= idx:
            try:
                frame = next(self._frames)
            except StopIteration:
                raise InputError(
                    f"{self.video}: ends after {self._decoded} frames, but frame {idx} is needed",
                    hint="this is not the video the subject was made from; pass the original with --source",
                ) from None
            k = self._decoded
            self._decoded += 1
            if k in self._uses:
                self._cache[k] = frame.copy() if self._raw else _encode(frame)

    def next(self) -> np.ndarray:
        """The next frame of the order: RGB uint8 [H, W, 3]."""
        if self._pos >= len(self.order):
            raise IndexError("every frame of the order was fetched already")
        idx = self.order[self._pos]
        self._pos += 1
        self._decode_until(idx)
        item = self._cache[idx]
        self._uses[idx] -= 1
        if self._uses[idx] == 0:
            del self._cache[idx]
            del self._uses[idx]
        return item if isinstance(item, np.ndarray) else _decode(item)

    def close(self) -> None:
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()
        self._cache.clear()


def _encode(frame: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 97])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def _decode(data: bytes) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

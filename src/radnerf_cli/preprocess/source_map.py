"""Where a subject's frames came from: the source video, its crop box and the frame mapping.

Portrait mode pastes the rendered face back into the subject's own video at its original size and
framing, so preprocess keeps (in ``source.json`` beside the dataset, a few hundred bytes)::

    {"video": "/abs/path/clip.mp4", "bytes": 123, "mtime_ns": 456,   the source file, to find and check it
     "width": 1920, "height": 1080,                                  source frame size (after rotation)
     "crop": [x, y, side, side],                                     the square crop, in source pixels
     "size": 512, "fps": 25.0, "frames": 1779}                       crop resized to size x size

Frame mapping: ``ori_imgs/{i}.jpg`` is frame ``i`` of the source decoded at ``fps`` (ffmpeg's fps
filter, the same decode preprocess ran), cropped to ``crop`` and resized to ``size``. The frames
themselves are not copied (no disk cost); the video must stay where it was, or be given again.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from radnerf_cli import fsutil
from radnerf_cli.errors import InputError

SOURCE_FILE = "source.json"


@dataclass
class SourceMap:
    """The source video of a dataset and how its frames map onto the dataset's."""

    video: str  # absolute path of the source video when it was preprocessed
    bytes: int  # its size then (a moved copy is recognised by it)
    mtime_ns: int  # its modification time then
    width: int  # source frame size, pixels (after display rotation)
    height: int
    crop: list[int]  # [x, y, w, h] of the square crop in source pixels
    size: int  # the crop is resized to size x size for the dataset
    fps: float  # frame i of the dataset is frame i of the source decoded at this rate
    frames: int  # frames in the dataset

    def scale(self) -> float:
        """Source pixels per dataset pixel."""
        return self.crop[2] / self.size


def write_source_map(root: str | os.PathLike, video: str | os.PathLike, crop, width: int, height: int,
                     size: int, fps: float, frames: int) -> Path:
    """Write ``source.json`` in the dataset folder ``root`` (atomically)."""
    p = Path(video).resolve()
    st = p.stat()
    sm = SourceMap(str(p), int(st.st_size), int(st.st_mtime_ns), int(width), int(height),
                   [int(v) for v in crop], int(size), float(fps), int(frames))
    out = Path(root) / SOURCE_FILE
    fsutil.write_json(out, asdict(sm))
    return out


def read_source_map(root: str | os.PathLike) -> SourceMap | None:
    """The dataset's source map, or None when it has none (made by RAD-NeRF's scripts or an older radnerf)."""
    p = Path(root) / SOURCE_FILE
    if not p.is_file():
        return None
    try:
        d = json.loads(p.read_text())
        return SourceMap(**{k: d[k] for k in SourceMap.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{p}: not a valid source map ({e})", hint="re-run `radnerf preprocess` on the video") from None


def locate_video(sm: SourceMap, override: str | os.PathLike | None, subject: str) -> Path:
    """The source video file to read frames from: ``override`` if given, else the recorded path.

    InputError (one line: what is missing and how to get it) when the file is gone or is not the
    video that was preprocessed (a different size on disk, or a different frame size).
    """
    from radnerf_cli import media

    p = Path(override).expanduser() if override is not None else Path(sm.video)
    if not p.is_file():
        if override is not None:
            raise InputError(f"{p}: source video not found")
        raise InputError(
            f"{p}: the source video of subject '{subject}' is missing (moved or deleted)",
            hint="put it back, or pass its new location with --source PATH",
        )
    if override is None and p.stat().st_size != sm.bytes:
        raise InputError(
            f"{p}: is not the video subject '{subject}' was made from ({p.stat().st_size} bytes, was {sm.bytes})",
            hint="pass the original video with --source PATH",
        )
    info = media.probe(p)
    if (info.width, info.height) != (sm.width, sm.height):
        raise InputError(
            f"{p}: frames are {info.width}x{info.height}, but subject '{subject}' was made from a "
            f"{sm.width}x{sm.height} video",
            hint="pass the original video with --source PATH",
        )
    return p

"""Which video a subject was made from, so that another video never lands in it unnoticed.

``.radnerf/source.json`` holds the source video's path, size and SHA-256. Preprocessing a different
video (other content, whatever its name) into a subject that has one is refused unless ``force``;
with ``force`` the subject's training run, made from the old video, is moved aside so that no stale
checkpoint is trained on or rendered from.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from radnerf_cli import fsutil
from radnerf_cli.errors import InputError
from radnerf_cli.workspace import Subject


@dataclass(frozen=True)
class Source:
    path: str  # absolute path the video was read from
    bytes: int
    sha256: str


def fingerprint(video: str | os.PathLike) -> Source:
    p = Path(video).expanduser().resolve()
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return Source(path=str(p), bytes=p.stat().st_size, sha256=h.hexdigest())


def _record(subject: Subject) -> Path:
    return subject.state_dir / "source.json"


def recorded(subject: Subject) -> Source | None:
    try:
        d = json.loads(_record(subject).read_text())
        return Source(path=str(d["path"]), bytes=int(d["bytes"]), sha256=str(d["sha256"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check(subject: Subject, video: str | os.PathLike, force: bool) -> tuple[Source | None, str | None]:
    """Check that ``video`` may be preprocessed into ``subject``; returns (its fingerprint, a note).

    Raises InputError naming the existing source when the subject was made from another video and
    ``force`` is False. With ``force``, moves the old run folder aside; the note says where (None when
    nothing was moved). The fingerprint is None when the video is missing (the pipeline names it).
    """
    if not Path(video).is_file():
        return None, None
    new = fingerprint(video)
    old = recorded(subject)
    note = None
    if old is not None and old.sha256 != new.sha256:
        if not force:
            raise InputError(
                f"subject '{subject.name}' was made from another video, {old.path}; {new.path} differs",
                hint=f"name a new subject with --subject, or give --force to replace '{subject.name}' "
                "(its training run is moved aside)",
            )
        if subject.run_dir.exists():
            aside = subject.root / f"run.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
            os.replace(subject.run_dir, aside)
            note = (f"subject '{subject.name}' now comes from {new.path}: its training run from {old.path} "
                    f"was moved to {aside}")
    return new, note


def record(subject: Subject, source: Source | None) -> None:
    """Write ``source`` as the subject's source video (after a successful preprocess)."""
    if source is not None and recorded(subject) != source:
        subject.state_dir.mkdir(parents=True, exist_ok=True)
        fsutil.write_json(_record(subject), {"path": source.path, "bytes": source.bytes, "sha256": source.sha256})

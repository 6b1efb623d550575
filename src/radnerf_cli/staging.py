"""Rebuilding a subject's dataset beside the old one, and swapping it in only once it is complete.

    WORKSPACE/subjects/
      NAME/              the subject: its dataset, run/ and exports/ (untouched while a rebuild runs)
      .NAME.staging/     the new dataset being built; it has its own step markers, so a killed
                         rebuild resumes here; bad input removes it and leaves NAME as it was
      .NAME.previous/    the old folder for the moment of the swap, then deleted

The staging folder starts as a hard-linked copy of the dataset (every write replaces a file by a
rename, so the old subject never sees a change), which lets finished steps be skipped there too.
The swap is a few renames: NAME -> .NAME.previous, what the new dataset does not replace (run/,
exports/, other files) moves across, .NAME.staging -> NAME. :func:`recover` finishes or undoes a
swap that a killed process left half-done; every command that claims the subject calls it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from radnerf_cli import fsutil
from radnerf_cli.errors import InputError
from radnerf_cli.workspace import Subject

CARRY = ("run", "exports")  # the subject's own work: never copied into staging, always carried over
COMPLETE = ".radnerf-staging-complete"  # written into staging when the new dataset is whole


def staging_dir(subject: Subject) -> Path:
    return subject.workspace / "subjects" / f".{subject.name}.staging"


def previous_dir(subject: Subject) -> Path:
    return subject.workspace / "subjects" / f".{subject.name}.previous"


def _link_tree(src: Path, dst: Path, top: bool = True) -> None:
    """Hard-link every file of ``src`` into ``dst`` (copies where links are not possible)."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(src):
        if top and entry.name in CARRY:
            continue
        target = dst / entry.name
        if entry.is_dir(follow_symlinks=False):
            _link_tree(Path(entry.path), target, top=False)
        elif entry.is_file(follow_symlinks=False) and not fsutil.TEMP_RE.match(entry.name):
            try:
                os.link(entry.path, target)
            except OSError:
                shutil.copy2(entry.path, target)


@contextlib.contextmanager
def rebuild(subject: Subject, seed: bool = True) -> Iterator[Path]:
    """Yield the staging folder to build the new dataset in; swap it in when the block succeeds.

    ``seed`` starts staging from the current dataset (so unchanged steps can be skipped). Bad
    input (InputError) removes staging; any other failure keeps it for the next run to resume.
    """
    stage = staging_dir(subject)
    if not stage.exists():
        tmp = stage.with_name(stage.name + ".seeding")
        shutil.rmtree(tmp, ignore_errors=True)
        if seed and subject.root.is_dir():
            _link_tree(subject.root, tmp)
        else:
            tmp.mkdir(parents=True)
        os.replace(tmp, stage)
    (stage / COMPLETE).unlink(missing_ok=True)
    try:
        yield stage
    except InputError:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    fsutil.sync()
    fsutil.write_text(stage / COMPLETE, "")
    swap(subject)


def swap(subject: Subject) -> None:
    """Put a complete staging folder in the subject's place (resumable after a crash at any point)."""
    root, stage, prev = subject.root, staging_dir(subject), previous_dir(subject)
    if stage.is_dir() and not (stage / COMPLETE).is_file():
        raise RuntimeError(f"{stage}: the new dataset is not complete")
    if stage.is_dir():
        if root.exists():
            if prev.exists():
                shutil.rmtree(prev)
            os.replace(root, prev)
        if prev.is_dir():
            for entry in os.scandir(prev):
                if not os.path.lexists(stage / entry.name):
                    os.replace(entry.path, stage / entry.name)
        os.replace(stage, root)
        fsutil.sync()
    (root / COMPLETE).unlink(missing_ok=True)
    shutil.rmtree(prev, ignore_errors=True)


def recover(subject: Subject) -> None:
    """Finish a swap whose new dataset was complete, or put the old folder back; drop leftovers."""
    root, stage, prev = subject.root, staging_dir(subject), previous_dir(subject)
    if (stage / COMPLETE).is_file() or (prev.exists() and root.exists()):
        swap(subject)
    elif prev.is_dir() and not root.exists():
        os.replace(prev, root)
    shutil.rmtree(stage.with_name(stage.name + ".seeding"), ignore_errors=True)

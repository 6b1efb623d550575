"""Atomic file writes: a temp file in the same folder, then rename. Nothing is ever half-written.

A temp file is named ``.STEM.PID.RANDOM.tmp.SUFFIX`` so a later run can tell whether the process
that made it is still alive; :func:`clean_stale_temps` removes those left by killed processes.
Before the rename the file and its folder are flushed to disk (``fsync``), so a power cut leaves
either the old file or the complete new one, never an empty one. Bulk writers (thousands of frames)
turn that off with :func:`batched` and call :func:`sync` once before they record their work as done.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from radnerf_cli.errors import WriteError

# mkstemp creates files readable by their owner only; give them the usual permissions instead.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK

# errors while writing that mean "this disk cannot take the file", reported as one line naming it
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}
TEMP_RE = re.compile(r"^\.(?P<stem>.*)\.(?P<pid>\d+)\.[A-Za-z0-9_]{6,}\.tmp(\.[^.]+)?$")
LEGACY_TEMP_RE = re.compile(r"^\.(?P<stem>.*)\.[A-Za-z0-9_]{8}\.tmp(\.[^.]+)?$")  # temps made without a pid
LEGACY_MAX_AGE = 24 * 3600  # seconds after which a temp without a pid is stale

_batched = 0  # > 0 inside batched(): no fsync per file
_batched_lock = threading.Lock()


@contextlib.contextmanager
def batched() -> Iterator[None]:
    """Inside this block atomic writes skip their fsync; :func:`sync` flushes them all at once."""
    global _batched
    with _batched_lock:
        _batched += 1
    try:
        yield
    finally:
        with _batched_lock:
            _batched -= 1


def sync() -> None:
    """Flush every written file to disk (one call instead of one fsync per file)."""
    os.sync()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot open or fsync a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_error(path: Path, e: OSError) -> WriteError:
    """One line naming ``path`` for an OSError met while writing it."""
    return WriteError(f"{path}: cannot write here ({e.strerror or e})")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None, durable: bool | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is flushed and renamed onto ``path``.

    The temp name keeps the final suffix (or ``suffix``) so writers that pick a format from the
    extension (imageio, PIL, numpy) still work. On error the temp file is removed. ``durable``
    (default: on, except inside :func:`batched`) fsyncs the file and its folder.
    """
    path = Path(path)
    sfx = suffix if suffix is not None else "".join(path.suffixes[-1:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{os.getpid()}.", suffix=f".tmp{sfx}", dir=path.parent)
    except OSError as e:
        raise write_error(path, e) from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, _FILE_MODE)
    try:
        yield tmp_path
        os.chmod(tmp_path, _FILE_MODE)  # some writers (safetensors) recreate the file as owner-only
        sync_now = durable if durable is not None else _batched == 0
        if sync_now:
            _fsync_file(tmp_path)
        os.replace(tmp_path, path)
        if sync_now:
            _fsync_dir(path.parent)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
            raise write_error(path, e) from None
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent) + "\n")


def save_npy(path: str | os.PathLike, array) -> None:
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def save_image(path: str | os.PathLike, image, quality: int = 95) -> None:
    """Save an HxW or HxWxC uint8 array as PNG/JPEG, atomically."""
    from PIL import Image

    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(path.suffix.lower(), "PNG")
    kwargs = {"quality": quality} if fmt == "JPEG" else {}
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format=fmt, **kwargs)


# ------------------------------------------------------------------ stale temps


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs now (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def process_start_time(pid: int) -> float | None:
    """Wall-clock start time of process ``pid`` (Linux /proc), or None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def temp_is_stale(path: Path, now: float | None = None) -> bool:
    """Whether ``path`` (one of our temp names) was left behind by a process that is gone."""
    m = TEMP_RE.match(path.name)
    try:
        mtime = path.lstat().st_mtime
    except OSError:
        return False
    if m is None:
        return LEGACY_TEMP_RE.match(path.name) is not None and (now or time.time()) - mtime > LEGACY_MAX_AGE
    pid = int(m.group("pid"))
    if pid == os.getpid():
        return False
    if not pid_alive(pid):
        return True
    started = process_start_time(pid)
    return started is not None and started > mtime + 2  # the pid was reused by a later process


def clean_stale_temps(folder: str | os.PathLike, recursive: bool = True, stem: str | None = None) -> list[Path]:
    """Remove our temp files under ``folder`` whose writer is gone; returns what was removed.

    ``stem`` limits the clean-up to the temps of one target name (``.STEM.*.tmp.*``).
    """
    root = Path(folder)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    walker = os.walk(root) if recursive else [(str(root), [], [e.name for e in os.scandir(root) if e.is_file()])]
    now = time.time()
    for dirpath, _dirs, files in walker:
        for name in files:
            if not name.startswith(".") or ".tmp" not in name:
                continue
            if stem is not None and not name.startswith(f".{stem}."):
                continue
            p = Path(dirpath) / name
            if temp_is_stale(p, now):
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed.append(p)
    return removed

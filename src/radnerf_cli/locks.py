"""One lock per subject: preprocess, train, and render / export writing into a subject take it.

The lock is ``WORKSPACE/subjects/.NAME.lock``, held with ``flock`` for as long as the command runs
and holding the owner's pid, command line and start time. The kernel drops a ``flock`` when its
process dies, however it dies, so a lock left by a killed run is simply taken over (and said so);
a live owner makes the second command stop at once with one line naming it.

:func:`claim_subject` also tidies the subject before work starts: it finishes or undoes a dataset
swap a killed preprocess left half-done, and removes temp files of killed writers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from radnerf_cli.errors import BusyError
from radnerf_cli.workspace import Subject

_held: dict[str, list] = {}  # lock path -> [fd, depth]: one process may nest claims (the demo does)


def lock_path(subject: Subject) -> Path:
    return subject.workspace / "subjects" / f".{subject.name}.lock"


def _command_line() -> str:
    return " ".join(["radnerf", *sys.argv[1:]])[:160]


def _read_owner(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 4096)
        owner = json.loads(data.decode()) if data.strip() else {}
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(owner: dict) -> str:
    pid = owner.get("pid", "?")
    cmd = owner.get("command", "an unknown command")
    since = owner.get("started")
    when = f", since {time.strftime('%H:%M:%S', time.localtime(since))}" if isinstance(since, int | float) else ""
    return f"pid {pid} ({cmd}{when})"


@contextlib.contextmanager
def subject_lock(subject: Subject) -> Iterator[dict]:
    """Hold ``subject``'s lock; yields the owner record of a dead previous holder ({} when none).

    Raises BusyError naming the live owner when another process holds it.
    """
    path = lock_path(subject)
    key = str(path)
    if key in _held:
        _held[key][1] += 1
        try:
            yield {}
        finally:
            _held[key][1] -= 1
        return
    from radnerf_cli import fsutil

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise fsutil.write_error(path, e) from None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise fsutil.write_error(path, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            raise BusyError(
                f"subject '{subject.name}' is in use by {_describe(owner)}",
                hint=f"wait until it ends, or stop it; lock file {path}",
            ) from None
        try:  # the previous owner may have removed the file between our open and our flock
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _read_owner(fd)
    stale = previous if previous.get("pid") not in (None, os.getpid()) else {}
    record = {"pid": os.getpid(), "command": _command_line(), "started": time.time()}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(record) + "\n").encode())
    _held[key] = [fd, 1]
    try:
        yield stale
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)  # closing drops the flock


@contextlib.contextmanager
def claim_subject(subject: Subject, quiet: bool = False) -> Iterator[None]:
    """Lock ``subject``, repair what killed runs left behind in it, then run the block."""
    from radnerf_cli import fsutil
    from radnerf_cli.staging import recover

    with subject_lock(subject) as stale:
        if stale and not quiet:
            from radnerf_cli.console import err_console

            err_console.print(f"[dim]took over the lock of subject '{subject.name}' left by {_describe(stale)}, "
                              "which is no longer running[/dim]")
        recover(subject)
        removed = fsutil.clean_stale_temps(subject.root)
        if removed and not quiet:
            from radnerf_cli.console import err_console

            err_console.print(f"[dim]removed {len(removed)} temp file(s) left by killed runs in {subject.root}[/dim]")
        yield


def subject_of(path: str | os.PathLike, workspace: Path) -> Subject | None:
    """The subject of ``workspace`` whose folder contains ``path`` (an output file), or None."""
    subjects = (workspace / "subjects").resolve()
    p = Path(path).expanduser().resolve()
    try:
        rel = p.relative_to(subjects)
    except ValueError:
        return None
    if len(rel.parts) < 2 or rel.parts[0].startswith("."):
        return None
    return Subject(workspace, rel.parts[0])


def claim_output(path: str | os.PathLike | None, workspace: Path) -> contextlib.AbstractContextManager:
    """The subject claim when ``path`` is written inside a subject of ``workspace``; else nothing."""
    sub = subject_of(path, workspace) if path is not None else None
    return claim_subject(sub) if sub is not None else contextlib.nullcontext()

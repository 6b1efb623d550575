"""Stop requests (Ctrl-C, and the SIGTERM that kill, timeout and job schedulers send) deferred to a safe point.

Inside ``with DeferredInterrupt() as intr:`` the first SIGINT or SIGTERM only sets ``intr.requested``;
the loop checks it at the end of a step, saves what it has and stops (raising KeyboardInterrupt).
A second signal stops at once. Outside the block the previous handlers are back.
"""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)
last_signal: int | None = None  # the signal of the latest stop request, for the exit code (128 + signal)


class DeferredInterrupt:
    """Defers SIGINT and SIGTERM to the end of the current step (so a checkpoint is consistent)."""

    def __init__(self):
        self.requested = False
        self._old: dict[int, object] = {}

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._old[s] = signal.signal(s, self._handler)
        return self

    def _handler(self, signum, frame):
        global last_signal
        last_signal = signum
        if self.requested:  # a second request stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> bool:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()
        return False


def _terminate(signum, frame):
    global last_signal
    last_signal = signum
    raise KeyboardInterrupt


def stop_cleanly_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C (temp files removed, checkpoints saved) instead of killing at once."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)


def exit_code() -> int:
    """130 after Ctrl-C, 143 after SIGTERM (the shell's 128 + signal)."""
    return 128 + (last_signal or signal.SIGINT)

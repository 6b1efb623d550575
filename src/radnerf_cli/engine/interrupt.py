"""Ctrl-C during training: deferred to the end of the current step, so the checkpoint written then is
consistent; a second Ctrl-C stops at once."""

from __future__ import annotations

import signal
import threading


class DeferredInterrupt:
    """Defers Ctrl-C to the end of the current step (so the checkpoint is consistent)."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False

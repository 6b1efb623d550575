"""Driving a :class:`~radnerf_cli.engine.live.LiveEngine` from a live source into a sink (`radnerf stream`).

The source is read on its own thread; every chunk goes to the engine and, unchanged, to the sink's
audio track, so the video and its audio hold the same samples. Ctrl-C (SIGINT) stops the input;
the frames owed for the audio already taken are still made and written, then the sink is closed,
so the file ends cleanly at the moment of the interrupt. A second Ctrl-C aborts at once.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import numpy as np

from radnerf_cli.audio.streaming import SAMPLE_RATE

CHUNK = 320  # samples per chunk when a file is played in (20 ms)


class _Feeder:
    """One door for audio: to the engine and the sink together, closed once."""

    def __init__(self, engine, sink):
        self.engine, self.sink = engine, sink
        self.lock = threading.Lock()
        self.closed = False
        self.samples = 0
        self.stopped = threading.Event()

    def feed(self, x: np.ndarray) -> bool:
        with self.lock:
            if self.closed:
                return False
            self.engine.feed(x)
            self.sink.write_audio(x)
            self.samples += x.size
            return True

    def stop(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                self.engine.end()
        self.stopped.set()


def _read(feeder: _Feeder, source: str, samples: np.ndarray | None, pcm_format: str, errors: list) -> None:
    from radnerf_cli.audio.pcm_input import open_microphone, stdin_chunks

    try:
        if source == "stdin":
            for x in stdin_chunks(pcm_format):
                if not feeder.feed(x):
                    break
        elif source == "file":
            t0 = time.perf_counter()
            for k in range(0, samples.size, CHUNK):
                wait = t0 + (k + CHUNK) / SAMPLE_RATE - time.perf_counter()  # a chunk enters once it was "spoken"
                if wait > 0 and feeder.stopped.wait(wait):
                    break
                if not feeder.feed(samples[k : k + CHUNK]):
                    break
        elif source == "mic":
            stream = open_microphone(feeder.feed)
            try:
                feeder.stopped.wait()
            finally:
                stream.stop()
                stream.close()
        else:
            raise ValueError(f"unknown source {source}")
    except BaseException as e:
        errors.append(e)
    finally:
        feeder.stop()


def run_stream(engine, sink, source: str, samples: np.ndarray | None = None, pcm_format: str = "s16le",
               log: Callable[[str], None] = print) -> dict:
    """Feed ``source`` (stdin, file, mic) through ``engine`` into ``sink`` until it ends or Ctrl-C; returns stats."""
    engine.warm_up()  # once: a no-op when the caller did it already
    feeder = _Feeder(engine, sink)
    errors: list[BaseException] = []
    interrupted = []

    def on_sigint(signum, frame):  # noqa: ARG001
        interrupted.append(True)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C aborts
        feeder.stop()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    reader = threading.Thread(target=_read, args=(feeder, source, samples, pcm_format, errors),
                              name="live-input", daemon=True)
    reader.start()
    try:
        for f in engine.frames():
            sink.write_frame(f.image)
            for m in engine.events():
                log(m)
    except BaseException:
        feeder.stop()
        sink.abort()
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    if errors and not isinstance(errors[0], KeyboardInterrupt):
        sink.abort()
        raise errors[0]
    sink.close()
    if interrupted:
        log("interrupted: the video ends here")
    stats = engine.stats()
    stats["seconds"] = feeder.samples / SAMPLE_RATE
    stats["samples"] = feeder.samples
    return stats

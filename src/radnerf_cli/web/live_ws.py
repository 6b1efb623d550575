"""One live session over a WebSocket: microphone chunks in, JPEG frames (with their audio) out.

Messages from the page (binary): 8 bytes little-endian float64, the page's clock when the chunk
was captured (ms), then 16 kHz mono int16 samples. Messages to the page: text JSON for status
(``{"type": "ready" | "event" | "stats" | "error", ...}``) and, per frame, binary:

    uint32 header length | header JSON {i, level, sent, latency_ms, ...} | JPEG | int16 audio of the frame

``sent`` is the page's capture time of the chunk holding the frame's first sample, so the page
measures the whole round trip (capture, network, features, render, encode, display) itself.
The engine renders on its own thread; when the page goes away mid-stream the input is ended,
the remaining frames are dropped, and the server carries on.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import threading
from bisect import bisect_right

import numpy as np

from radnerf_cli.audio.streaming import FRAME_SAMPLES

MAX_CHUNK_SAMPLES = 16000  # one message carries at most a second of audio


def encode_frame(header: dict, image: np.ndarray, audio: np.ndarray, quality: int = 85) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    jpeg = buf.getvalue()
    header = dict(header, jpeg=len(jpeg), audio=int(audio.size))
    h = json.dumps(header).encode()
    return struct.pack("<I", len(h)) + h + jpeg + audio.astype("<i2").tobytes()


class LiveSession:
    """Glue between one WebSocket and one :class:`~radnerf_cli.engine.live.LiveEngine`."""

    def __init__(self, engine, send_bytes, send_json, loop: asyncio.AbstractEventLoop):
        self.engine = engine
        self.send_bytes, self.send_json, self.loop = send_bytes, send_json, loop
        self.starts: list[int] = []  # first sample of each chunk
        self.sent: list[float] = []  # the page's capture time of each chunk
        self.audio: list[np.ndarray] = []  # int16 chunks, for sending each frame's sound back
        self.audio_base = 0  # sample index of audio[0]
        self.fed = 0
        self.gone = threading.Event()
        self.outbox: asyncio.Queue = asyncio.Queue(maxsize=50)
        self.thread = threading.Thread(target=self._render, name="live-ws", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def take(self, message: bytes) -> None:
        """A binary message from the page; ValueError when it is malformed."""
        if len(message) < 10 or (len(message) - 8) % 2:
            raise ValueError("a live audio message is 8 bytes of time then int16 samples")
        (t,) = struct.unpack("<d", message[:8])
        pcm = np.frombuffer(message[8:], dtype="<i2")
        if pcm.size > MAX_CHUNK_SAMPLES:
            raise ValueError(f"a live audio message carries at most {MAX_CHUNK_SAMPLES} samples")
        self.starts.append(self.fed)
        self.sent.append(t)
        self.audio.append(pcm.copy())
        self.fed += pcm.size
        self.engine.feed(pcm.astype(np.float32) / 32768.0)

    def _sound(self, i: int) -> np.ndarray:
        """Samples [640 i, 640 (i + 1)) as int16, dropping what no later frame needs."""
        lo, hi = FRAME_SAMPLES * i, FRAME_SAMPLES * (i + 1)
        while self.audio and self.audio_base + self.audio[0].size <= lo:
            self.audio_base += self.audio.pop(0).size
        have = np.concatenate(self.audio) if self.audio else np.zeros(0, np.int16)
        return have[max(0, lo - self.audio_base) : max(0, hi - self.audio_base)]

    def _post(self, item) -> None:
        def put():
            if self.outbox.full():  # the page is not keeping up: drop the oldest frame, never block rendering
                self.outbox.get_nowait()
            self.outbox.put_nowait(item)

        try:
            self.loop.call_soon_threadsafe(put)
        except RuntimeError:  # the connection's event loop has closed: nobody is left to send it to
            if not self.loop.is_closed():
                raise

    def _render(self) -> None:
        try:
            for f in self.engine.frames():
                if self.gone.is_set():
                    continue  # the page went away: let the engine finish quickly, send nothing
                k = max(0, bisect_right(self.starts, FRAME_SAMPLES * f.index) - 1)
                header = {"i": f.index, "level": f.level, "sent": self.sent[k] if self.sent else None,
                          "server_ms": round(1000 * f.latency, 1), "late": f.late}
                self._post(("bytes", encode_frame(header, f.image, self._sound(f.index))))
                for e in self.engine.events():
                    self._post(("json", {"type": "event", "message": e}))
                if f.index % 25 == 24:
                    self._post(("json", {"type": "stats", **self.engine.stats()}))
        except Exception as e:
            self._post(("json", {"type": "error", "message": str(e)}))
        finally:
            self._post(None)

    async def pump(self) -> None:
        """Send what the render thread produced until it ends."""
        while True:
            item = await self.outbox.get()
            if item is None:
                return
            kind, payload = item
            if kind == "bytes":
                await self.send_bytes(payload)
            else:
                await self.send_json(payload)

    def close(self) -> None:
        """The page went away or stopped: end the input (the engine thread winds down by itself)."""
        self.gone.set()
        self.engine.end()

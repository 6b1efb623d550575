"""Live audio sources: 16 kHz PCM or WAV arriving on a pipe, or a microphone through sounddevice.

Raw input is 16-bit little-endian mono at 16 kHz (``s16le``) or 32-bit float (``f32le``). A WAV
header (``RIFF``) is recognised and read: PCM 16-bit or float 32-bit, 16 kHz, any channel count
(averaged to mono). Chunks are yielded as soon as the pipe delivers them, so a producer that writes
20 ms at a time is read 20 ms at a time.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator

import numpy as np

from radnerf_cli.audio.windows import SAMPLE_RATE
from radnerf_cli.errors import InputError

RAW_FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
READ_BYTES = 1280  # 40 ms of s16le per read at most (a pipe returns what it has, possibly less)


def _read_exact(read: Callable[[int], bytes], n: int) -> bytes:
    out = b""
    while len(out) < n:
        b = read(n - len(out))
        if not b:
            break
        out += b
    return out


def _wav_header(read: Callable[[int], bytes], first: bytes, source: str) -> tuple[np.dtype, int]:
    """Parse a WAV header whose first 12 bytes are ``first``; returns (sample dtype, channels)."""
    if first[8:12] != b"WAVE":
        raise InputError(f"{source}: starts with RIFF but is not a WAV file")
    fmt = None
    while True:
        hdr = _read_exact(read, 8)
        if len(hdr) < 8:
            raise InputError(f"{source}: WAV header ends before the audio data")
        cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
        if cid == b"data":
            break
        body = _read_exact(read, size + (size & 1))
        if cid == b"fmt ":
            tag, ch, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag leads the sub-format
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = (tag, ch, rate, bits)
    if fmt is None:
        raise InputError(f"{source}: WAV file has no fmt chunk")
    tag, ch, rate, bits = fmt
    if rate != SAMPLE_RATE:
        raise InputError(f"{source}: WAV audio is {rate} Hz; live input must be 16 kHz",
                         hint="convert it, e.g. ffmpeg -i in.wav -ar 16000 -ac 1 out.wav")
    if (tag, bits) == (1, 16):
        dt = np.dtype("<i2")
    elif (tag, bits) == (3, 32):
        dt = np.dtype("<f4")
    else:
        raise InputError(f"{source}: WAV samples must be 16-bit PCM or 32-bit float (got format {tag}, {bits} bits)")
    return dt, max(1, ch)


def pcm_chunks(read: Callable[[int], bytes], fmt: str = "s16le", source: str = "stdin") -> Iterator[np.ndarray]:
    """Float32 mono chunks from a byte source (``read(n)`` returns up to n bytes, b"" at the end)."""
    if fmt not in RAW_FORMATS:
        raise InputError(f"--format {fmt}: choose {' or '.join(RAW_FORMATS)}")
    first = _read_exact(read, 12)
    dt, ch = RAW_FORMATS[fmt], 1
    pending = b""
    if first[:4] == b"RIFF":
        dt, ch = _wav_header(read, first, source)
    else:
        pending = first
    frame = dt.itemsize * ch
    while True:
        b = read(READ_BYTES * frame // 2)
        if not b and not pending:
            return
        pending += b
        n = len(pending) // frame * frame
        if n:
            x = np.frombuffer(pending[:n], dtype=dt).reshape(-1, ch)
            pending = pending[n:]
            x = x.astype(np.float32)
            if dt.kind == "i":
                x /= 32768.0
            yield x.mean(axis=1) if ch > 1 else x[:, 0]
        if not b:
            return


def stdin_chunks(fmt: str = "s16le") -> Iterator[np.ndarray]:
    """:func:`pcm_chunks` over the process's standard input (unbuffered reads)."""
    fd = 0

    def read(n: int) -> bytes:
        return os.read(fd, n)

    return pcm_chunks(read, fmt, "stdin")


def open_microphone(on_chunk: Callable[[np.ndarray], None], block: int = 320):
    """A started sounddevice input stream at 16 kHz mono calling ``on_chunk`` every ``block`` samples.

    InputError with the reason when sounddevice or PortAudio is missing, or there is no input device.
    """
    try:
        import sounddevice as sd
    except ImportError:
        raise InputError("--mic needs the optional sounddevice package", hint="pip install sounddevice") from None
    except OSError as e:  # the PortAudio library is missing
        raise InputError(f"--mic: sounddevice cannot load PortAudio ({e})",
                         hint="install PortAudio (e.g. apt-get install libportaudio2)") from None
    try:
        sd.query_devices(kind="input")
    except Exception as e:
        raise InputError(f"--mic: no audio input device found ({e})") from None

    def callback(indata, frames, time_info, status):  # noqa: ARG001
        on_chunk(np.asarray(indata[:, 0], dtype=np.float32).copy())

    try:
        stream = sd.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32", blocksize=block,
                                callback=callback)
        stream.start()
    except Exception as e:
        raise InputError(f"--mic: the input device could not be opened at 16 kHz mono ({e})") from None
    return stream

"""Audio features computed as the audio arrives: 16 kHz chunks in, 50 Hz rows and frame windows out.

Each extractor emits a row as soon as the audio it needs has arrived, and no later:

* ``mel``: row ``j`` is centred on sample ``320 j`` and needs 25 ms after it (the last 400-sample
  STFT frame), so rows come out exactly when RAD-NeRF's row count ``(S - 80) // 320`` grows. The
  only difference to the offline features is the level reference: offline, values are relative
  to the loudest band of the whole utterance; here to the loudest band heard so far (never below
  :data:`MEL_TOP_FLOOR`, so a quiet room before the first word is not blown up to full scale).
* ``whisper``: the offline extractor encodes every 8 rows at the centre of a 6-s window (2.9 s of
  audio on either side). Live, each window keeps the same 2.9 s of past (so the kept rows sit at
  the same encoder positions as offline) but only ``lookahead`` rows (20 ms each) of future; the
  window is shorter, not padded. The log-mel clamp uses the loudest frame heard so far.

:class:`StreamWindows` then cuts RAD-NeRF's per-frame windows [16, C] and the model's attention
window [8, 16, C] (frames ``i - 4 .. i + 3``) from the rows, exactly as the offline path does
(:func:`~radnerf_cli.audio.windows.window_features` and ``data.audio_window``), so frame ``i`` is
ready once row ``2 i + 13`` is, i.e. 280 ms (+ the extractor's look-ahead) after the frame starts.
"""

from __future__ import annotations

import numpy as np

from radnerf_cli.audio.files import feature_dim
from radnerf_cli.audio.melspec import (
    MEL_N_FFT,
    MEL_N_MELS,
    MEL_RANGE,
    MEL_WIN,
    WHISPER_HOP,
    WHISPER_N_FFT,
    WHISPER_N_MELS,
    mel_filterbank,
)
from radnerf_cli.audio.windows import HOP, ROWS_PER_FRAME, SAMPLE_RATE, WINDOW, feature_rows, frame_count

ATTENTION = 8  # feature windows the audio network attends over (frames i-4 .. i+3)
FRAME_SAMPLES = SAMPLE_RATE // 25  # 640 samples per 25 fps video frame
MEL_TOP_FLOOR = 0.0  # log10 band power the live mel reference never drops below (speech peaks at 1.3-2.2)
WHISPER_LOOKAHEAD = 25  # rows (500 ms) of future audio a live whisper window sees by default


def _hann(n_fft: int, win: int) -> np.ndarray:
    w = np.zeros(n_fft, dtype=np.float64)
    off = (n_fft - win) // 2
    w[off : off + win] = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)
    return w


class _SampleBuffer:
    """Samples of a stream with the older ones dropped: ``buf[k]`` is stream sample ``base + k``."""

    def __init__(self) -> None:
        self.buf = np.zeros(0, dtype=np.float32)
        self.base = 0

    @property
    def end(self) -> int:
        return self.base + self.buf.size

    def append(self, x: np.ndarray) -> None:
        self.buf = np.concatenate([self.buf, x])

    def get(self, start: int, stop: int) -> np.ndarray:
        return self.buf[start - self.base : stop - self.base]

    def drop_before(self, start: int) -> None:
        if start > self.base:
            self.buf = self.buf[start - self.base :]
            self.base = start


class RowStream:
    """Base of the incremental extractors: ``push`` samples, get the new 50 Hz rows [k, C]."""

    kind: str = ""
    lookahead_s: float = 0.0  # audio a row needs after its centre before it can be emitted

    def __init__(self) -> None:
        self.dim = feature_dim(self.kind)
        self.samples = 0  # samples pushed so far
        self.rows = 0  # rows emitted so far

    def push(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def finish(self) -> np.ndarray:
        """The rows left at the end of the stream (RAD-NeRF's total ``(S - 80) // 320``)."""
        raise NotImplementedError


class MelStream(RowStream):
    """The weight-free ``mel`` features (see :func:`~radnerf_cli.audio.melspec.mel_features`), live."""

    kind = "mel"
    lookahead_s = (MEL_N_FFT // 2) / SAMPLE_RATE + 80 / SAMPLE_RATE  # 21 ms of STFT + RAD-NeRF's 80-sample rule

    def __init__(self, top_floor: float = MEL_TOP_FLOOR) -> None:
        super().__init__()
        self._buf = _SampleBuffer()  # the stream, reflect-padded by n_fft/2 at its start once it is long enough
        self._raw = np.zeros(0, dtype=np.float32)  # samples before the padding could be made
        self._window = _hann(MEL_N_FFT, MEL_WIN)
        self._fb = mel_filterbank(SAMPLE_RATE, MEL_N_FFT, MEL_N_MELS).astype(np.float64)
        self.top = float(top_floor)

    def push(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        self.samples += x.size
        pad = MEL_N_FFT // 2
        if self._raw is not None:
            self._raw = np.concatenate([self._raw, x])
            if self._raw.size <= pad:
                return np.zeros((0, self.dim), np.float32)
            self._buf.append(np.pad(self._raw, (pad, 0), mode="reflect"))
            self._raw = None
        else:
            self._buf.append(x)
        return self._emit(feature_rows(self.samples))

    def _emit(self, upto: int) -> np.ndarray:
        if upto <= self.rows:
            return np.zeros((0, self.dim), np.float32)
        js = np.arange(self.rows, upto)
        # padded sample 320 j is the first sample of row j's frame (centred on stream sample 320 j)
        seg = self._buf.get(HOP * self.rows, HOP * (upto - 1) + MEL_N_FFT).astype(np.float64)
        idx = (js - self.rows)[:, None] * HOP + np.arange(MEL_N_FFT)[None, :]
        spec = np.fft.rfft(seg[idx] * self._window, axis=1)
        power = (spec.real**2 + spec.imag**2).T  # [F, k]
        log_spec = np.log10(np.maximum(self._fb @ power, 1e-10)).T  # [k, 80]
        out = np.empty_like(log_spec, dtype=np.float32)
        for r in range(log_spec.shape[0]):  # the reference grows row by row, as the audio is heard
            self.top = max(self.top, float(log_spec[r].max()))
            row = np.maximum(log_spec[r], self.top - MEL_RANGE)
            out[r] = (row - self.top) / (MEL_RANGE / 2.0) + 1.0
        self.rows = upto
        self._buf.drop_before(HOP * upto)
        return out

    def finish(self) -> np.ndarray:
        return np.zeros((0, self.dim), np.float32)  # every row was emitted as soon as the count allowed


class WhisperStream(RowStream):
    """Whisper tiny.en encoder rows with 2.9 s of past and ``lookahead`` rows of future per window."""

    kind = "whisper"

    def __init__(self, lookahead: int = WHISPER_LOOKAHEAD, model_path=None, device: str | None = None) -> None:
        from radnerf_cli.audio import whisper

        super().__init__()
        if lookahead < 0:
            raise ValueError(f"lookahead must be >= 0 rows, got {lookahead}")
        self.lookahead = int(lookahead)
        self.past = whisper.KEEP_FROM  # 146 rows: kept rows sit where the offline windows keep them
        self.keep = whisper.KEEP_ROWS
        self.lookahead_s = (self.lookahead + self.keep) * HOP / SAMPLE_RATE + (80 + WHISPER_N_FFT // 2) / SAMPLE_RATE
        self._model = whisper.load_model(model_path, device)
        self._encode = whisper._encode
        # stream sample s is padded sample s + left (the offline extractor's silence before the audio)
        self._left = self.past * HOP
        self._buf = _SampleBuffer()
        self._buf.append(np.zeros(self._left, np.float32))
        self._fb = mel_filterbank(SAMPLE_RATE, WHISPER_N_FFT, WHISPER_N_MELS).astype(np.float64)
        self._window = _hann(WHISPER_N_FFT, WHISPER_N_FFT)
        self._mel = np.zeros((WHISPER_N_MELS, 0), dtype=np.float64)  # log10 mel frames, before the clamp
        self._mel_base = 0  # padded mel frame index of _mel[:, 0]
        self.top = -np.inf
        self._win_next = 0  # next window: keeps padded rows [8 w + past, 8 w + past + 8) = stream rows [8 w, 8 w + 8)
        self._pending = np.zeros((0, self.dim), np.float32)  # encoded rows not yet emitted

    # mel frame t (padded coords) is centred on padded sample 160 t and needs samples up to 160 t + 200
    def _extend_mel(self) -> None:
        have = (self._buf.end - WHISPER_N_FFT // 2) // WHISPER_HOP  # frames with all their samples (t*160 + 200 <= end)
        t0 = self._mel_base + self._mel.shape[1]
        if have <= t0:
            return
        ts = np.arange(t0, have)
        starts = ts * WHISPER_HOP - WHISPER_N_FFT // 2  # padded sample of each frame's first sample
        lo = max(int(starts[0]), 0)
        seg = self._buf.get(lo, int(starts[-1]) + WHISPER_N_FFT).astype(np.float64)
        if starts[0] < 0:  # the very first frame: reflect padding of the leading silence is silence
            seg = np.concatenate([np.zeros(-int(starts[0])), seg])
            lo = int(starts[0])
        idx = (starts - lo)[:, None] + np.arange(WHISPER_N_FFT)[None, :]
        spec = np.fft.rfft(seg[idx] * self._window, axis=1)
        mel = self._fb @ (spec.real**2 + spec.imag**2).T
        self._mel = np.concatenate([self._mel, np.log10(np.maximum(mel, 1e-10))], axis=1)

    def _window_mel(self, w: int) -> np.ndarray:
        """Clamped, scaled log-mel [80, 2 * rows] of window ``w`` (padded rows 8w .. 8w + past + keep + lookahead)."""
        f0 = 2 * self.keep * w
        f1 = f0 + 2 * (self.past + self.keep + self.lookahead)
        m = self._mel[:, f0 - self._mel_base : f1 - self._mel_base]
        return ((np.maximum(m, self.top - 8.0) + 4.0) / 4.0).astype(np.float32)

    def _run_windows(self, final: bool) -> None:
        self._extend_mel()
        frames_per_win = 2 * (self.past + self.keep + self.lookahead)
        while True:
            w = self._win_next
            f1 = 2 * self.keep * w + frames_per_win
            if self._mel_base + self._mel.shape[1] < f1:
                break
            # the loudest frame heard so far, up to the end of this window
            upto = f1 - self._mel_base
            if upto > 0:
                self.top = max(self.top, float(self._mel[:, :upto].max()))
            out = self._encode(self._model, self._window_mel(w)[None])[0, self.past : self.past + self.keep]
            self._pending = np.concatenate([self._pending, out.astype(np.float32)])
            self._win_next += 1
            # frames before the next window's start are no longer needed
            drop = 2 * self.keep * self._win_next - self._mel_base
            if drop > 0:
                self._mel = self._mel[:, drop:]
                self._mel_base += drop
                self._buf.drop_before(max(0, self._mel_base * WHISPER_HOP - WHISPER_N_FFT))
        del final

    def _take(self, limit: int) -> np.ndarray:
        k = max(0, min(self._pending.shape[0], limit - self.rows))
        out, self._pending = self._pending[:k], self._pending[k:]
        self.rows += k
        return out

    def push(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        self.samples += x.size
        self._buf.append(x)
        self._run_windows(final=False)
        return self._take(feature_rows(self.samples))

    def finish(self) -> np.ndarray:
        m = feature_rows(self.samples)
        # silence after the audio (as offline) until the window holding the last row is complete
        self._buf.append(np.zeros((self.lookahead + 2 * self.keep + 2) * HOP + WHISPER_N_FFT, np.float32))
        self._run_windows(final=True)
        return self._take(m)


def row_stream(kind: str, whisper_lookahead: int = WHISPER_LOOKAHEAD, whisper_model=None,
               device: str | None = None) -> RowStream:
    """The live extractor of ``kind`` (mel or whisper); ValueError for kinds only importable from files."""
    if kind == "mel":
        return MelStream()
    if kind == "whisper":
        return WhisperStream(whisper_lookahead, whisper_model, device)
    raise ValueError(f"audio features of kind '{kind}' cannot be computed live (only mel and whisper can)")


class StreamWindows:
    """Rows in, per-video-frame attention windows [8, 16, C] out, exactly as the offline render builds them.

    Offline, frame ``i`` gets feature windows ``i - 4 .. i + 3`` (zeros outside ``[0, N)``), and
    window ``j`` holds rows ``2 j - 8 .. 2 j + 7`` (zeros outside ``[0, M)``). Live, frame ``i`` is
    released once row ``2 i + 13`` exists; :meth:`finish` releases the rest with the same zero
    padding, for RAD-NeRF's ``N = round(S / 640)`` frames of ``S`` samples.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._rows = np.zeros((0, dim), np.float32)
        self._row_base = 0  # stream row of _rows[0]
        self.rows = 0  # rows received
        self.frames = 0  # frames released

    @staticmethod
    def rows_needed(i: int) -> int:
        """Rows that must exist before frame ``i`` can be made (its last window's last row + 1)."""
        return ROWS_PER_FRAME * (i + ATTENTION // 2 - 1) + WINDOW // 2  # 2 i + 14

    def _window(self, j: int, m: int | None, n: int | None) -> np.ndarray:
        out = np.zeros((WINDOW, self.dim), np.float32)
        if j < 0 or (n is not None and j >= n):
            return out
        lo = ROWS_PER_FRAME * j - WINDOW // 2
        for k in range(WINDOW):
            r = lo + k
            if r < 0 or (m is not None and r >= m) or r >= self.rows:
                continue
            out[k] = self._rows[r - self._row_base]
        return out

    def _frame(self, i: int, m: int | None = None, n: int | None = None) -> np.ndarray:
        half = ATTENTION // 2
        return np.stack([self._window(j, m, n) for j in range(i - half, i - half + ATTENTION)])

    def push(self, rows: np.ndarray) -> list[tuple[int, np.ndarray]]:
        if rows.size:
            self._rows = np.concatenate([self._rows, rows.astype(np.float32)])
            self.rows += rows.shape[0]
        out = []
        while self.rows_needed(self.frames) <= self.rows:
            out.append((self.frames, self._frame(self.frames)))
            self.frames += 1
        self._trim()
        return out

    def finish(self, samples: int) -> list[tuple[int, np.ndarray]]:
        m, n = feature_rows(samples), offline_frame_count(samples)
        out = []
        while self.frames < n:
            out.append((self.frames, self._frame(self.frames, m, n)))
            self.frames += 1
        return out

    def _trim(self) -> None:
        first = ROWS_PER_FRAME * (self.frames - ATTENTION // 2) - WINDOW // 2  # oldest row the next frame reads
        if first > self._row_base:
            self._rows = self._rows[first - self._row_base :]
            self._row_base = first


def offline_frame_count(samples: int) -> int:
    """Frames `radnerf render` makes of ``samples`` of audio (25 fps, rounded), for comparisons."""
    return int(round(samples / SAMPLE_RATE * 25))  # the same expression as render_video.frames_for


__all__ = ["ATTENTION", "FRAME_SAMPLES", "MelStream", "RowStream", "StreamWindows", "WhisperStream",
           "frame_count", "offline_frame_count", "row_stream"]

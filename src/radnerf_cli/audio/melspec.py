"""Log-mel spectrograms in numpy: Whisper's exact front end, and the weight-free ``mel`` features.

The mel filterbank is the Slaney one (the default of librosa and of Whisper): Slaney's mel scale
(linear below 1 kHz, logarithmic above) and triangles normalised to unit area in Hz.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from radnerf_cli.audio.windows import HOP, SAMPLE_RATE, feature_rows

# Whisper's front end
WHISPER_N_FFT = 400  # 25 ms analysis window
WHISPER_HOP = 160  # 10 ms: 100 mel frames per second, the encoder halves it to 50 Hz
WHISPER_N_MELS = 80
WHISPER_CHUNK_FRAMES = 3000  # mel frames in one 30-s encoder window

# the weight-free ``mel`` features: one row per 20 ms, directly on the 50 Hz grid
MEL_N_FFT = 512  # FFT size (zero-padded from the 400-sample window)
MEL_WIN = 400  # 25 ms Hann window
MEL_N_MELS = 80  # C of the ``mel`` kind
MEL_RANGE = 8.0  # dynamic range kept below the loudest bin, in log10 units (80 dB)


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    lin = f / f_sp
    log = min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep
    return np.where(f >= min_log_hz, log, lin)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=8)
def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Slaney-normalised triangular mel filters [n_mels, n_fft // 2 + 1] (float32, read-only)."""
    fmax = sr / 2.0 if fmax is None else fmax
    fft_freqs = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    mel_pts = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))  # [n_mels + 2] Hz
    widths = np.diff(mel_pts)  # [n_mels + 1]
    ramps = mel_pts[:, None] - fft_freqs[None, :]  # [n_mels + 2, F]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_pts[2:] - mel_pts[:-2]))[:, None]  # unit area per triangle
    out = weights.astype(np.float32)
    out.setflags(write=False)
    return out


def power_spectrogram(audio: np.ndarray, n_fft: int, hop: int, win_length: int | None = None) -> np.ndarray:
    """|STFT|^2 with a periodic Hann window, centred frames and reflect padding (torch.stft's default).

    audio: [S] float. Returns [n_fft // 2 + 1, S // hop + 1] float32; frame t is centred on sample t*hop.
    """
    win_length = n_fft if win_length is None else win_length
    window = np.zeros(n_fft, dtype=np.float64)
    off = (n_fft - win_length) // 2
    window[off : off + win_length] = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win_length) / win_length)
    x = np.asarray(audio, dtype=np.float32)
    pad = n_fft // 2
    if x.size <= pad:  # reflect padding needs more samples than the pad; fall back to zeros
        x = np.pad(x, pad)
    else:
        x = np.pad(x, pad, mode="reflect")
    n_frames = 1 + (x.size - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(
        x, shape=(n_frames, n_fft), strides=(x.strides[0] * hop, x.strides[0]), writeable=False
    )
    out = np.empty((n_fft // 2 + 1, n_frames), dtype=np.float32)
    step = 4096  # bound the float64 temporaries on long audio
    for s in range(0, n_frames, step):
        spec = np.fft.rfft(frames[s : s + step] * window, axis=1)
        out[:, s : s + step] = (spec.real**2 + spec.imag**2).T
    return out


def whisper_log_mel(audio: np.ndarray, pad_samples: int = 0) -> np.ndarray:
    """Whisper's log-mel spectrogram [80, T] of 16 kHz audio, T = (S + pad_samples) // 160.

    As in Whisper: power STFT (n_fft 400, hop 160), the last frame dropped, Slaney mel filters,
    log10 (floored at 1e-10), clamped to (max - 8) over the whole input, then (x + 4) / 4.
    ``pad_samples`` zeros are appended first (Whisper appends 30 s).
    """
    x = np.asarray(audio, dtype=np.float32)
    if pad_samples:
        x = np.concatenate([x, np.zeros(pad_samples, dtype=np.float32)])
    power = power_spectrogram(x, WHISPER_N_FFT, WHISPER_HOP)[:, :-1]
    mel = mel_filterbank(SAMPLE_RATE, WHISPER_N_FFT, WHISPER_N_MELS) @ power
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


def mel_features(audio: np.ndarray) -> np.ndarray:
    """The weight-free ``mel`` features: [M, 80] rows at 50 Hz, values in [-1, 1].

    Row ``j`` is the 80-band Slaney log-mel power of a 25 ms Hann window centred on sample
    ``320 j`` (FFT 512, 0-8 kHz). Values are log10 power relative to the loudest band of the
    utterance, floored 80 dB below it and mapped to [-1, 1] (``(log10 p - max) / 4 + 1``): the
    features do not change with the recording's gain. ``M`` follows RAD-NeRF's row count.
    """
    x = np.asarray(audio, dtype=np.float32)
    m = feature_rows(x.size)
    power = power_spectrogram(x, MEL_N_FFT, HOP, win_length=MEL_WIN)[:, :m]
    mel = mel_filterbank(SAMPLE_RATE, MEL_N_FFT, MEL_N_MELS) @ power  # [80, M]
    log_spec = np.log10(np.maximum(mel, 1e-10))
    top = log_spec.max() if log_spec.size else 0.0
    log_spec = np.maximum(log_spec, top - MEL_RANGE)
    return ((log_spec - top) / (MEL_RANGE / 2.0) + 1.0).T.astype(np.float32)  # [M, 80]

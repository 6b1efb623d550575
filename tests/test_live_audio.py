"""Live audio features: incremental rows and frame windows against the offline extractor."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from radnerf_cli.audio import streaming as st
from radnerf_cli.audio.melspec import mel_features
from radnerf_cli.audio.pcm_input import pcm_chunks
from radnerf_cli.audio.windows import window_features
from radnerf_cli.data import audio_window
from radnerf_cli.errors import InputError

# Measured on speech (the shared speech_ian.wav, 10 s, 30 ms chunks): the live mel rows differ from
# the offline ones only through the level reference, max |diff| 0.57 in the first second, 0.064 after,
# mean 0.035 (values span [-1, 1]). See README "Live" for the numbers.
MEL_TOL_AFTER_PEAK = 1e-4


def _speechlike(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    env = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 2
    x = env * (0.3 * np.sin(2 * np.pi * 180 * t) + 0.1 * np.sin(2 * np.pi * 900 * t) + 0.02 * rng.normal(size=t.size))
    x[: int(0.05 * sr)] += 0.6 * np.sin(2 * np.pi * 300 * t[: int(0.05 * sr)])  # the loudest moment comes first
    return x.astype(np.float32)


def _feed(stream: st.RowStream, x: np.ndarray, chunk: int) -> np.ndarray:
    out = [stream.push(x[k : k + chunk]) for k in range(0, x.size, chunk)]
    out.append(stream.finish())
    return np.concatenate(out)


@pytest.mark.parametrize("chunk", [320, 480, 640, 1000])
def test_live_mel_rows_match_offline_once_the_peak_was_heard(chunk):
    x = _speechlike(2.0)
    off = mel_features(x)
    on = _feed(st.MelStream(), x, chunk)
    assert on.shape == off.shape
    peak_row = int(np.argmax(np.log10(np.maximum(off, -2) + 2).max(1)))  # the loud burst is in the first 50 ms
    assert peak_row < 5
    np.testing.assert_allclose(on[5:], off[5:], atol=MEL_TOL_AFTER_PEAK)


def test_live_mel_rows_come_out_as_soon_as_rad_nerfs_row_count_grows():
    x = _speechlike(1.0)
    s = st.MelStream()
    total = 0
    for k in range(0, x.size, 160):
        total += s.push(x[k : k + 160]).shape[0]
        assert total == max(0, (min(k + 160, x.size) - 80) // 320)


def test_live_mel_keeps_a_quiet_start_quiet():
    # the level reference never drops below the floor: a near-silent room stays near -1, not full scale
    s = st.MelStream()
    rows = s.push(np.random.default_rng(0).normal(scale=1e-4, size=8000).astype(np.float32))
    assert rows.max() < -0.5


@pytest.mark.parametrize("seconds", [0.5, 1.23, 2.0])
def test_stream_windows_equal_the_offline_attention_windows(seconds):
    rng = np.random.default_rng(1)
    s = int(seconds * 16000)
    m = max(0, (s - 80) // 320)
    rows = rng.normal(size=(m, 3)).astype(np.float32)
    n = int(round(s / 16000 * 25))
    offline = window_features(rows, n)
    sw = st.StreamWindows(3)
    got = []
    for k in range(0, m, 3):
        got += sw.push(rows[k : k + 3])
    got += sw.finish(s)
    assert [i for i, _ in got] == list(range(n))
    for i, w in got:
        np.testing.assert_array_equal(w, audio_window(offline, i).numpy())


def test_frames_are_released_once_their_last_row_exists():
    sw = st.StreamWindows(1)
    assert sw.push(np.zeros((13, 1), np.float32)) == []
    assert [i for i, _ in sw.push(np.zeros((1, 1), np.float32))] == [0]
    assert [i for i, _ in sw.push(np.zeros((2, 1), np.float32))] == [1]


def _wav_bytes(x: np.ndarray, rate: int = 16000, channels: int = 1) -> bytes:
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(pcm)) + pcm)


def test_pcm_input_reads_raw_and_wav():
    x = _speechlike(0.3)
    raw = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    got = np.concatenate(list(pcm_chunks(io.BytesIO(raw).read, "s16le")))
    np.testing.assert_allclose(got, x, atol=1 / 16000)
    got = np.concatenate(list(pcm_chunks(io.BytesIO(_wav_bytes(x)).read)))
    np.testing.assert_allclose(got, x, atol=1 / 16000)
    f32 = x.astype("<f4").tobytes()
    np.testing.assert_array_equal(np.concatenate(list(pcm_chunks(io.BytesIO(f32).read, "f32le"))), x)


def test_pcm_input_rejects_other_rates_and_bad_headers():
    with pytest.raises(InputError, match="stdin: WAV audio is 44100 Hz; live input must be 16 kHz"):
        list(pcm_chunks(io.BytesIO(_wav_bytes(np.zeros(100), rate=44100)).read))
    with pytest.raises(InputError, match="starts with RIFF but is not a WAV file"):
        list(pcm_chunks(io.BytesIO(b"RIFF\x00\x00\x00\x00AVI LIST").read))
    with pytest.raises(InputError, match="--format u8"):
        list(pcm_chunks(io.BytesIO(b"").read, "u8"))


@pytest.mark.slow
def test_live_whisper_with_full_lookahead_equals_offline():
    """With the offline look-ahead (146 rows) the live windows are the offline ones: same features."""
    from radnerf_cli.audio.whisper import KEEP_FROM, whisper_rows

    x = _speechlike(3.0)
    off = whisper_rows(x, progress=False)
    on = _feed(st.WhisperStream(lookahead=KEEP_FROM), x, 640)
    assert on.shape == off.shape
    cos = (on * off).sum(1) / np.linalg.norm(on, axis=1) / np.linalg.norm(off, axis=1)
    assert cos.min() > 0.995


def test_microphone_opens_or_says_why_not():
    from radnerf_cli.audio.pcm_input import open_microphone

    try:
        stream = open_microphone(lambda x: None)
    except InputError as e:  # no sounddevice, no PortAudio or no input device: one line saying which
        assert e.message.startswith("--mic")
        return
    stream.stop()
    stream.close()

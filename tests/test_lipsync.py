"""The lip-sync measure: mouth opening, its spread, and its agreement with the speech envelope."""

from __future__ import annotations

import numpy as np
import pytest

from radnerf_cli import media
from radnerf_cli.metrics import lipsync as L

CLIP_SECONDS = 12.0


def test_envelope_follows_loudness():
    sr, fps = 16000, 25
    t = np.arange(2 * sr) / sr
    tone = np.sin(2 * np.pi * 800 * t).astype(np.float32)
    tone[sr:] *= 0.01  # the second second is 40 dB quieter
    env = L.speech_envelope(tone, 2 * fps)
    assert env.shape == (50,)
    assert env[5:20].mean() - env[30:45].mean() == pytest.approx(40, abs=2)


def test_sync_finds_a_known_offset():
    rng = np.random.default_rng(0)
    env = np.convolve(rng.normal(size=400), np.ones(5) / 5, mode="same")
    mouth = np.roll(env, -3)  # the mouth leads the sound by 3 frames
    s = L.sync(mouth, env)
    assert s["best_offset"] == 3
    assert s["best_corr"] > 0.95
    assert s["corr"] < s["best_corr"]


def test_opening_and_spread_of_a_frozen_mouth():
    mesh = np.zeros((30, 468, 2))
    mesh[:, 263, 0] = 100.0
    for _a, b in L.INNER_LIP_PAIRS:
        mesh[:, b, 1] = 8.0
    s = L.spread(L.mouth_opening(mesh))
    assert s["std"] == pytest.approx(0.0, abs=1e-12)
    assert s["p50"] == pytest.approx(0.08)
    rep = L.report(L.mouth_opening(mesh), np.arange(30.0), real_std=0.01)
    assert rep["amplitude_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert rep["sync"]["corr"] is None  # a constant signal has no correlation


@pytest.fixture(scope="module")
def real_clip(shared_data):
    """The first seconds of the shared clip: frames tracked by the face mesh, and its audio."""
    from radnerf_cli.preprocess.landmarks import FaceTracker

    video = shared_data / "anchor_cnn_25fps.mp4"
    frames = media.read_frames(video, fps=25, size=(256, 256), duration=CLIP_SECONDS)
    tracker = FaceTracker(static=False)
    try:
        track = L.track(frames, tracker)
    finally:
        tracker.close()
    audio = media.load_audio(video, 16000)
    return track, audio


@pytest.mark.data
def test_real_video_agrees_with_its_own_audio(real_clip):
    track, audio = real_clip
    n = len(track.mesh)
    assert n == int(CLIP_SECONDS * 25) and track.missed == 0
    env = L.speech_envelope(audio, n)
    s = L.sync(track.opening, env)
    assert s["corr"] > 0.15, s
    assert abs(s["best_offset"]) <= 2, s
    assert L.spread(track.opening)["std"] > 0.004  # a talking mouth moves (about 0.009 here)


@pytest.mark.data
def test_real_video_does_not_agree_with_unrelated_audio(real_clip):
    track, audio = real_clip
    n = len(track.mesh)
    # the same speaker 30 s later: real speech, unrelated to these frames' mouth
    env = L.speech_envelope(audio[30 * 16000 :], n)
    s = L.sync(track.opening, env)
    assert abs(s["corr"]) < 0.12, s


@pytest.mark.data
def test_frozen_real_face_has_no_spread(real_clip, shared_data):
    from radnerf_cli.preprocess.landmarks import FaceTracker

    frame = next(iter(media.read_frames(shared_data / "anchor_cnn_25fps.mp4", fps=25, size=(256, 256), duration=0.2)))
    tracker = FaceTracker(static=False)
    try:
        frozen = L.track([frame] * 40, tracker)
    finally:
        tracker.close()
    real_std = L.spread(real_clip[0].opening)["std"]
    assert L.spread(frozen.opening)["std"] < 0.05 * real_std

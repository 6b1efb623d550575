"""The live engine: frames for audio fed in real-time-sized chunks, against `radnerf render` on the same file."""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest

from radnerf_cli import media
from radnerf_cli.engine import render_video as rv
from radnerf_cli.engine.live import LiveEngine, LiveOptions, ScaledLevel
from radnerf_cli.engine.scheduler import HOLD, FrameScheduler

# ----------------------------------------------------------------------------------------------
# the scheduler alone (fake costs, fake clock)


def test_scheduler_picks_the_best_sustainable_level_and_says_when_it_degrades():
    s = FrameScheduler(["full", "50%"], period=0.04)
    s.record("full", 0.02)
    s.record("50%", 0.005)
    assert s.choose(0.0, [0.3, 0.34]) == "full"
    for _ in range(5):
        s.record("full", 0.2)  # the machine got slower
    assert s.choose(1.0, [1.3, 1.34]) == "50%"
    assert any("slower than real time" in e for e in s.events)


def test_scheduler_holds_when_no_level_meets_the_deadline_and_never_lets_frames_drift():
    s = FrameScheduler(["full", "50%"], period=0.04)
    s.record("full", 0.5)
    s.record("50%", 0.2)
    assert s.choose(0.0, [0.1]) == HOLD  # even the cheapest misses: show the previous frame
    assert s.choose(0.0, [0.1], have_previous=False) == "50%"  # nothing to hold yet
    assert s.choose(0.0, [0.3]) == "50%"  # unsustainable but meets this deadline


def test_scheduler_tries_a_better_level_again_after_a_slowdown():
    s = FrameScheduler(["full", "50%"], period=0.04)
    s.record("full", 0.06)
    s.record("50%", 0.01)
    assert s.choose(0.0, [0.5]) == "50%"
    for _ in range(200):
        s.record("50%", 0.01)
    assert s.choose(0.0, [0.5]) == "full"


def test_scheduler_without_realtime_always_renders_the_best_level():
    s = FrameScheduler(["full", "50%"], realtime=False)
    s.record("full", 10.0)
    assert s.choose(0.0, [0.01]) == "full"


# ----------------------------------------------------------------------------------------------
# the engine on a small trained model


@functools.lru_cache(maxsize=1)
def _small_head():
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.workspace import Workspace
    from test_render import trained_workspace

    head = TalkingHead.from_subject(Workspace(trained_workspace()).subject("syn"), device="cpu")
    # half size (32 x 32): the same model, four times fewer rays, so the tests stay quick on a CPU
    return ScaledLevel(head, 0.5, rv.parse_background("bc", head)).head


def _speechlike(seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    env = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 2
    x = env * (0.3 * np.sin(2 * np.pi * 180 * t) + 0.1 * np.sin(2 * np.pi * 900 * t))
    x[:800] += 0.6 * np.sin(2 * np.pi * 300 * t[:800])  # the loudest moment first: live mel levels settle at once
    return x.astype(np.float32)


def _run(engine: LiveEngine, x: np.ndarray, chunk: int, pace: bool = False) -> list:
    import threading

    def feed():
        t0 = time.perf_counter()
        for k in range(0, x.size, chunk):
            if pace:
                time.sleep(max(0.0, t0 + (k + chunk) / 16000 - time.perf_counter()))
            engine.feed(x[k : k + chunk])
        engine.end()

    th = threading.Thread(target=feed, daemon=True)
    th.start()
    frames = list(engine.frames())
    th.join()
    return frames


@pytest.mark.slow
def test_live_frames_match_radnerf_render_on_the_same_file(tmp_path):
    head = _small_head()
    x = _speechlike(0.84)
    wav = tmp_path / "speech.wav"
    media.write_wav(wav, x)
    audio = rv.load_render_audio(wav, head.feature_kind)
    res = rv.render_video(head, audio, None, frames_dir=tmp_path / "offline", show_progress=False)
    from PIL import Image

    offline = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "offline").glob("*.png"))]
    x16 = media.load_audio(wav)  # the samples render read (16-bit wav)
    frames = _run(LiveEngine(head, LiveOptions(realtime=False)), x16, chunk=480)
    assert len(frames) == res.frames == len(offline) == rv.frames_for(x16.size / 16000)
    assert [f.index for f in frames] == list(range(len(offline)))
    assert {f.level for f in frames} == {"full"}
    diffs = [np.abs(f.image.astype(int) - o.astype(int)).max() for f, o in zip(frames, offline, strict=True)]
    # live mel levels equal the offline ones once the loud start is heard: from frame 9 on the attention
    # windows are identical, and after a few frames of audio-code smoothing (0.35^k) so are the images
    assert max(diffs[14:]) <= 1, diffs


@pytest.mark.slow
def test_live_engine_keeps_real_time_by_degrading_instead_of_drifting():
    head = _small_head()
    x = _speechlike(1.0)
    eng = LiveEngine(head, LiveOptions(latency=0.5))
    eng.warm_up()
    frames = _run(eng, x, chunk=320, pace=True)
    assert [f.index for f in frames] == list(range(rv.frames_for(1.0)))
    # every frame leaves by its deadline (a little slack for the clock between the check and the render)
    over = [f.left - f.deadline for f in frames]
    assert max(over) < 0.25, over
    # each frame's deadline follows its own sound: entered when the chunk holding sample 640 i came in
    t0 = frames[0].entered
    for f in frames:
        assert f.entered - t0 == pytest.approx(min(f.index * 0.04, 1.0 - 0.02), abs=0.06)
    st = eng.stats()
    assert st["frames"] == len(frames) and st["latency_median"] is not None
    assert st["latency_p95"] <= 0.5 + 0.25


@pytest.mark.slow
def test_silence_gives_an_idling_head_not_a_frozen_frame():
    head = _small_head()
    frames = _run(LiveEngine(head, LiveOptions(realtime=False)), np.zeros(int(0.4 * 16000), np.float32), 640)
    assert len(frames) == 10
    imgs = [f.image.astype(int) for f in frames]
    moved = [np.abs(imgs[i] - imgs[0]).mean() for i in range(1, 10)]
    assert max(moved) > 0.05 and moved[-1] > moved[0], moved  # the pose track and blinks keep going


def test_live_windows_equal_the_offline_ones_from_frame_9_on(tmp_path):
    """What the frame comparison above rests on, without a model: the windows the engine renders from."""
    from radnerf_cli.audio import streaming as st
    from radnerf_cli.data import audio_window

    wav = tmp_path / "speech.wav"
    media.write_wav(wav, _speechlike(0.84))
    off = rv.load_render_audio(wav, "mel").features
    x16 = media.load_audio(wav)
    rows, windows, got = st.MelStream(), st.StreamWindows(80), []
    for k in range(0, x16.size, 480):
        got += windows.push(rows.push(x16[k : k + 480]))
    got += windows.push(rows.finish()) + windows.finish(x16.size)
    assert [i for i, _ in got] == list(range(off.shape[0]))
    diff = [float(np.abs(w - audio_window(off, i).numpy()).max()) for i, w in got]
    assert max(diff[9:]) < 1e-5 and max(diff) < 0.2, diff

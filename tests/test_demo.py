"""The demo: its source video (a face mediapipe finds, speech-driven jaw, audio) and the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from radnerf_cli import media
from radnerf_cli.demo.source import DemoVideoConfig, build_demo_video
from radnerf_cli.demo.speech import SpeechConfig, per_frame, synthesize_speech


def test_speech_is_speech_like():
    audio, jaw = synthesize_speech(SpeechConfig(duration=4.0, seed=3))
    assert audio.shape == jaw.shape == (64000,)
    assert 0.5 < np.abs(audio).max() <= 0.8 + 1e-6
    # Syllables and pauses: loudness varies strongly at syllable rate, and the jaw follows it.
    env = per_frame(np.abs(audio), 16000, 25, 100)
    jaw_f = per_frame(jaw, 16000, 25, 100)
    assert (env < 0.05 * env.max()).mean() > 0.05  # some pauses
    assert np.corrcoef(env, jaw_f)[0, 1] > 0.6
    # The same seed gives the same speech; another seed another one.
    again, _ = synthesize_speech(SpeechConfig(duration=4.0, seed=3))
    other, _ = synthesize_speech(SpeechConfig(duration=4.0, seed=4))
    np.testing.assert_array_equal(audio, again)
    assert not np.allclose(audio, other)


def test_demo_video_has_a_tracked_talking_face(tmp_path):
    from radnerf_cli.demo.facemesh import face_landmarks

    out = build_demo_video(tmp_path / "demo.mp4", DemoVideoConfig(duration=3.0, size=256))
    info = media.probe(out)
    assert info.has_video and info.has_audio and (info.width, info.height) == (256, 256)
    assert abs(info.duration - 3.0) < 0.1
    frames = list(media.read_frames(out))
    assert len(frames) == 75
    mouth_gaps = []
    for f in frames[::8]:
        pts = face_landmarks(f)
        assert pts is not None, "mediapipe found no face in a demo frame"
        mouth_gaps.append(pts[14, 1] - pts[13, 1])  # inner lower lip minus inner upper lip (pixels)
    # The jaw really moves: the tracked mouth opening varies across frames.
    assert max(mouth_gaps) - min(mouth_gaps) > 2.0, mouth_gaps
    audio = media.load_audio(out)
    assert np.abs(audio).max() > 0.1


@pytest.mark.slow
def test_demo_pipeline_quick(tmp_path):
    """`radnerf demo --quick`: source video -> preprocess -> train -> render, through the real commands."""
    import os
    import subprocess
    import sys

    ws = tmp_path / "ws"
    env = {k: v for k, v in os.environ.items() if k != "RADNERF_WORKSPACE"}
    p = subprocess.run([sys.executable, "-m", "radnerf_cli", "demo", "--quick", "--workspace", str(ws)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1500)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = ws / "demo" / "astronaut_talk.mp4"
    assert str(out) in p.stdout.replace("\n", "")
    info = media.probe(out)
    assert info.has_video and info.has_audio and info.fps == 25
    assert sum(1 for _ in media.read_frames(out, fps=None)) == 25  # 1 s of new speech
    assert (ws / "subjects" / "astronaut" / "run" / "checkpoints" / "torso.safetensors").is_file()

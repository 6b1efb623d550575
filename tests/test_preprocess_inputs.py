"""Bad and unusual inputs to `radnerf preprocess`: one clear error, nothing half-written; odd
sources (portrait, landscape, small, 4K, 30 fps, variable rate, several faces) handled."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from radnerf_cli.errors import InputError
from radnerf_cli.preprocess.config import PreprocessConfig
from radnerf_cli.preprocess.pipeline import Pipeline
from radnerf_cli.workspace import Workspace


def ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def synth_video(path, seconds: float, size: str = "320x240", audio: bool = True):
    """A test pattern (no face), optionally with a tone."""
    args = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate=25:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac"]
    ffmpeg(*args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def run(video, tmp_path, until=None, **cfg):
    subj = Workspace(tmp_path / "ws").subject("s")
    return Pipeline(video, subj, PreprocessConfig(**cfg)).run(until=until), subj


# ---- bad input: one clear line naming the file, nothing left behind -------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="nope.mp4: file not found"):
        run(tmp_path / "nope.mp4", tmp_path)
    assert not (tmp_path / "ws" / "subjects" / "s").exists()


def test_not_a_video(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 50)
    with pytest.raises(InputError, match="notes.mp4: not a readable video or audio file"):
        run(p, tmp_path)
    assert not (tmp_path / "ws" / "subjects" / "s").exists()


def test_audio_only_file(tmp_path):
    p = tmp_path / "speech.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=6", str(p))
    with pytest.raises(InputError, match="speech.wav: has no video stream"):
        run(p, tmp_path)


def test_no_audio_track_cli_one_line_exit_code(tmp_path):
    p = synth_video(tmp_path / "silent.mp4", 6, audio=False)
    env = dict(os.environ, RADNERF_WORKSPACE=str(tmp_path / "ws"))
    proc = subprocess.run([sys.executable, "-m", "radnerf_cli", "preprocess", str(p)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "silent.mp4: has no audio track" in lines[0]
    assert not (tmp_path / "ws" / "subjects" / "silent").exists()


def test_too_short(tmp_path):
    p = synth_video(tmp_path / "short.mp4", 3)
    with pytest.raises(InputError, match=r"short.mp4: video is 3.0 s long; at least 5 s are needed"):
        run(p, tmp_path)


def test_no_face_at_all(tmp_path):
    p = synth_video(tmp_path / "pattern.mp4", 6)
    with pytest.raises(InputError, match="pattern.mp4: no face found in the video"):
        run(p, tmp_path)
    assert not (tmp_path / "ws" / "subjects" / "s").exists()  # the first run's folder is removed


def test_bad_import_features_file(tmp_path):
    p = synth_video(tmp_path / "x.mp4", 6)
    with pytest.raises(InputError, match="missing.npy: feature file not found"):
        run(p, tmp_path, import_features=str(tmp_path / "missing.npy"))


# ---- real faces in awkward sources ---------------------------------------------------------------


@pytest.fixture(scope="module")
def face6(shared_data, tmp_path_factory):
    """6 s of the shared talking head."""
    out = tmp_path_factory.mktemp("face6") / "face6.mp4"
    ffmpeg("-i", str(shared_data / "anchor_cnn_25fps.mp4"), "-t", "6", "-c:v", "libx264", "-preset", "ultrafast",
           "-c:a", "aac", str(out))
    return out


def _landmarks_ok(subj, n_expected):
    found = np.load(subj.state_dir / "found.npy")
    assert abs(len(found) - n_expected) <= 1
    return found


def test_truncated_video(face6, tmp_path):
    ffmpeg("-i", str(face6), "-c", "copy", "-movflags", "+faststart", str(tmp_path / "fast.mp4"))
    data = (tmp_path / "fast.mp4").read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: int(len(data) * 0.6)])  # index intact, the last frames missing
    with pytest.raises(InputError, match=r"cut.mp4: (decoding stopped at frame \d+ of about 150|video could not be decoded)"):
        run(p, tmp_path, until="track", size=256)
    assert not (tmp_path / "ws" / "subjects" / "s").exists()


def test_face_missing_in_too_many_frames_names_the_ranges(face6, tmp_path):
    p = tmp_path / "gap.mp4"
    ffmpeg("-i", str(face6), "-vf", "drawbox=enable='between(t,2,2.8)':color=black:t=fill", "-c:v", "libx264",
           "-preset", "ultrafast", "-c:a", "copy", str(p))
    with pytest.raises(InputError, match=r"gap.mp4: no face in \d+ of 150 frames .*: frames (49|50|51)-(68|69|70) "):
        run(p, tmp_path, size=256)
    assert not (tmp_path / "ws" / "subjects" / "s").exists()


def test_short_dropout_is_interpolated_and_reported(face6, tmp_path):
    p = tmp_path / "blink.mp4"
    ffmpeg("-i", str(face6), "-vf", "drawbox=enable='between(t,3,3.15)':color=black:t=fill", "-c:v", "libx264",
           "-preset", "ultrafast", "-c:a", "copy", str(p))
    t, subj = run(p, tmp_path, until="landmarks", size=256)
    (a, b), = t["landmarks"]["interpolated"]
    assert 74 <= a <= 76 and 77 <= b <= 80 and not t["landmarks"]["dropped"]
    lms = np.loadtxt(subj.root / "ori_imgs" / f"{a + 1}.lms")
    before, after = np.loadtxt(subj.root / "ori_imgs" / f"{a - 1}.lms"), np.loadtxt(subj.root / "ori_imgs" / f"{b + 1}.lms")
    assert np.abs(lms - (before + after) / 2).max() < 0.5 * np.abs(after - before).max() + 3


def test_several_faces_track_the_main_one(face6, tmp_path):
    p = tmp_path / "two.mp4"  # the subject at full size, a smaller second face beside it; for
    # 0.2 s the subject is hidden while the other face stays: that is a dropout, not a new subject
    ffmpeg("-i", str(face6), "-filter_complex",
           "[0:v]split[a][b];[b]scale=256:256,pad=256:512:0:128[s];[a][s]hstack=inputs=2,"
           "drawbox=x=0:y=0:w=512:h=512:color=black:t=fill:enable='between(t,3,3.2)'[v]", "-map", "[v]",
           "-map", "0:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", str(p))
    t, subj = run(p, tmp_path, until="landmarks", size=256)
    x, y, w, h = t["video"]["crop"]
    assert t["video"]["max_faces"] >= 2
    assert x + w <= 560  # the crop stays on the large face (the small one sits at x 512-768)
    found = _landmarks_ok(subj, 150)
    assert not found[76:79].any() and found[:74].all() and found[82:].all()
    (a, b), = t["landmarks"]["interpolated"]
    assert 74 <= a <= 76 and 78 <= b <= 81
    mesh = np.load(subj.root / "landmarks_mesh.npy")
    span = np.ptp(mesh[:, :, 0], axis=1)
    assert span.min() > 0.6 * span.max()  # the same (large) face on every frame, never the small one


@pytest.mark.parametrize(
    "name, vf, extra, size",
    [
        # portrait phone video at 30 fps: face in the upper part of a tall frame
        ("portrait", "fps=30,pad=540:960:14:120:color=gray", [], (540, 960)),
        # landscape, variable frame rate: every 7th frame dropped, timestamps kept
        ("landscape_vfr", "select='not(eq(mod(n\\,7)\\,3))',pad=1280:720:700:100:color=gray", ["-fps_mode", "vfr"],
         (1280, 720)),
        # a small source (upscaled to the output size)
        ("small", "scale=160:160", [], (160, 160)),
    ],
)
def test_odd_sources(face6, tmp_path, name, vf, extra, size):
    p = tmp_path / f"{name}.mp4"
    ffmpeg("-i", str(face6), "-vf", vf, *extra, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", str(p))
    t, subj = run(p, tmp_path, until="landmarks", size=256)
    assert t["video"]["source"] == list(size)
    x, y, w, h = t["video"]["crop"]
    assert w == h and 0 <= x and x + w <= size[0] and 0 <= y and y + h <= size[1]
    found = _landmarks_ok(subj, 150)  # 6 s at 25 fps whatever the source rate
    assert found.all()
    import cv2

    assert cv2.imread(str(subj.root / "ori_imgs" / "0.jpg")).shape == (256, 256, 3)


@pytest.mark.slow
def test_4k_source(face6, tmp_path):
    p = tmp_path / "uhd.mp4"
    ffmpeg("-i", str(face6), "-t", "5.2", "-vf", "scale=1400:1400,pad=3840:2160:1800:500:color=gray", "-c:v", "libx264",
           "-preset", "ultrafast", "-c:a", "copy", str(p))
    t, subj = run(p, tmp_path, until="landmarks", size=256)
    assert t["video"]["source"] == [3840, 2160]
    x, y, w, h = t["video"]["crop"]
    assert w == h and x + w <= 3840 and y + h <= 2160
    assert _landmarks_ok(subj, 130).all()
    # the head sits in the middle of the crop, a head-and-shoulders framing (face ~40% of the side)
    mesh = np.load(subj.root / "landmarks_mesh.npy")
    assert 0.35 * 256 < mesh[:, :, 0].mean() < 0.65 * 256
    assert 0.25 < np.ptp(mesh[0, :, 0]) / 256 < 0.6

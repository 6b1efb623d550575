"""`radnerf render`: audio inputs, pose tracks, backgrounds, and full renders of a small trained model."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from radnerf_cli import media
from radnerf_cli.engine import render_video as rv
from radnerf_cli.errors import InputError


def _tone(seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.3 * env * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _convert(src, dst) -> None:
    subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), str(dst)], check=True)


@pytest.fixture(scope="module")
def speech_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    wav = d / "speech.wav"
    media.write_wav(wav, _tone(1.2))
    _convert(wav, d / "speech.flac")
    _convert(wav, d / "speech.mp3")
    with media.VideoWriter(d / "clip.mp4", 32, 32, audio=wav) as vw:
        for _ in range(30):
            vw.write(np.zeros((32, 32, 3), np.uint8))
    return d


# ----------------------------------------------------------------------------------------------
# audio


@pytest.mark.parametrize("name", ["speech.wav", "speech.flac", "speech.mp3", "clip.mp4"])
def test_audio_formats_give_frames_for_their_duration(speech_files, name):
    a = rv.load_render_audio(speech_files / name, "mel")
    assert a.kind == "mel"
    assert a.features.shape[1:] == (16, 80)
    assert a.features.shape[0] == rv.frames_for(a.seconds)
    assert abs(a.seconds - 1.2) < 0.08  # mp3/aac add a little encoder padding
    assert a.sound == speech_files / name


def test_missing_corrupt_silent_and_short_audio(tmp_path):
    with pytest.raises(InputError, match="nope.wav: file not found"):
        rv.load_render_audio(tmp_path / "nope.wav", "mel")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 50)
    with pytest.raises(InputError, match="bad.wav"):
        rv.load_render_audio(bad, "mel")
    silent = tmp_path / "silent.wav"
    media.write_wav(silent, np.zeros(16000, np.float32))
    with pytest.raises(InputError, match="silent.wav: audio is silent"):
        rv.load_render_audio(silent, "mel")
    short = tmp_path / "short.wav"
    media.write_wav(short, _tone(0.02))
    with pytest.raises(InputError, match="short.wav: audio is too short"):
        rv.load_render_audio(short, "mel")


def test_feature_kind_must_match_the_model(tmp_path, speech_files):
    eo = tmp_path / "speech_eo.npy"
    np.save(eo, np.random.default_rng(0).normal(size=(30, 16, 44)).astype(np.float32))
    with pytest.raises(InputError, match="holds 'eo' audio features but the model was trained on 'mel'"):
        rv.load_render_audio(eo, "mel")
    with pytest.raises(InputError, match="holds 'eo' audio features but the model was trained on 'whisper'"):
        rv.load_render_audio(speech_files / "speech.wav", "whisper", features=eo)
    # A model trained on imported RAD-NeRF features cannot be driven by sound alone.
    with pytest.raises(InputError, match="trained on 'eo' audio features, which radnerf cannot compute"):
        rv.load_render_audio(speech_files / "speech.wav", "eo")
    a = rv.load_render_audio(speech_files / "speech.wav", "eo", features=eo)
    assert a.features.shape == (30, 16, 44) and a.sound is not None
    b = rv.load_render_audio(eo, "eo")
    assert b.sound is None and b.seconds == pytest.approx(30 / 25)


@pytest.mark.data
def test_radnerf_feature_file_with_its_audio(shared_data):
    a = rv.load_render_audio(shared_data / "speech_ian.wav", "eo", features=shared_data / "speech_ian_wav2vec_eo.npy")
    assert a.features.shape == (rv.frames_for(a.seconds), 16, 44)


# ----------------------------------------------------------------------------------------------
# poses, frames, backgrounds


def test_ping_pong_covers_long_audio():
    seq = [rv.ping_pong(i, 4) for i in range(10)]
    assert seq == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert [rv.ping_pong(i, 1) for i in range(3)] == [0, 0, 0]


def test_smooth_poses_keeps_rotations_and_averages_translation():
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    n = 20
    poses = np.tile(np.eye(4, dtype=np.float32), (n, 1, 1))
    poses[:, :3, :3] = Rotation.from_euler("xyz", rng.normal(scale=0.05, size=(n, 3))).as_matrix()
    poses[:, :3, 3] = rng.normal(size=(n, 3))
    sm = rv.smooth_poses(poses, 5)
    r = sm[:, :3, :3]
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (n, 3, 3)), atol=1e-5)
    np.testing.assert_allclose(sm[10, :3, 3], poses[8:13, :3, 3].mean(0), atol=1e-5)
    assert np.abs(np.diff(sm[:, :3, 3], axis=0)).mean() < np.abs(np.diff(poses[:, :3, 3], axis=0)).mean()
    np.testing.assert_array_equal(rv.smooth_poses(poses, 1), poses)


def test_pose_file(tmp_path):
    good = tmp_path / "transforms.json"
    good.write_text(json.dumps({"frames": [{"transform_matrix": np.eye(4).tolist()}] * 3}))
    assert rv.load_pose_file(good).shape == (3, 4, 4)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"frames": [{"transform_matrix": [[1, 0], [0, 1]]}]}))
    with pytest.raises(InputError, match="bad.json"):
        rv.load_pose_file(bad)
    with pytest.raises(InputError, match="pose file not found"):
        rv.load_pose_file(tmp_path / "none.json")


@pytest.mark.data
def test_real_radnerf_pose_file(shared_data):
    poses = rv.load_pose_file(shared_data / "radnerf_obama_transforms_val.json")
    assert poses.shape == (728, 4, 4)


class _Head:
    H, W = 6, 8
    background = np.full((6, 8, 3), 7, np.uint8)


def test_backgrounds(tmp_path):
    assert (rv.parse_background("bc", _Head) == 7).all()
    assert (rv.parse_background("white", _Head) == 255).all()
    assert rv.parse_background("#ff8000", _Head)[0, 0].tolist() == [255, 128, 0]
    assert rv.parse_background("1,2,3", _Head)[5, 7].tolist() == [1, 2, 3]
    from radnerf_cli.fsutil import save_image

    img = tmp_path / "bg.png"
    save_image(img, np.full((12, 16, 3), 200, np.uint8))
    bg = rv.parse_background(str(img), _Head)
    assert bg.shape == (6, 8, 3) and (bg == 200).all()
    with pytest.raises(InputError, match="neither bc, a colour"):
        rv.parse_background("not-a-thing", _Head)


def test_frame_range():
    a = rv.RenderAudio(np.zeros((100, 16, 2), np.float32), "mel", 4.0, None)
    assert rv.frame_range(a, 0.0, None) == (0, 100)
    assert rv.frame_range(a, 1.0, 2.0) == (25, 50)
    assert rv.frame_range(a, 3.5, 2.0) == (88, 12)
    with pytest.raises(InputError, match="past the end"):
        rv.frame_range(a, 5.0, None)


# ----------------------------------------------------------------------------------------------
# full renders of a small trained model (shared with test_export.py)

TINY_TRAIN = ["model.log2_hashmap_size=12", "render.grid_size=32", "train.downscale=1", "train.num_rays=512",
              "train.head_iters=30", "train.lips_iters=0", "train.torso_iters=10", "train.ckpt_every=1000",
              "train.preview_every=1000", "train.val_frames=1"]


@functools.lru_cache(maxsize=1)
def trained_workspace() -> Path:
    """A workspace with one synthetic subject ('syn', 64x64, mel features) trained for a few dozen steps."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from radnerf_cli.engine.trainer import Trainer
    from radnerf_cli.model.config import load_run_config
    from radnerf_cli.workspace import Workspace
    from synthetic_scene import make_synthetic_subject

    root = Path(tempfile.mkdtemp(prefix="radnerf-render-test-"))
    ws = Workspace(root)
    sub = ws.subject("syn")
    make_synthetic_subject(sub.root, n_frames=30, size=64, feature_dim=80)
    cfg = load_run_config("fast", overrides=TINY_TRAIN)
    Trainer(sub, cfg, device="cpu", quiet=True).run(["head", "torso"])
    return root


@pytest.fixture
def trained(tmp_path):
    """A private copy of the trained workspace (tests may add subjects to it)."""
    dst = tmp_path / "ws"
    shutil.copytree(trained_workspace(), dst)
    return dst


def stream_stats(path: Path) -> tuple[int, float]:
    """(video frames, audio seconds) of an mp4, decoded back with the bundled ffmpeg."""
    frames = sum(1 for _ in media.read_frames(path, fps=None))
    info = media.probe(path)
    proc = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:a:0",
                           "-ac", "1", "-f", "f32le", "-"], capture_output=True, check=True)
    return frames, len(proc.stdout) / 4 / info.audio_rate


def _cli(*args: str):
    from typer.testing import CliRunner

    from radnerf_cli.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.slow
def test_render_mp4_has_25_fps_frames_and_the_audio(trained, speech_files, tmp_path):
    out = tmp_path / "talk.mp4"
    # --subject left out: the workspace holds one trained subject.
    r = _cli("render", "--workspace", str(trained), "--audio", str(speech_files / "speech.wav"), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "frames/s" in r.output
    info = media.probe(out)
    assert info.has_video and info.has_audio and (info.width, info.height) == (64, 64) and info.fps == 25
    frames, audio_s = stream_stats(out)
    assert frames == 30  # 25 x 1.2 s
    assert abs(audio_s - 1.2) < 0.07  # the input's duration, within one AAC frame
    # The picture is the model's render, not a copy of the background.
    from PIL import Image

    first = next(media.read_frames(out)).astype(np.float32)
    bc = np.asarray(Image.open(trained / "subjects" / "syn" / "bc.jpg"), dtype=np.float32)
    assert np.abs(first - bc).mean() > 2


@pytest.mark.slow
def test_render_start_duration_frames_dir_pose_and_background(trained, speech_files, tmp_path):
    out = tmp_path / "part.mp4"
    pose = trained / "subjects" / "syn" / "transforms_val.json"
    r = _cli("render", "-w", str(trained), "-s", "syn", "--audio", str(speech_files / "clip.mp4"), "--out", str(out),
             "--start", "0.4", "--duration", "0.4", "--frames-dir", str(tmp_path / "png"), "--pose", str(pose),
             "--bg", "white", "--fix-eye", "0.3", "--no-torso")
    assert r.exit_code == 0, r.output
    frames, audio_s = stream_stats(out)
    assert frames == 10 and abs(audio_s - 0.4) < 0.07
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert len(pngs) == 10
    r = _cli("render", "-w", str(trained), "-s", "syn", "--audio", str(speech_files / "clip.mp4"), "--start", "0.4",
             "--duration", "0.08", "--frames-dir", str(tmp_path / "black"), "--pose", str(pose), "--bg", "0,0,0",
             "--fix-eye", "0.3", "--no-torso")
    assert r.exit_code == 0, r.output
    from PIL import Image

    white = np.asarray(Image.open(pngs[0]), dtype=np.float32)
    black = np.asarray(Image.open(tmp_path / "black" / "000000.png"), dtype=np.float32)
    # Where the head is not opaque the background shows through: white over black at the corners.
    assert (white[0, 0] - black[0, 0] > 30).all(), (white[0, 0], black[0, 0])


@pytest.mark.slow
def test_bad_inputs_with_a_trained_model(trained, speech_files, tmp_path):
    eo = tmp_path / "speech_eo.npy"
    np.save(eo, np.zeros((30, 16, 44), np.float32) + 0.1)
    r = _cli("render", "-w", str(trained), "--audio", str(eo), "--out", str(tmp_path / "x.mp4"))
    assert r.exit_code != 0
    assert "holds 'eo' audio features but the model was trained on 'mel'" in str(r.exception)
    # An untrained subject beside the trained one: named in the error; several subjects are listed.
    from synthetic_scene import make_synthetic_subject

    make_synthetic_subject(trained / "subjects" / "fresh", n_frames=12, size=32, feature_dim=80)
    wav = str(speech_files / "speech.wav")
    r = _cli("render", "-w", str(trained), "-s", "fresh", "--audio", wav, "--out", str(tmp_path / "x.mp4"))
    assert r.exit_code != 0 and "subject 'fresh' is not trained yet" in str(r.exception)
    r = _cli("render", "-w", str(trained), "--audio", wav, "--out", str(tmp_path / "x.mp4"))
    assert r.exit_code != 0 and "holds several subjects (fresh, syn)" in str(r.exception)
    r = _cli("render", "-w", str(trained), "-s", "nobody", "--audio", wav, "--out", str(tmp_path / "x.mp4"))
    assert r.exit_code != 0 and "subject 'nobody' has no dataset" in str(r.exception)
    assert not (tmp_path / "x.mp4").exists()


def test_bad_inputs_fail_before_loading_any_model(tmp_path, speech_files):
    """Each with one clear error line and a non-zero exit code, through the real entry point."""
    import sys

    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"ID3" + b"\x00garbage" * 100)
    silent = tmp_path / "silent.wav"
    media.write_wav(silent, np.zeros(8000, np.float32))
    short = tmp_path / "short.wav"
    media.write_wav(short, _tone(0.01))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    wav = str(speech_files / "speech.wav")
    cases = [
        (["--audio", str(tmp_path / "none.wav"), "--out", "o.mp4"], "none.wav: file not found"),
        (["--audio", str(bad), "--out", "o.mp4"], "bad.mp3"),
        (["--audio", str(silent), "--out", "o.mp4"], "silent.wav: audio is silent"),
        (["--audio", str(short), "--out", "o.mp4"], "short.wav: audio is too short"),
        (["--audio", wav, "--out", str(blocker / "o.mp4")], "cannot write the video here"),
        (["--audio", wav, "--out", str(tmp_path)], "is a folder"),
    ]
    code = "import sys; from radnerf_cli.cli import main; sys.argv = ['radnerf', 'render'] + sys.argv[1:]; main()"
    for args, expected in cases:
        p = subprocess.run([sys.executable, "-c", code, "-w", str(tmp_path / "ws"), *args], capture_output=True,
                           text=True, cwd=tmp_path)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 1, (args, p.stderr)
        assert len(lines) == 1 and expected in lines[0], (args, p.stderr)

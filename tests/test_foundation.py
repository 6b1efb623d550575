"""Config loading, atomic writes, the workspace layout and media I/O."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

import numpy as np
import pytest

from radnerf_cli import fsutil, media
from radnerf_cli.config import load_config, save_config
from radnerf_cli.errors import ConfigError, InputError, WorkspaceError
from radnerf_cli.workspace import Workspace


@dataclass
class _Inner:
    lr: float = 1e-3  # learning rate
    name: str = "x"  # a label


@dataclass
class _Cfg:
    iters: int = 10  # steps
    inner: _Inner = field(default_factory=_Inner)  # nested group


def test_config_defaults_yaml_and_overrides(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("iters: 20\ninner:\n  name: y\n")
    cfg = load_config(_Cfg, y, ["inner.lr=0.5"])
    assert cfg.iters == 20 and cfg.inner.name == "y" and cfg.inner.lr == 0.5
    save_config(cfg, tmp_path / "out.yaml")
    again = load_config(_Cfg, tmp_path / "out.yaml")
    assert again == cfg


def test_config_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="inner.nope"):
        load_config(_Cfg, None, ["inner.nope=1"])
    y = tmp_path / "bad.yaml"
    y.write_text("itrs: 3\n")
    with pytest.raises(ConfigError, match="itrs"):
        load_config(_Cfg, y)


def test_config_bad_type_and_form():
    with pytest.raises(ConfigError, match="iters"):
        load_config(_Cfg, None, ["iters=abc"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(_Cfg, None, ["iters"])


def test_run_config_sections_and_old_key_names_still_load(tmp_path):
    from radnerf_cli.model.config import load_run_config, upgrade

    # a run config saved before the re-sectioning: camera conventions, occupancy-update and inference
    # settings under `render`, one fp16 switch for training and inference
    old = tmp_path / "config.yaml"
    old.write_text("render:\n  scale: 3.0\n  offset: [0.0, 0.1, 0.0]\n  update_interval: 8\n  grid_decay: 0.9\n"
                   "  T_thresh_train: 0.001\n  T_thresh_test: 0.02\n  smooth_audio: 0.5\n  grid_size: 64\n"
                   "train:\n  fp16: false\n")
    cfg = load_run_config("full", old)
    assert cfg.data.scale == 3.0 and list(cfg.data.offset) == [0.0, 0.1, 0.0]
    assert cfg.train.grid_update_interval == 8 and cfg.train.grid_decay == 0.9 and cfg.train.T_thresh == 0.001
    assert cfg.infer.T_thresh == 0.02 and cfg.infer.smooth_audio == 0.5 and cfg.infer.fp16 is False
    assert cfg.render.grid_size == 64 and "smooth_audio" not in cfg.render
    # old names as overrides land in the new place; new names work as well
    cfg = load_run_config("fast", None, ["render.smooth_audio=0.1", "train.grid_decay=0.5"])
    assert cfg.infer.smooth_audio == 0.1 and cfg.train.grid_decay == 0.5
    # a checkpoint's config dict (what inference merges) is upgraded without being changed in place
    meta = {"render": {"smooth_audio": 0.2}, "train": {"fp16": True}}
    up = upgrade(meta)
    assert up == {"render": {}, "infer": {"smooth_audio": 0.2, "fp16": True}, "train": {"fp16": True}}
    assert meta == {"render": {"smooth_audio": 0.2}, "train": {"fp16": True}}
    # a new config saved and read back is unchanged
    save_config(cfg, tmp_path / "new.yaml")
    assert load_run_config("full", tmp_path / "new.yaml") == cfg
    # a run saved before the ridge predictor existed resumes with the network it was trained with,
    # over a preset that now picks ridge; a partial YAML of a user's still takes the preset's choice
    (tmp_path / "before.yaml").write_text("model:\n  audio_path: mouth\n  mouth_dim: 4\n")
    assert load_run_config("full", tmp_path / "before.yaml").model.mouth_predictor == "net"
    (tmp_path / "mine.yaml").write_text("model:\n  audio_path: mouth\n")
    assert load_run_config("full", tmp_path / "mine.yaml").model.mouth_predictor == "ridge"
    assert load_run_config("fast").model.mouth_predictor == "ridge"
    # likewise its ridge averaged whole feature windows; new runs of both presets use the centre rows
    (tmp_path / "ridge16.yaml").write_text("model:\n  audio_path: mouth\n  mouth_dim: 4\n  mouth_predictor: ridge\n")
    assert load_run_config("fast", tmp_path / "ridge16.yaml").model.mouth_window_rows == 16
    assert load_run_config("fast").model.mouth_window_rows == 4 == load_run_config("full").model.mouth_window_rows
    # and its predictor's gains scaled up every component it followed; new runs scale the opening only
    assert load_run_config("fast", tmp_path / "ridge16.yaml").train.mouth_gain == "all"
    assert load_run_config("fast").train.mouth_gain == "opening" == load_run_config("full").train.mouth_gain


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "a.json"
    fsutil.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with fsutil.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text().strip().startswith("{")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_workspace_subject_lookup(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(WorkspaceError, match="no subjects"):
        ws.find_subject(None)
    for name in ("ann", "bob"):
        s = ws.subject(name)
        s.root.mkdir(parents=True)
        (s.root / "transforms_train.json").write_text("{}")
    with pytest.raises(WorkspaceError, match="ann, bob"):
        ws.find_subject(None)
    assert ws.find_subject("bob").name == "bob"
    with pytest.raises(WorkspaceError, match="carl"):
        ws.find_subject("carl")


def _make_clip(path, seconds=1.0, size=(64, 48), fps=30, audio=True):
    exe = media.ffmpeg_exe()
    cmd = [exe, "-y", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc=size={size[0]}x{size[1]}:rate={fps}:duration={seconds}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-shortest", str(path)]
    subprocess.run(cmd, check=True)


def test_media_probe_read_and_audio(tmp_path):
    clip = tmp_path / "clip.mp4"
    _make_clip(clip, seconds=2.0)
    info = media.probe(clip)
    assert info.has_video and info.has_audio and (info.width, info.height) == (64, 48)
    assert abs(info.fps - 30) < 0.1 and abs(info.duration - 2.0) < 0.1
    frames = list(media.read_frames(clip, fps=25, crop=(8, 0, 48, 48), size=(32, 32)))
    assert len(frames) == 50 and frames[0].shape == (32, 32, 3)
    audio = media.load_audio(clip)
    assert abs(len(audio) / 16000 - 2.0) < 0.05 and np.abs(audio).max() > 0.1


def test_media_errors_name_the_file(tmp_path):
    bad = tmp_path / "notavideo.mp4"
    bad.write_bytes(b"hello, not a video" * 10)
    with pytest.raises(InputError, match="notavideo.mp4"):
        media.probe(bad)
    with pytest.raises(InputError, match="missing.wav: file not found"):
        media.load_audio(tmp_path / "missing.wav")
    silent_video = tmp_path / "noaudio.mp4"
    _make_clip(silent_video, audio=False)
    with pytest.raises(InputError, match="noaudio.mp4: has no audio track"):
        media.load_audio(silent_video)


def test_video_writer_roundtrip_with_audio(tmp_path):
    wav = tmp_path / "a.wav"
    t = np.arange(16000) / 16000
    media.write_wav(wav, 0.3 * np.sin(2 * np.pi * 220 * t))
    out = tmp_path / "out.mp4"
    with media.VideoWriter(out, 32, 32, audio=wav) as vw:
        for i in range(25):
            vw.write(np.full((32, 32, 3), i * 10, np.uint8))
    info = media.probe(out)
    assert info.has_audio and info.has_video and abs(info.duration - 1.0) < 0.1
    assert len(list(media.read_frames(out, fps=None))) == 25
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

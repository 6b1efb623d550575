"""Outputs never destroy anything silently: overwrite refusal, inputs and checkpoints protected,
another video never lands in an existing subject, and the demo keeps to its own workspace."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from radnerf_cli.cli import app
from radnerf_cli.commands.common import check_output
from radnerf_cli.errors import InputError
from radnerf_cli.preprocess import origin
from radnerf_cli.workspace import Workspace

runner = CliRunner()


def test_check_output_rules(tmp_path):
    new = tmp_path / "new.mp4"
    assert check_output(new, force=False) == new
    old = tmp_path / "old.mp4"
    old.write_bytes(b"x")
    with pytest.raises(InputError, match=r"old\.mp4: already exists") as e:
        check_output(old, force=False)
    assert "--force" in e.value.hint
    assert check_output(old, force=True) == old
    with pytest.raises(InputError, match=r"is also this command's input \(--audio\)"):
        check_output(old, force=True, inputs={"--audio": tmp_path / "." / "old.mp4"})
    ck = tmp_path / "ws" / "subjects" / "me" / "run" / "checkpoints" / "head.safetensors"
    with pytest.raises(InputError, match=r"lies inside subject 'me''s run/checkpoints"):
        check_output(ck, force=True)


def test_render_refuses_before_loading_anything(tmp_path):
    talk = tmp_path / "talk.mp4"
    talk.write_bytes(b"my only copy")
    ws = ["-w", str(tmp_path / "ws")]
    r = runner.invoke(app, ["render", *ws, "-a", str(talk), "-o", str(talk), "--force"])
    assert isinstance(r.exception, InputError) and "is also this command's input (--audio)" in str(r.exception)
    other = tmp_path / "out.mp4"
    other.write_bytes(b"an earlier render")
    r = runner.invoke(app, ["render", *ws, "-a", str(talk), "-o", str(other)])
    assert isinstance(r.exception, InputError) and "out.mp4: already exists" in str(r.exception)
    assert talk.read_bytes() == b"my only copy" and other.read_bytes() == b"an earlier render"


def test_export_refuses_an_existing_file_and_the_checkpoints(tmp_path):
    from synthetic_scene import make_synthetic_subject

    make_synthetic_subject(tmp_path / "subjects" / "syn", n_frames=12, size=32)
    out = tmp_path / "syn.radnerf"
    out.write_bytes(b"an earlier bundle")
    r = runner.invoke(app, ["export", "-w", str(tmp_path), "-o", str(out)])
    assert isinstance(r.exception, InputError) and "syn.radnerf: already exists" in str(r.exception)
    ck = Workspace(tmp_path).subject("syn").checkpoint_dir / "head.safetensors"
    r = runner.invoke(app, ["export", "-w", str(tmp_path), "-o", str(ck), "-y"])
    assert isinstance(r.exception, InputError) and "run/checkpoints" in str(r.exception)
    assert out.read_bytes() == b"an earlier bundle"


def _video(path, content: bytes):
    path.write_bytes(content)
    return path


def test_another_video_into_a_subject_is_refused_then_replaced_with_force(tmp_path):
    sub = Workspace(tmp_path / "ws").subject("video")
    a = _video((tmp_path / "a").mkdir() or tmp_path / "a" / "video.mp4", b"first video")
    b = _video((tmp_path / "b").mkdir() or tmp_path / "b" / "video.mp4", b"second video")
    src, note = origin.check(sub, a, force=False)
    assert note is None
    origin.record(sub, src)
    assert origin.check(sub, a, force=False)[1] is None  # the same video again: fine
    moved = _video(tmp_path / "renamed.mp4", b"first video")
    assert origin.check(sub, moved, force=False)[1] is None  # same content under another name: fine
    (sub.checkpoint_dir).mkdir(parents=True)
    (sub.checkpoint_dir / "head.safetensors").write_bytes(b"weights of the first video")
    with pytest.raises(InputError, match=r"subject 'video' was made from another video, .*a/video\.mp4"):
        origin.check(sub, b, force=False)
    assert (sub.checkpoint_dir / "head.safetensors").is_file()
    src_b, note = origin.check(sub, b, force=True)
    assert note is not None and "was moved to" in note
    assert not sub.run_dir.exists()
    aside = [p for p in sub.root.iterdir() if p.name.startswith("run.replaced-")]
    assert len(aside) == 1 and (aside[0] / "checkpoints" / "head.safetensors").read_bytes() == b"weights of the first video"
    origin.record(sub, src_b)
    assert origin.recorded(sub).path == str(b.resolve())


def test_preprocess_cli_refuses_before_any_step(tmp_path, monkeypatch):
    from radnerf_cli.preprocess import pipeline

    calls = []
    monkeypatch.setattr(pipeline, "run_preprocess", lambda video, subj, cfg: calls.append(video) or {"subject": subj.name})
    ws = tmp_path / "ws"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _video(tmp_path / "a" / "video.mp4", b"first video")
    b = _video(tmp_path / "b" / "video.mp4", b"second video")
    r = runner.invoke(app, ["preprocess", str(a), "-w", str(ws), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"subject": "video", "replaced_run": None}
    r = runner.invoke(app, ["preprocess", str(b), "-w", str(ws)])
    assert isinstance(r.exception, InputError) and "was made from another video" in str(r.exception)
    assert calls == [a]
    sub = Workspace(ws).subject("video")
    sub.run_dir.mkdir(parents=True)
    r = runner.invoke(app, ["preprocess", str(b), "-w", str(ws), "--force", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # stdout holds the JSON only; the note went to stderr
    assert "was moved to" in doc["replaced_run"] and "was moved to" in r.stderr
    assert calls == [a, b]


def test_demo_has_its_own_workspace(tmp_path, monkeypatch):
    from radnerf_cli.demo import pipeline

    seen = []

    def fake_run_demo(ws, cfg):
        seen.append(ws)
        return pipeline.DemoResult(video=ws / "demo" / "t.mp4", source=ws / "demo" / "s.mp4", timings={"source": 0.0})

    monkeypatch.setattr(pipeline, "run_demo", fake_run_demo)
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["demo", "--json"], env={"RADNERF_WORKSPACE": str(tmp_path / "mine")})
    assert r.exit_code == 0, r.output
    assert seen == [tmp_path / "demo-workspace"]  # not ./workspace, not the user's $RADNERF_WORKSPACE
    assert json.loads(r.stdout)["workspace"] == str(tmp_path / "demo-workspace")
    r = runner.invoke(app, ["demo", "-w", str(tmp_path / "elsewhere")])
    assert r.exit_code == 0 and seen[-1] == tmp_path / "elsewhere"

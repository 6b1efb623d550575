"""`radnerf evaluate`: LMD math, the evaluation loop and its outputs, the command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from radnerf_cli import media
from radnerf_cli.commands import evaluate as evaluate_cmd
from radnerf_cli.data import SubjectData, audio_window
from radnerf_cli.engine.evaluate import evaluate, lmd
from radnerf_cli.errors import WorkspaceError
from radnerf_cli.workspace import Workspace
from synthetic_scene import make_synthetic_subject


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("ws")
    make_synthetic_subject(ws / "subjects" / "syn", n_frames=55, size=48)
    return ws


class GroundTruthHead:
    """Implements TalkingHead's rendering contract by playing back the subject's own frames.

    Each call looks the frame up by its pose, checks that the audio window and eye value are that
    frame's, and returns the ground truth brightened by ``offset`` grey levels.
    """

    def __init__(self, root, offset: int = 0, blank: bool = False, transparent: bool = False, torso: bool = False):
        import cv2

        self.data = SubjectData(root, "all")
        self.offset, self.blank, self.transparent = offset, blank, transparent
        self.feature_kind, self.feature_dim = self.data.feature_kind, self.data.feature_dim
        self.H, self.W = self.data.H, self.data.W
        self.pose_track, self.eye_track = self.data.poses_raw, self.data.eye.numpy()
        self.body_track = None  # a torso on the head pose alone
        self.background = cv2.cvtColor(cv2.imread(str(root / "bc.jpg")), cv2.COLOR_BGR2RGB)
        self.torso_trained = torso
        self.resets, self.calls = 0, []

    def reset(self):
        self.resets += 1

    def render_layers(self, pose, aud, eye, pixels=None, torso=False, body=None):
        """An opaque 'head' covering the frame: the ground truth (+ offset), or the background when blank;
        a transparent one (weights 0) when ``transparent``; a torso layer of zero opacity."""
        k = int(np.argmin(np.abs(self.data.poses_raw - pose[None]).reshape(len(self.data), -1).sum(1)))
        assert np.allclose(self.data.poses_raw[k], pose)
        self.calls.append({
            "img_id": self.data.frame_ids[k],
            "aud_ok": torch.equal(aud, audio_window(self.data.auds, int(self.data.aud_ids[k]))),
            "eye_ok": eye == pytest.approx(float(self.data.eye[k])),
            "torso": torso,
        })
        if self.blank:  # the background alone: no face anywhere
            img = self.background.copy()
        else:
            img = np.clip(self.data.image_uint8(k).astype(np.int32) + self.offset, 0, 255).astype(np.uint8)
        n = self.H * self.W
        weights = np.zeros(n, np.float32) if self.transparent else np.ones(n, np.float32)
        out = {"head": img.reshape(-1, 3).astype(np.float32) / 255 * weights[:, None], "weights": weights}
        if torso and self.torso_trained:
            out["torso_rgb"], out["torso_alpha"] = np.zeros((n, 3), np.float32), np.zeros(n, np.float32)
        if pixels is not None:
            out = {key: v[pixels] for key, v in out.items()}
        return out


# ---- LMD ---------------------------------------------------------------------------------------


def test_lmd_known_sets():
    rng = np.random.default_rng(0)
    mouth = rng.uniform(100, 140, (20, 2))
    assert lmd(mouth, mouth) == 0.0
    assert lmd(mouth, mouth + [7.0, -3.0]) == pytest.approx(0.0, abs=1e-12)  # translation is removed
    moved = mouth.copy()
    moved[5] += [3.0, 4.0]  # one point moved by 5 px: after centring it is off by 5 * 19/20, the rest by 5/20
    assert lmd(mouth, moved) == pytest.approx((5 * 19 / 20 + 19 * 5 / 20) / 20)
    c = mouth - mouth.mean(0)
    assert lmd(c, 2 * c) == pytest.approx(np.linalg.norm(c, axis=1).mean())  # scale is not removed
    full_a, full_b = rng.uniform(0, 200, (68, 2)), rng.uniform(0, 200, (68, 2))
    full_b[48:] = full_a[48:] + 11.0  # only the jaw/eyes/nose differ: the mouth is the same shape
    assert lmd(full_a, full_b) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        lmd(np.zeros((10, 2)), np.zeros((10, 2)))


def test_lmd_with_the_face_tracker(shared_data):
    from radnerf_cli.preprocess.landmarks import FaceTracker

    frame = next(iter(media.read_frames(shared_data / "anchor_cnn_25fps.mp4", size=(256, 256))))
    ft = FaceTracker()
    try:
        a = ft.landmarks68(np.ascontiguousarray(frame))
        b = ft.landmarks68(np.ascontiguousarray(np.roll(frame, 6, axis=1)))
    finally:
        ft.close()
    assert a is not None and b is not None
    assert np.abs((b - a)[48:68, 0].mean() - 6) < 1.5  # the tracker saw the shift...
    assert lmd(a, b) < 1.0  # ...and LMD removes it


# ---- the evaluation loop -----------------------------------------------------------------------


def test_evaluate_perfect_and_offset_renders(workspace, tmp_path):
    sub = Workspace(workspace).subject("syn")
    head = GroundTruthHead(sub.dataset)
    res = evaluate(sub, head=head, landmarks=False, show=False)
    assert res["frames"] == 5 and head.resets == 1
    assert [c["img_id"] for c in head.calls] == [50, 51, 52, 53, 54]
    assert all(c["aud_ok"] and c["eye_ok"] and not c["torso"] for c in head.calls)
    assert res["psnr"] == 100.0 and res["lpips"] < 1e-5 and res["lmd"] is None
    # without a trained torso, RAD-NeRF's protocol is the head over the real torso; the whole frame
    # is not synthesized, and without a source video there is no portrait score
    assert res["protocol"] == "head" and res["protocols"]["head"]["psnr"] == 100.0
    assert res["protocols"]["whole"] is None and "no trained torso" in res["notes"]["whole"]
    assert res["protocols"]["portrait"] is None and "source.json" in res["notes"]["portrait"]
    metrics = json.loads((sub.run_dir / "eval" / "metrics.json").read_text())
    assert metrics["psnr"] == res["psnr"] and len(metrics["per_frame"]) == 5
    info = media.probe(sub.run_dir / "eval" / "val.mp4")
    assert (info.width, info.height) == (96, 48) and info.has_audio
    assert (sub.run_dir / "eval" / "val_samples.png").is_file()

    off = evaluate(sub, head=GroundTruthHead(sub.dataset, offset=10), landmarks=False, video=False,
                   out_dir=tmp_path / "off", show=False)
    gt = [head.data.image_uint8(k) for k in range(50, 55)]
    expect = np.mean([10 * math.log10(255**2 / np.mean((np.clip(g.astype(int) + 10, 0, 255) - g) ** 2)) for g in gt])
    assert off["psnr"] == pytest.approx(expect, abs=1e-3)
    assert 27.0 < off["psnr"] < 29.0  # 20 log10(255 / 10) = 28.1 dB, less where pixels clip at 255
    assert off["lpips"] > res["lpips"]
    assert not (tmp_path / "off" / "val.mp4").exists()

    # a transparent head shows what it is rendered over: the real torso layer over the background
    from radnerf_cli.engine.eval_protocols import real_torso_background
    from radnerf_cli.metrics import psnr

    see = evaluate(sub, head=GroundTruthHead(sub.dataset, transparent=True), landmarks=False, video=False,
                   out_dir=tmp_path / "see", show=False)
    bg = head.background
    expect = np.mean([psnr(np.clip(real_torso_background(head.data.torso_uint8(k), bg) * 255 + 0.5, 0, 255)
                           .astype(np.uint8) / 255.0, head.data.image_uint8(k) / 255.0) for k in range(50, 55)])
    assert see["protocols"]["head"]["psnr"] == pytest.approx(expect, abs=1e-4)


def test_evaluate_max_frames_and_missing_faces(workspace, tmp_path):
    sub = Workspace(workspace).subject("syn")
    res = evaluate(sub, head=GroundTruthHead(sub.dataset), max_frames=2, video=False, out_dir=tmp_path, show=False)
    assert res["frames"] == 2 and len(res["per_frame"]) == 2
    assert res["lmd_frames"] + res["lmd_missed"] == 2
    assert res["lmd"] is None or res["lmd"] == 0.0  # identical images: the same landmarks, if any
    # a render without a face: LMD is reported as missing, not as 0
    res = evaluate(sub, head=GroundTruthHead(sub.dataset, blank=True), max_frames=2, video=False,
                   out_dir=tmp_path, show=False)
    assert res["lmd"] is None and res["lmd_frames"] == 0 and res["lmd_missed"] == 2
    assert res["psnr"] < 30
    assert json.loads((tmp_path / "metrics.json").read_text())["lmd"] is None


def test_evaluate_rejects_a_model_of_another_size(workspace):
    sub = Workspace(workspace).subject("syn")
    head = GroundTruthHead(sub.dataset)
    head.H = head.W = 40
    with pytest.raises(WorkspaceError, match="the model renders 40x40"):
        evaluate(sub, head=head, landmarks=False, video=False, show=False)


# ---- the command -------------------------------------------------------------------------------


def _app():
    app = typer.Typer()
    evaluate_cmd.register(app)

    @app.callback()
    def _root():  # keeps `evaluate` a named subcommand
        pass

    return app


def test_cli_untrained_subject_and_bad_options(workspace):
    runner = CliRunner()
    r = runner.invoke(_app(), ["evaluate", "--workspace", str(workspace), "--subject", "syn", "--no-lmd"])
    assert isinstance(r.exception, WorkspaceError) and "not trained yet" in str(r.exception)
    r = runner.invoke(_app(), ["evaluate", "--workspace", str(workspace), "--split", "test"], env={"COLUMNS": "200"})
    assert r.exit_code == 2 and "'test' is not one of 'val', 'train', 'all'" in r.stderr  # a usage error
    r = runner.invoke(_app(), ["evaluate", "--workspace", str(workspace), "--subject", "nobody"])
    assert isinstance(r.exception, WorkspaceError) and "nobody" in str(r.exception)


# ---- a real (tiny) trained run -----------------------------------------------------------------


@pytest.mark.slow
def test_evaluate_a_trained_run(tmp_path):
    """Train a few head steps on the synthetic subject, then `radnerf evaluate` it end to end."""
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.engine.trainer import Trainer
    from radnerf_cli.metrics import psnr
    from radnerf_cli.model.config import load_run_config

    make_synthetic_subject(tmp_path / "subjects" / "syn", n_frames=33, size=32)
    sub = Workspace(tmp_path).subject("syn")
    cfg = load_run_config("fast", overrides=[
        "train.head_iters=12", "train.downscale=1", "train.num_rays=256", "train.ckpt_every=1000",
        "train.preview_every=1000", "train.val_frames=1", "render.grid_size=32", "model.ind_num=64",
    ])
    Trainer(sub, cfg, device="cpu", quiet=True).run(["head"])

    r = CliRunner().invoke(_app(), ["evaluate", "--workspace", str(tmp_path), "--subject", "syn",
                                    "--device", "cpu", "--no-lmd"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    metrics = json.loads((sub.run_dir / "eval" / "metrics.json").read_text())
    assert metrics["frames"] == 3 and metrics["stage"] == "head" and metrics["lmd"] is None
    assert metrics["protocol"] == "head" and metrics["protocols"]["whole"] is None
    assert "PSNR (dB)" in r.output and "LPIPS" in r.output and "head over the real torso" in r.output
    info = media.probe(sub.run_dir / "eval" / "val.mp4")
    assert (info.width, info.height) == (64, 32) and info.has_audio

    # the per-frame PSNR is that of the model's own render of each val frame (pose, audio, eye),
    # over the ground-truth torso since this head has no torso stage
    head = TalkingHead.from_subject(sub, device="cpu")
    data = SubjectData(sub.dataset, "val", feature=head.feature_kind)
    head.reset()
    for i, rec in enumerate(metrics["per_frame"]):
        torso = data.torso_uint8(i).astype(np.float32)
        a = torso[..., 3:] / 255
        bg = np.clip(torso[..., :3] * a + head.background * (1 - a) + 0.5, 0, 255).astype(np.uint8)
        pred = head.render_frame(data.poses_raw[i], audio_window(data.auds, int(data.aud_ids[i])),
                                 float(data.eye[i]), bg=bg)
        gt = data.image_uint8(i)
        assert rec["img_id"] == data.frame_ids[i]
        assert rec["psnr"] == pytest.approx(psnr(pred / 255.0, gt / 255.0), abs=0.05)
        assert rec["head"]["psnr"] == rec["psnr"]
    assert 5.0 < metrics["psnr"] < 60.0 and 0.0 < metrics["lpips"] < 1.0


# ---- protocols ----------------------------------------------------------------------------------


def test_whole_head_and_portrait_protocols_differ_as_they_must(workspace, tmp_path):
    """An imperfect render (every pixel 10 levels too bright) costs the whole frame everywhere, the
    portrait only inside the pasted face: its score is higher, over the real frame at the source size."""
    import shutil

    from portrait_video import write_source_video

    root = tmp_path / "ws"
    shutil.copytree(workspace, root)
    sub = Workspace(root).subject("syn")
    write_source_video(sub.dataset, tmp_path / "orig.mp4", 112, 80, (20, 4, 72, 72))
    off = evaluate(sub, head=GroundTruthHead(sub.dataset, offset=10, torso=True), landmarks=False, show=False)
    p = off["protocols"]
    assert off["protocol"] == "whole" and p["whole"]["size"] == [48, 48] and p["portrait"]["size"] == [112, 80]
    assert 27.0 < p["whole"]["psnr"] < 29.0 and p["head"]["psnr"] == pytest.approx(p["whole"]["psnr"])
    assert p["portrait"]["psnr"] > p["whole"]["psnr"] + 5
    # LPIPS barely sees a uniform brightness offset; the portrait's comes from pasting at another size
    assert 0 <= p["whole"]["lpips"] < 0.1 and 0 <= p["portrait"]["lpips"] < 0.1
    assert p["portrait"]["lpips"] != p["whole"]["lpips"]
    rec = off["per_frame"][0]
    assert rec["psnr"] == rec["whole"]["psnr"] and rec["portrait"]["psnr"] != rec["psnr"]
    assert (media.probe(off["video_portrait"]).width, media.probe(off["video_portrait"]).height) == (224, 80)
    assert (media.probe(off["video"]).width, media.probe(off["video"]).height) == (96, 48)
    # the same render without the offset: the synthesized frame is exact; the portrait differs
    # from the real frame only by resampling the face at the model's size
    ok = evaluate(sub, head=GroundTruthHead(sub.dataset, torso=True), landmarks=False, video=False,
                  out_dir=tmp_path / "ok", show=False)["protocols"]
    assert ok["whole"]["psnr"] == 100.0 and 30.0 < ok["portrait"]["psnr"] < 100.0
    # --no-portrait and a moved source video: the portrait is left out, with the reason
    res = evaluate(sub, head=GroundTruthHead(sub.dataset, torso=True), landmarks=False, video=False,
                   out_dir=tmp_path / "np", show=False, portrait=False)
    assert res["protocols"]["portrait"] is None and "--no-portrait" in res["notes"]["portrait"]
    (tmp_path / "orig.mp4").rename(tmp_path / "moved.mp4")
    res = evaluate(sub, head=GroundTruthHead(sub.dataset, torso=True), landmarks=False, video=False,
                   out_dir=tmp_path / "mv", show=False)
    assert res["protocols"]["portrait"] is None and "missing" in res["notes"]["portrait"]
    res = evaluate(sub, head=GroundTruthHead(sub.dataset, torso=True), landmarks=False, video=False,
                   out_dir=tmp_path / "mv", show=False, source=tmp_path / "moved.mp4")
    assert res["protocols"]["portrait"]["psnr"] > 30

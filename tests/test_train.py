"""Training on the synthetic subject: overfitting, torso, exact resume, interrupts, NaN, CLI errors."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from radnerf_cli.cli import app
from radnerf_cli.engine import checkpoint
from radnerf_cli.engine.inference import TalkingHead
from radnerf_cli.engine.trainer import Trainer
from radnerf_cli.errors import ConfigError, TrainingError, WorkspaceError
from radnerf_cli.model.config import load_run_config
from radnerf_cli.workspace import Workspace

sys.path.insert(0, str(Path(__file__).parent))
from small_model import SMALL_MODEL  # noqa: E402
from synthetic_scene import make_synthetic_subject  # noqa: E402

SMALL = [*SMALL_MODEL, "train.ckpt_every=25"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_synthetic_subject(tmp_path_factory.mktemp("data") / "syn", n_frames=24, size=32, feature_dim=16)


def _subject(tmp_path: Path, dataset: Path, name: str = "syn"):
    ws = tmp_path / "ws"
    shutil.copytree(dataset, ws / "subjects" / name)
    return Workspace(ws).find_subject(name)


def _cfg(*extra: str):
    return load_run_config("fast", None, [*SMALL, *extra])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) + 1e-12))


def test_head_overfits_and_talking_head_renders(tmp_path, dataset):
    """The head stage must beat the trivial model by a wide margin on the frames it trains on.

    The trivial model renders no head: the ground-truth torso over the background (where every
    training ray starts). The head covers about a third of the image, so a learned head adds
    several dB over that; 6 dB is well above run-to-run noise and well below what 200 steps reach.
    """
    sub = _subject(tmp_path, dataset)
    tr = Trainer(sub, _cfg("train.head_iters=200"), "cpu", quiet=True)
    (rep,) = tr.run(["head"])
    assert rep.step == 200 and np.isfinite(rep.loss)
    data = tr.data
    base, trained = [], []
    for i in range(0, len(data), 6):
        fr = data.frame(i)
        bg = fr["bg"]
        t = fr["torso_image"]
        trivial = t[..., :3] * t[..., 3:] + bg * (1 - t[..., 3:])
        img, _ = tr._render_eval(data, i, "head")
        base.append(_psnr(trivial.numpy(), fr["image"].numpy()))
        trained.append(_psnr(img, fr["image"].numpy()))
    assert np.mean(trained) > np.mean(base) + 6.0, (trained, base)
    for name in ("config.yaml", "metrics.json", "curves.png", "checkpoints/head.safetensors"):
        assert (sub.run_dir / name).is_file(), name
    assert list((sub.run_dir / "previews").glob("head_*.png"))

    # TalkingHead: the same weights render without the dataset, and round-trip through state_and_meta
    th = TalkingHead.from_subject(sub)
    assert (th.H, th.W, th.feature_dim, th.feature_kind) == (32, 32, 16, "mel")
    fr = data.frame(0)
    a = th.render_frame(data.poses_raw[0], fr["aud"], None)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    tensors, meta = th.state_and_meta()
    th2 = TalkingHead.from_state(tensors, meta)
    assert np.array_equal(th2.render_frame(data.poses_raw[0], fr["aud"], None), a)
    assert th.density(torch.zeros(4, 3)).shape == (4,)


def test_torso_stage_runs_and_improves(tmp_path, dataset):
    sub = _subject(tmp_path, dataset)
    tr = Trainer(sub, _cfg("train.head_iters=10", "train.lips_iters=4", "train.torso_iters=200"), "cpu", quiet=True)
    reps = tr.run(["head", "lips", "torso"])
    torso = reps[-1]
    h = tr.history  # the torso stage's loss/PSNR every 5 steps
    assert torso.stage == "torso" and torso.step == 200
    assert np.mean(h["psnr"][-3:]) > np.mean(h["psnr"][:2]) + 3.0, h["psnr"]
    # the head is frozen in the torso stage: its weights equal the lips stage's EMA weights
    lips_t, _ = checkpoint.load(sub.checkpoint_dir / "lips.safetensors")
    torso_t, _ = checkpoint.load(sub.checkpoint_dir / "torso.safetensors")
    key = "head.sigma_net.net.0.weight"
    assert torch.equal(lips_t[f"ema/{key}"], torso_t[f"model/{key}"])
    th = TalkingHead.from_subject(sub)
    assert th.torso_trained and th.stages == ["head", "lips", "torso"]


def test_torso_on_the_body_pose_trains_renders_and_exports(tmp_path, dataset):
    """model.torso_body: the checkpoint carries the training frames' body track, render follows it,
    a pose off the track takes the nearest entry's, and a bundle keeps it."""
    from radnerf_cli.engine.export import load_bundle, save_bundle

    sub = _subject(tmp_path, dataset)
    tr = Trainer(sub, _cfg("train.head_iters=10", "train.lips_iters=4", "train.torso_iters=120",
                           "model.torso_body=true"), "cpu", quiet=True)
    tr.run(["head", "lips", "torso"])
    tensors, _ = checkpoint.load(sub.checkpoint_dir / "torso.safetensors")
    body = tensors["data/body_track"]
    assert body.shape == (len(tr.data), 18) and torch.allclose(body, tr.data.body_pose())
    th = TalkingHead.from_subject(sub)
    assert th.body_track is not None and th.model.torso.body_dim == 18
    aud = torch.zeros(8, 16, th.feature_dim)
    pose = th.pose_track[3]
    own = th.render_layers(pose, aud, None, torso=True, body=th.body_track[3])
    th.reset()
    nearest = th.render_layers(pose, aud, None, torso=True)  # pose 3 is its own nearest entry
    from radnerf_cli.data import nerf_matrix_to_ngp

    assert th.nearest_track_entry(torch.as_tensor(nerf_matrix_to_ngp(pose, th.scale, th.offset))) == 3
    assert np.allclose(own["torso_alpha"], nearest["torso_alpha"])
    far = np.abs(th.body_track - th.body_track[3]).sum(1).argmax()
    th.reset()
    other = th.render_layers(pose, aud, None, torso=True, body=th.body_track[far])
    assert not np.allclose(own["torso_alpha"], other["torso_alpha"], atol=1e-4)
    bundle = save_bundle(th, tmp_path / "b.radnerf")
    back = load_bundle(bundle, device="cpu")
    assert np.array_equal(back.body_track, th.body_track)
    # a body-conditioned torso without its track is refused with one line
    del tensors["data/body_track"]
    from radnerf_cli.engine.inference import inference_state

    with pytest.raises(WorkspaceError, match="no body track"):
        TalkingHead.checked(inference_state(tensors), checkpoint.prefixed(tensors, "data"),
                            checkpoint.load(sub.checkpoint_dir / "torso.safetensors")[1]["model_meta"])


def test_resume_is_exact(tmp_path, dataset):
    """N + N steps with a restart give the same weights as 2N steps in one go."""
    cfg = _cfg("train.head_iters=40")
    a = _subject(tmp_path / "a", dataset)
    Trainer(a, cfg, "cpu", quiet=True).run(["head"])
    b = _subject(tmp_path / "b", dataset)
    (r1,) = Trainer(b, cfg, "cpu", quiet=True).run(["head"], max_steps=20)
    assert r1.step == 20
    (r2,) = Trainer(b, cfg, "cpu", quiet=True).run(["head"])
    assert (r2.start_step, r2.step) == (20, 40)
    ta, ma = checkpoint.load(a.checkpoint_dir / "head.safetensors")
    tb, mb = checkpoint.load(b.checkpoint_dir / "head.safetensors")
    assert ta.keys() == tb.keys() and ma["step"] == mb["step"] == 40
    for k in ta:
        if ta[k].is_floating_point():
            assert torch.allclose(ta[k], tb[k], atol=1e-6, rtol=0), k
        else:
            assert torch.equal(ta[k], tb[k]), k
    # a finished stage is skipped on the next run
    (r3,) = Trainer(b, cfg, "cpu", quiet=True).run(["head"])
    assert r3.skipped
    # a resume with other model settings is refused and leaves the run's config as it was
    saved = (b.run_dir / "config.yaml").read_text()
    with pytest.raises(ConfigError, match="different model settings"):
        Trainer(b, _cfg("train.head_iters=80", "model.hidden_dim=32"), "cpu", quiet=True).run(["head"])
    assert (b.run_dir / "config.yaml").read_text() == saved


def test_ctrl_c_saves_then_stops(tmp_path, dataset, monkeypatch):
    sub = _subject(tmp_path, dataset)
    tr = Trainer(sub, _cfg("train.head_iters=50"), "cpu", quiet=True)
    orig = Trainer._ema_update

    def ema_then_interrupt(self, n):
        orig(self, n)
        if n == 7:
            os.kill(os.getpid(), signal.SIGINT)  # delivered mid-loop; handled at the end of the step

    monkeypatch.setattr(Trainer, "_ema_update", ema_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        tr.run(["head"])
    _, meta = checkpoint.load(sub.checkpoint_dir / "head.safetensors")
    assert meta["step"] == 7


def test_nan_loss_stops_and_keeps_the_last_checkpoint(tmp_path, dataset, monkeypatch):
    sub = _subject(tmp_path, dataset)
    tr = Trainer(sub, _cfg("train.head_iters=60", "train.ckpt_every=10"), "cpu", quiet=True)
    orig = Trainer._head_loss

    def poisoned(self, stage, step, iters):
        loss, mse, n, s = orig(self, stage, step, iters)
        return (loss * float("nan") if step >= 13 else loss), mse, n, s

    monkeypatch.setattr(Trainer, "_head_loss", poisoned)
    with pytest.raises(TrainingError, match="nan at step 14"):
        tr.run(["head"])
    _, meta = checkpoint.load(sub.checkpoint_dir / "head.safetensors")
    assert meta["step"] == 10


def test_radnerf_format_folder_with_wav2vec_features(tmp_path):
    """A folder as RAD-NeRF's scripts make it: aud_eo.npy (C = 44) and no features of ours."""
    root = make_synthetic_subject(tmp_path / "ws" / "subjects" / "obama", n_frames=16, size=32, feature_dim=44)
    (root / "aud_mel.npy").rename(root / "aud_eo.npy")
    sub = Workspace(tmp_path / "ws").find_subject("obama")
    (rep,) = Trainer(sub, _cfg("train.head_iters=3"), "cpu", quiet=True).run(["head"])
    assert rep.step == 3
    th = TalkingHead.from_subject(sub)
    assert (th.feature_kind, th.feature_dim) == ("eo", 44)
    assert th.render_frame(th.pose_track[0], torch.zeros(8, 16, 44), 0.3).shape == (32, 32, 3)


def test_cli_trains_and_reports_errors(tmp_path, dataset):
    runner = CliRunner()
    sub = _subject(tmp_path, dataset)
    ws = str(sub.workspace)
    r = runner.invoke(app, ["train", "-w", ws, "--subject", "syn", "--stage", "head", "--iters", "3", *SMALL])
    assert r.exit_code == 0, r.output
    assert (sub.checkpoint_dir / "head.safetensors").is_file()

    r = runner.invoke(app, ["train", "-w", ws, "--subject", "syn", "train.bogus_key=1"])
    assert isinstance(r.exception, ConfigError) and "train.bogus_key" in str(r.exception)

    (sub.workspace / "subjects" / "empty").mkdir()
    r = runner.invoke(app, ["train", "-w", ws, "--subject", "empty"])
    assert isinstance(r.exception, WorkspaceError) and "no dataset" in str(r.exception)

    r = runner.invoke(app, ["train", "-w", ws, "--subject", "syn", "--stage", "neck"], env={"COLUMNS": "200"})
    assert r.exit_code == 2 and "'neck' is not one of 'head', 'lips', 'torso', 'all'" in r.stderr

    with pytest.raises(WorkspaceError, match="not trained yet"):
        TalkingHead.from_subject(Workspace(ws).subject("empty"))

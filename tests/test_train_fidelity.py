"""Where training follows RAD-NeRF exactly: the lips stage's schedule, the ambient mask, the clamp;
and the mouth-weighted ray sampling and the mouth path's stage wiring."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from radnerf_cli import validate
from radnerf_cli.data import SubjectData
from radnerf_cli.engine import checkpoint, losses, mouth_calibrate, mouth_train, sampling
from radnerf_cli.engine.inference import TalkingHead, stage_checkpoint
from radnerf_cli.engine.trainer import Trainer
from radnerf_cli.errors import ConfigError
from radnerf_cli.model.config import load_run_config
from radnerf_cli.workspace import Workspace
from small_model import SMALL_MODEL
from synthetic_scene import make_synthetic_subject

SMALL = [*SMALL_MODEL, "train.ckpt_every=1000"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_synthetic_subject(tmp_path_factory.mktemp("d") / "syn", n_frames=24, size=32, feature_dim=16)


def _subject(tmp_path, dataset):
    shutil.copytree(dataset, tmp_path / "ws" / "subjects" / "syn")
    return Workspace(tmp_path / "ws").find_subject("syn")


def test_lips_stage_continues_the_head_schedule_and_adam_state(tmp_path, dataset):
    sub = _subject(tmp_path, dataset)
    cfg = load_run_config("fast", None, [*SMALL, "train.head_iters=20", "train.lips_iters=3"])
    tr = Trainer(sub, cfg, "cpu", quiet=True)
    tr.run(["head"])
    head_lr = [g["initial_lr"] * cfg.train.lr_final ** (19 / 20) for g in tr.opt.param_groups]  # its last step
    tr.run(["lips"])
    # the lips stage's last step (2) runs at lr_final ** ((20 + 2) / 20) of the base rate: below the head's end
    for g, h in zip(tr.opt.param_groups, head_lr, strict=True):
        assert g["lr"] == pytest.approx(g["initial_lr"] * cfg.train.lr_final ** (22 / 20))
        assert g["lr"] < h
    steps = {int(s["step"]) for s in tr.opt.state.values() if "step" in s}
    assert steps == {23}  # Adam's step count went on from the head's 20


def test_lips_restart_schedule_is_still_available(tmp_path, dataset):
    sub = _subject(tmp_path, dataset)
    cfg = load_run_config("fast", None, [*SMALL, "train.head_iters=10", "train.lips_iters=2", "train.lips_schedule=restart"])
    tr = Trainer(sub, cfg, "cpu", quiet=True)
    tr.run(["head", "lips"])
    g = tr.opt.param_groups[0]
    assert g["lr"] == pytest.approx(g["initial_lr"] * cfg.train.lips_lr_final ** (1 / 2))


def test_ambient_is_penalised_outside_the_lower_face_rectangle(dataset):
    data = SubjectData(dataset, "train", preload=False)
    gen = torch.Generator().manual_seed(0)
    b = sampling.head_batch(data, gen, 4096, False, torch.device("cpu"))
    xmin, xmax, ymin, ymax = b.frame["face_rect"].tolist()
    inds = torch.arange(data.H * data.W)
    inside = sampling.in_rect(inds, (xmin, xmax, ymin, ymax), data.W).view(data.H, data.W)
    assert inside.sum() == (xmax - xmin) * (ymax - ymin)
    assert inside[xmin, ymin] and inside[xmax - 1, ymax - 1]
    assert not inside[:xmin].any() and not inside[xmax:].any() and not inside[:, ymax:].any()
    assert 0 < (~b.outside).float().mean() < 0.5  # the lower face is a small part of the frame


def test_mouth_share_of_rays(dataset):
    data = SubjectData(dataset, "train", preload=False)
    gen = torch.Generator().manual_seed(1)
    uniform = sampling.head_batch(data, gen, 4000, False, torch.device("cpu"))
    gen = torch.Generator().manual_seed(1)
    weighted = sampling.head_batch(data, gen, 4000, False, torch.device("cpu"), mouth_share=0.5)
    assert weighted.n == 4000
    assert (~weighted.outside).float().mean() >= 0.5
    assert (~weighted.outside).float().mean() > (~uniform.outside).float().mean() + 0.3


def test_mouth_rays_in_the_lips_square(dataset):
    data = SubjectData(dataset, "train", preload=False)
    gen = torch.Generator().manual_seed(2)
    b = sampling.head_batch(data, gen, 4000, False, torch.device("cpu"), mouth_share=0.4, mouth_rect="lips")
    lips = sampling.in_rect(b.inds, b.frame["lips_rect"].tolist(), data.W)
    assert b.n == 4000 and lips.float().mean() >= 0.4  # the drawn share, plus what uniform rays add
    with pytest.raises(ConfigError, match="train.mouth_rect"):
        validate.run_config(load_run_config("fast", None, ["train.mouth_rect=chin"]))
    with pytest.raises(ConfigError, match="train.mouth_render_gain_drive"):  # refused before any training
        validate.run_config(load_run_config("fast", None, ["train.mouth_render_gain_drive=audio"]))
    with pytest.raises(ConfigError, match="train.mouth_render_gain_max"):
        validate.run_config(load_run_config("fast", None, ["train.mouth_render_gain_max=0.5"]))


def test_training_predictions_are_clamped():
    tc = load_run_config("fast").train
    out = {"image": torch.full((4, 3), 1.5), "weights_sum": torch.ones(4), "ambient": torch.zeros(4)}
    gt = torch.ones(4, 3)
    loss, mse, pred = losses.head_loss(tc, out, gt, torch.zeros(4, 3), torch.zeros(4, dtype=torch.bool), 0.0)
    assert float(mse) == 0.0 and float(pred.max()) == 1.0


def test_mouth_path_trains_resumes_and_renders(tmp_path, dataset):
    sub = _subject(tmp_path, dataset)
    over = [*SMALL, "model.audio_path=mouth", "train.mouth_fit_steps=20", "train.mouth_rays=0.25",
            "train.head_iters=12", "train.lips_iters=2", "train.ckpt_every=6"]
    tr = Trainer(sub, load_run_config("fast", None, over), "cpu", quiet=True)
    tr.run(["head"], max_steps=6)  # stop mid-stage, resume: the predictor's weights come back
    tr2 = Trainer(sub, load_run_config("fast", None, over), "cpu", quiet=True)
    tr2.run(["head", "lips"])
    m = (sub.run_dir / "metrics.json").read_text()
    assert '"mouth_fit"' in m and '"mouth_render_gain"' in m
    # no face for the face mesh in a 32-px synthetic head: nothing measured, the gain left at 1
    rep = mouth_calibrate.stored(checkpoint.load(stage_checkpoint(sub, "lips"))[1])
    assert rep["frames"] < 2 and rep["gain"] == 1.0
    th = TalkingHead.from_subject(sub)
    fr = tr2.data.frame(0)
    a = th.render_frame(tr2.data.poses_raw[0], fr["aud"], None)
    assert a.shape == (32, 32, 3)
    assert np.isfinite(a).all()


def test_render_gain_rule():
    real = np.array([0.0, 1.0, 2.0, 3.0, np.nan])
    assert mouth_calibrate.gain_rule(real * 0.5, real, 3.0)[3:] == pytest.approx((0.5, 2.0))
    assert mouth_calibrate.gain_rule(real * 0.25, real, 2.0)[4] == 2.0  # clipped to the largest gain
    assert mouth_calibrate.gain_rule(real * 1.5, real, 2.0)[4] == 1.0  # a wider mouth is never narrowed
    assert mouth_calibrate.gain_rule(np.full(5, np.nan), real, 2.0) == (0, 0.0, 0.0, 1.0, 1.0)
    assert mouth_calibrate.spaced(100, 5) == [0, 25, 50, 74, 99] and mouth_calibrate.spaced(3, 5) == [0, 1, 2]


@pytest.mark.parametrize("rule", ["opening", "all"])
def test_render_gain_is_stored_once_and_carried_to_the_torso(tmp_path, dataset, monkeypatch, rule):
    """A field that opens the mouth half as wide as the person gets its predicted codes' deviation
    doubled (the opening component's, or with train.mouth_gain=all every component's), in the lips
    checkpoint and every later one; a second run leaves it as it is."""
    rng = np.random.default_rng(0)
    monkeypatch.setattr(mouth_calibrate, "openings", lambda r, g: (lambda x: (0.5 * x, x))(rng.normal(size=len(g))))
    sub = _subject(tmp_path, dataset)
    over = [*SMALL, "model.audio_path=mouth", "train.mouth_fit_steps=20", "train.head_iters=4",
            "train.lips_iters=2", "train.torso_iters=2", "train.mouth_render_gain_max=3", f"train.mouth_gain={rule}"]
    Trainer(sub, load_run_config("fast", None, over), "cpu", quiet=True).run(["head", "lips"])

    def gain(stage):
        t, meta = checkpoint.load(stage_checkpoint(sub, stage))
        return t[mouth_calibrate.GAIN_KEY].clone(), mouth_calibrate.stored(meta)

    g_head, none = gain("head")
    g_lips, rep = gain("lips")
    assert none is None and rep["ratio"] == pytest.approx(0.5) and rep["gain"] == pytest.approx(2.0)
    if rule == "all":
        assert rep["component"] is None and torch.allclose(g_lips, 2 * g_head)
    else:
        k = mouth_train.opening_component(SubjectData(sub.dataset, "train", preload=False), g_head.numel())
        assert rep["component"] == k and torch.allclose(g_lips[k], 2 * g_head[k])
        keep = torch.arange(g_head.numel()) != k
        assert torch.allclose(g_lips[keep], g_head[keep])
    Trainer(sub, load_run_config("fast", None, over), "cpu", quiet=True).run(["head", "lips", "torso"])
    assert torch.allclose(gain("lips")[0], g_lips)  # not applied twice
    assert torch.allclose(gain("torso")[0], g_lips)
    assert '"mouth_render_gain"' in (sub.run_dir / "metrics.json").read_text()

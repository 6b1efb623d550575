"""The mouth bottleneck: codes from landmarks, the audio -> code predictor, and the field trained on codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radnerf_cli.data import SubjectData
from radnerf_cli.data.mouth_code import MouthBasis, aligned_mouth, mouth_codes
from radnerf_cli.engine.mouth_fit import MouthFitConfig, fit_predictor, windows
from radnerf_cli.model.mouth import MouthAudioEncoder, MouthPredictor
from synthetic_scene import make_synthetic_subject, openness

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return make_synthetic_subject(tmp_path_factory.mktemp("m") / "syn", n_frames=220, size=48, feature_dim=16)


def _corr(a, b):
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])


def test_alignment_removes_head_motion():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(68, 2)) * 10 + 50
    frames = []
    for k in range(20):  # the same face, rotated, scaled and moved
        a = np.radians(k - 10)
        R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        frames.append((1 + 0.02 * k) * base @ R.T + k)
    x = aligned_mouth(np.stack(frames))
    assert np.abs(x - x[0]).max() < 1e-6


def test_first_component_is_the_opening(syn):
    data = SubjectData(syn, "all", preload=False)
    basis, codes, _ = mouth_codes(data.lms68, 4)
    assert isinstance(basis, MouthBasis) and codes.shape == (len(data), 4)
    np.testing.assert_allclose(codes.std(0), 1.0, atol=1e-3)
    o = openness(np.asarray(data.aud_ids) / 25.0)
    assert _corr(codes[:, 0], o) > 0.95  # grows as the mouth opens (sign convention)
    # the basis itself says which component parts the lips: here the only motion is the opening
    w = basis.opening_weights()
    assert basis.opening_component() == 0 and w[0] > 0 and abs(w[0]) > 10 * np.abs(w[1:]).max()


def test_opening_component_is_the_one_that_parts_the_lips():
    """A mouth whose biggest motion is a sideways stretch and whose lips part less: the opening is
    component 1, found from the basis (how far a unit of each component moves point 66 from 62)."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(68, 2)) * 10 + 50
    stretch, part = rng.normal(size=200) * 3.0, rng.normal(size=200)
    lms = np.repeat(base[None], 200, 0)
    lms[:, 48, 0] -= stretch
    lms[:, 54, 0] += stretch  # the mouth corners move apart: the largest motion, the lips stay shut
    lms[:, 66, 1] += part
    lms[:, 57, 1] += part  # the lower lip drops: the opening
    basis, codes, _ = mouth_codes(lms, 2)
    assert basis.opening_component() == 1
    assert abs(_corr(codes[:, 1], part)) > 0.95 and abs(_corr(codes[:, 0], stretch)) > 0.95


def test_calibration_gain_scales_up_only_the_opening():
    from radnerf_cli.engine.mouth_fit import calibration_gain

    ratio, corr = [0.5, 0.4, 0.4, 0.5], [0.8, 0.3, -0.2, 0.05]
    # every component followed (corr > 0.1) is brought up to its tracked spread (1 to 3), the rest stay 1
    assert calibration_gain(ratio, corr) == pytest.approx([2.0, 2.5, 1.0, 1.0])
    # the opening alone: the others get their least-squares scale corr / ratio, within [0, 1]
    assert calibration_gain(ratio, corr, opening=0) == pytest.approx([2.0, 0.75, 0.0, 0.1])
    assert calibration_gain(ratio, corr, opening=1) == pytest.approx([1.0, 2.5, 0.0, 0.1])
    assert calibration_gain([0.2], [0.9], opening=0) == pytest.approx([3.0])  # at most 3


def test_predictor_learns_codes_of_unheard_audio(syn):
    train, val = SubjectData(syn, "train", preload=False), SubjectData(syn, "val", preload=False)
    basis, codes, rest = mouth_codes(train.lms68, 2, {"val": val.lms68})
    p = MouthPredictor(train.feature_dim, 2)
    rep = fit_predictor(p, train.auds, train.aud_ids, torch.from_numpy(codes), MouthFitConfig(steps=300, batch=32))
    assert rep.holdout_frames > 0 and rep.val_corr[0] > 0.8
    with torch.no_grad():
        pred = p(windows(val.auds, val.aud_ids)).numpy()
    assert _corr(pred[:, 0], rest["val"][:, 0]) > 0.8  # the validation split was never seen
    assert 0.6 < pred[:, 0].std() / rest["val"][:, 0].std() < 1.6


@pytest.mark.parametrize("rows", [16, 4])
def test_ridge_predictor_learns_codes_of_unheard_audio_and_is_deterministic(syn, rows):
    from radnerf_cli.engine.mouth_fit import calibration_gain
    from radnerf_cli.engine.mouth_ridge import fit_ridge
    from radnerf_cli.model.mouth import MouthRidge

    train, val = SubjectData(syn, "train", preload=False), SubjectData(syn, "val", preload=False)
    _, codes, rest = mouth_codes(train.lms68, 2, {"val": val.lms68})
    p1 = MouthRidge(train.feature_dim, 2, rows=rows)
    rep1 = fit_ridge(p1, train.auds, train.aud_ids, torch.from_numpy(codes), opening=0)
    assert rep1.opening == 0 and rep1.gain == pytest.approx(calibration_gain(rep1.val_std_ratio, rep1.val_corr, 0))
    torch.testing.assert_close(p1.gain, torch.tensor(rep1.gain, dtype=torch.float32))
    fits = []
    for _ in range(2):
        p = MouthRidge(train.feature_dim, 2, rows=rows)
        rep = fit_ridge(p, train.auds, train.aud_ids, torch.from_numpy(codes))
        with torch.no_grad():
            fits.append(p(windows(val.auds, val.aud_ids)).numpy())
    assert rep.alpha in (1.0, 3.0, 10.0, 30.0, 100.0) and rep.holdout_frames > 0 and rep.val_corr[0] > 0.8
    assert rep.opening is None and rep.gain == pytest.approx(calibration_gain(rep.val_std_ratio, rep.val_corr))
    np.testing.assert_array_equal(fits[0], fits[1])  # closed form: no seed to depend on
    pred = fits[0]
    assert _corr(pred[:, 0], rest["val"][:, 0]) > 0.8  # the validation split was never seen
    assert 0.6 < pred[:, 0].std() / rest["val"][:, 0].std() < 1.6
    # a model built with the ridge predictor carries it in its state and answers as the fitted one
    enc = MouthAudioEncoder(train.feature_dim, 2, 32, kind="ridge", window_rows=rows)
    enc.predictor.load_state_dict(p.state_dict())
    w = windows(val.auds, val.aud_ids[:1])[0]
    torch.testing.assert_close(enc.code(w), torch.from_numpy(pred[:1]))
    assert not list(enc.predictor.parameters())  # buffers only: nothing for a training stage to move
    with pytest.raises(ValueError, match="net' or 'ridge"):
        MouthAudioEncoder(16, 2, 32, kind="linear")


def test_ridge_pools_only_the_centre_rows_of_each_window():
    from radnerf_cli.model.mouth import MouthRidge

    x = torch.randn(2, 8, 16, 5)
    whole, centre = MouthRidge(5, 2, rows=16), MouthRidge(5, 2, rows=4)
    torch.testing.assert_close(whole.pooled(x), x.mean(2).reshape(2, -1))
    torch.testing.assert_close(centre.pooled(x), x[:, :, 6:10].mean(2).reshape(2, -1))
    y = x.clone()
    y[:, :, :6] += 3.0  # the outer rows, 160 ms to 40 ms before each frame, do not reach the centre pool
    torch.testing.assert_close(centre.pooled(y), centre.pooled(x))
    assert not torch.allclose(whole.pooled(y), whole.pooled(x))
    with pytest.raises(ValueError, match="rows must be 1..16"):
        MouthRidge(5, 2, rows=0)


def test_encoder_forward_matches_batched_predictor():
    enc = MouthAudioEncoder(16, 3, 32)
    x = torch.randn(8, 16, 16)
    x[:2] = 0  # the window runs past the start of the audio
    one = enc.code(x)
    batch = enc.code(torch.stack([x, x]))
    torch.testing.assert_close(one.expand(2, -1), batch)
    assert enc(x).shape == (1, 32) and enc.neutral().shape == (1, 32)


def _inner_mouth_darkness(img: np.ndarray, lms: np.ndarray) -> float:
    """How dark the inner-lip box is (255 - mean grey): the synthetic head's mouth opening."""
    y0, y1 = int(lms[60:68, 1].min()) - 1, int(lms[60:68, 1].max()) + 2
    x0, x1 = int(lms[60:68, 0].min()), int(lms[60:68, 0].max()) + 1
    return 255.0 - float(img[max(y0, 0) : y1, max(x0, 0) : x1].astype(np.float64).mean())


@pytest.mark.slow
def test_trained_synthetic_mouth_follows_heldout_audio(tmp_path, syn):
    """Train the mouth path on the synthetic head; on the held-out split the rendered mouth opens as
    much as the real one and in time with its audio (the lip-sync measure's spread and sync)."""
    import shutil

    from radnerf_cli import media
    from radnerf_cli.data import audio_window
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.engine.trainer import Trainer
    from radnerf_cli.metrics import lipsync as L
    from radnerf_cli.model.config import load_run_config
    from radnerf_cli.workspace import Workspace

    ws = tmp_path / "ws"
    shutil.copytree(syn, ws / "subjects" / "syn")
    sub = Workspace(ws).subject("syn")
    cfg = load_run_config("full", overrides=[
        "model.num_levels=8", "model.log2_hashmap_size=12", "model.desired_resolution=256",
        "model.ambient_resolution=64", "model.ind_num=256", "render.grid_size=32", "train.num_rays=512",
        "train.ckpt_every=100000", "train.preview_every=100000", "train.val_frames=1",
        "model.audio_path=mouth", "train.mouth_rays=0.25", "train.mouth_fit_steps=300",
        "train.head_iters=1200", "train.lips_iters=50",
    ])
    Trainer(sub, cfg, quiet=True).run(["head", "lips"])
    head = TalkingHead.from_subject(sub, stage="lips")
    val = SubjectData(sub.dataset, "val", preload=False)
    pred, real = [], []
    for i in range(len(val)):
        img = head.render_frame(val.poses_raw[i], audio_window(val.auds, int(val.aud_ids[i])), float(val.eye[i]),
                                torso=False)
        pred.append(_inner_mouth_darkness(img, val.lms68[i]))
        real.append(_inner_mouth_darkness(val.image_uint8(i), val.lms68[i]))
    pred, real = np.array(pred), np.array(real)
    env = L.speech_envelope(media.load_audio(sub.dataset / "aud.wav"), int(val.aud_ids.max()) + 1)
    env = env[np.asarray(val.aud_ids)]
    rep, ref = L.report(pred, env, real.std()), L.sync(real, env)
    assert rep["amplitude_ratio"] > 0.5, rep
    assert rep["sync"]["corr"] > 0.5 * ref["corr"] > 0, (rep["sync"], ref)
    # the field answers the mouth code itself: the most open training frame's tracked code opens the
    # mouth more than the most closed one's, at the same pose and with no audio in the loop
    train = SubjectData(sub.dataset, "train", preload=False)
    _, codes, _ = mouth_codes(train.lms68, head.cfg.model.mouth_dim)
    open_code, shut_code = codes[np.argmax(codes[:, 0])], codes[np.argmin(codes[:, 0])]

    def darkness(code):
        lay = head.render_layers(val.poses_raw[0], None, float(val.eye[0]), mouth_code=code)
        img = (lay["head"] + (1 - lay["weights"])[:, None] * val.bg.numpy().reshape(-1, 3)) * 255
        return _inner_mouth_darkness(img.reshape(val.H, val.W, 3), val.lms68[0])

    assert darkness(open_code) > darkness(shut_code) + 5, (darkness(open_code), darkness(shut_code))
    with pytest.raises(ValueError, match="components"):
        head.render_layers(val.poses_raw[0], None, None, mouth_code=open_code[:1])

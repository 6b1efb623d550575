"""Portrait mode: the real frames at their size with only the face replaced, its mask, bundles, bad input."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from portrait_video import write_source_video
from radnerf_cli import media
from radnerf_cli.engine import portrait
from radnerf_cli.engine.portrait_frames import FrameReader
from radnerf_cli.engine.portrait_mask import MaskConfig, blend_mask, face_region
from radnerf_cli.preprocess.source_map import read_source_map
from test_render import _cli, _tone, stream_stats, trained_workspace

SRC_W, SRC_H = 160, 144  # the "original" video: larger than the crop, not square
CROP = (20, 8, 128, 128)  # the dataset's 64x64 frames are this box, downscaled 2x


@pytest.fixture
def ws(tmp_path):
    """The trained synthetic workspace with a source video and its source.json for subject 'syn'."""
    dst = tmp_path / "ws"
    shutil.copytree(trained_workspace(), dst)
    video = tmp_path / "original.mp4"
    write_source_video(dst / "subjects" / "syn", video, SRC_W, SRC_H, CROP)
    wav = tmp_path / "speech.wav"
    media.write_wav(wav, _tone(1.6))  # 40 frames: longer than the 28-frame track (played back and forth)
    return dst, video, wav


def test_frame_reader_serves_any_order_from_one_forward_decode(tmp_path):
    video = tmp_path / "v.mp4"
    with media.VideoWriter(video, 32, 32, crf=0) as vw:
        for i in range(12):
            vw.write(np.full((32, 32, 3), 20 * i, np.uint8))
    order = [0, 1, 2, 3, 2, 1, 0, 1, 5, 11, 5]
    for budget in (1 << 30, 0):  # raw frames, then JPEG-held frames
        r = FrameReader(video, 25.0, order, size=(32, 32), max_raw_bytes=budget)
        got = [float(r.next().mean()) for _ in order]
        r.close()
        assert np.allclose(got, [20 * i for i in order], atol=2.5), got


def test_mask_is_feathered_and_follows_the_jaw(tmp_path):
    from synthetic_scene import make_synthetic_subject

    make_synthetic_subject(tmp_path / "s", n_frames=5, size=64, feature_dim=8)
    lms = np.loadtxt(tmp_path / "s" / "ori_imgs" / "3.lms") * 4  # at 256 px
    H = W = 256
    reg = face_region(lms, H, W, MaskConfig())
    m = blend_mask(reg, np.zeros((H, W), np.float32))
    assert m[reg.face].min() > 0.99  # the face itself is replaced
    assert (m[~reg.render] == 0).all()  # nothing outside the rendered rays
    soft = (m > 0.02) & (m < 0.98)
    assert soft.sum() > 0.3 * reg.face.sum() ** 0.5 * 4  # a band of partial values all around
    step = max(np.abs(np.diff(m, axis=0)).max(), np.abs(np.diff(m, axis=1)).max())
    assert step < 0.2, f"hard step of {step:.2f} at the mask border"
    # a rendered jaw that opens wider than the real one pulls the mask down with it
    chin_x, chin_y = lms[8].round().astype(int)
    drop = int(0.1 * (lms[8, 1] - lms[27, 1]))
    weights = np.zeros((H, W), np.float32)
    weights[reg.face] = 1.0
    weights[chin_y:chin_y + drop, chin_x - 10:chin_x + 10] = 1.0
    m2 = blend_mask(reg, weights)
    assert m2[chin_y + drop - 2, chin_x] > 0.99 > m[chin_y + drop - 2, chin_x]
    # and a real jaw that opens wider moves the face polygon itself
    lms_open = lms.copy()
    lms_open[5:12, 1] += drop
    reg_open = face_region(lms_open, H, W, MaskConfig())
    assert reg_open.face[chin_y + drop - 2, chin_x] and not reg.face[chin_y + drop - 2, chin_x]


def test_paste_renders_every_masked_pixel_and_only_those_it_needs(tmp_path):
    """Two passes (the jaw room, then the rest of the mask): every pixel the feathered mask shows is
    rendered, none outside the region, fewer rays than the whole region."""
    from synthetic_scene import make_synthetic_subject

    make_synthetic_subject(tmp_path / "s", n_frames=5, size=64, feature_dim=8)
    lms = np.loadtxt(tmp_path / "s" / "ori_imgs" / "3.lms")  # in the 64-px crop grid
    H = W = 128
    reg = face_region(lms * (W / 64), H, W, MaskConfig())
    rng = np.random.default_rng(0)
    colour = rng.random((H * W, 3)).astype(np.float32)
    opacity = np.zeros(H * W, np.float32)
    opacity[reg.face.reshape(-1)] = 1.0
    ring = (reg.room & ~reg.face).reshape(-1)
    opacity[ring] = 0.4 * rng.random(int(ring.sum()))  # faint: below the 0.5 that pulls the mask down
    jaw = np.zeros((H, W), bool)  # a rendered jaw opening 3 px wider than the real one
    jaw[3:] = reg.face[:-3]
    opacity[(jaw & reg.room & ~reg.face).reshape(-1)] = 1.0
    asked: list[np.ndarray] = []

    def render(pixels):
        asked.append(pixels)
        return colour[pixels] * opacity[pixels, None], opacity[pixels]

    real = rng.integers(0, 256, (160, 144, 3), dtype=np.uint8)
    crop = (8, 20, 128, 128)
    res = portrait.paste(real, crop, lms, H, W, 64, render, want_mask=True)
    rendered = np.zeros(H * W, bool)
    rendered[np.concatenate(asked)] = True
    assert len(asked) == 2 and res["rays"] == rendered.sum() == sum(len(a) for a in asked)
    assert not (rendered & ~reg.render.reshape(-1)).any()
    # the mask a single pass over the whole region gives (the opacity outside the jaw room does not move it)
    weights = np.where(reg.render.reshape(-1), opacity, 0).reshape(H, W)
    mask = blend_mask(reg, weights)
    assert rendered[(mask > 0).reshape(-1)].all()  # every pixel the mask shows was rendered
    assert res["rays"] < reg.render.sum()  # and fewer than the whole region



@pytest.mark.slow
def test_portrait_render_has_the_source_size_and_leaves_the_rest_real(ws, tmp_path):
    root, video, wav = ws
    out = tmp_path / "portrait.mp4"
    r = _cli("render", "-w", str(root), "-s", "syn", "--audio", str(wav), "--out", str(out), "--portrait",
             "--frames-dir", str(tmp_path / "png"))
    assert r.exit_code == 0, r.output
    info = media.probe(out)
    assert (info.width, info.height) == (SRC_W, SRC_H) and info.has_audio
    frames, audio_s = stream_stats(out)
    assert frames == 40 and abs(audio_s - 1.6) < 0.07  # 25 x audio seconds
    # Each output frame is the real frame of the track entry played (forwards, then backwards),
    # except inside the face box.
    from radnerf_cli.engine.render_video import ping_pong

    ids = portrait.split_ids(root / "subjects" / "syn", "train")
    real = list(media.read_frames(video, fps=25.0))
    x, y, w, h = CROP
    outside = np.ones((SRC_H, SRC_W), bool)
    outside[y:y + h, x:x + w] = False
    for j, got in enumerate(media.read_frames(out, fps=None)):
        want = real[ids[ping_pong(j, len(ids))]]
        err = np.abs(got.astype(np.float32) - want)
        assert err[outside].mean() < 3.0, (j, err[outside].mean())  # codec error only
    # inside the crop the face differs from the real frame where it was rendered, not everywhere
    png = cv2.cvtColor(cv2.imread(str(tmp_path / "png" / "000005.png")), cv2.COLOR_BGR2RGB)
    diff = np.abs(png.astype(np.int32) - real[ids[5]]).max(-1)
    assert diff[outside].max() <= 2 and (diff > 10).sum() > 50


@pytest.mark.slow
def test_paste_equals_the_real_frame_outside_the_mask(ws):
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.workspace import Workspace

    root, video, _ = ws
    sub = Workspace(root).subject("syn")
    head = TalkingHead.from_subject(sub, device="cpu")
    src = portrait.track_source(sub)
    reader = src.reader([3])
    real = reader.next()
    reader.close()
    from radnerf_cli.data import audio_window

    feats = __import__("torch").zeros(40, 16, head.feature_dim)
    res = portrait.paste(real, src.crop, src.lms[3], head.H, head.W, src.size,
                         portrait.head_render_fn(head, head.pose_track[3], audio_window(feats, 0), None), want_mask=True)
    img, mask = res["image"], res["mask"]
    assert img.shape == real.shape
    assert np.array_equal(img[mask == 0], real[mask == 0])  # exactly the real frame
    assert (mask > 0.99).sum() > 100 and ((mask > 0) & (mask < 0.99)).sum() > 50
    assert res["rays"] < 0.6 * head.H * head.W  # only the face region is rendered


@pytest.mark.slow
def test_bundle_with_and_without_frames(ws, tmp_path):
    root, video, wav = ws
    full, small = tmp_path / "full.radnerf", tmp_path / "small.radnerf"
    assert _cli("export", "-w", str(root), "-s", "syn", "--out", str(full)).exit_code == 0
    r = _cli("export", "-w", str(root), "-s", "syn", "--out", str(small), "--no-frames")
    assert r.exit_code == 0, r.output
    assert small.stat().st_size < full.stat().st_size
    # the dataset and the source video are gone: the full bundle still renders portraits
    shutil.rmtree(root / "subjects" / "syn")
    moved = tmp_path / "elsewhere.mp4"
    video.rename(moved)
    out = tmp_path / "b.mp4"
    r = _cli("render", "--model", str(full), "--audio", str(wav), "--out", str(out), "--portrait")
    assert r.exit_code == 0, r.output
    assert (media.probe(out).width, media.probe(out).height) == (SRC_W, SRC_H)
    assert stream_stats(out)[0] == 40
    r = _cli("render", "--model", str(small), "--audio", str(wav), "--out", str(tmp_path / "c.mp4"), "--portrait")
    assert r.exit_code != 0
    msg = str(r.exception)
    assert "exported without frames" in msg and "--source" in msg and "\n" not in msg
    r = _cli("render", "--model", str(small), "--audio", str(wav), "--out", str(tmp_path / "c.mp4"), "--portrait",
             "--source", str(moved))
    assert r.exit_code == 0, r.output


@pytest.mark.slow
def test_moved_source_video_gets_one_clear_line(ws, tmp_path):
    root, video, wav = ws
    moved = tmp_path / "moved.mp4"
    video.rename(moved)
    out = tmp_path / "x.mp4"
    r = _cli("render", "-w", str(root), "-s", "syn", "--audio", str(wav), "--out", str(out), "--portrait")
    assert r.exit_code != 0 and not out.exists()
    msg = str(r.exception)
    assert "original.mp4" in msg and "missing" in msg and "--source" in msg and "\n" not in msg
    r = _cli("render", "-w", str(root), "-s", "syn", "--audio", str(wav), "--out", str(out), "--portrait",
             "--source", str(moved))
    assert r.exit_code == 0, r.output
    # a dataset without source.json says how to make one
    (root / "subjects" / "syn" / "source.json").unlink()
    assert read_source_map(root / "subjects" / "syn") is None
    r = _cli("render", "-w", str(root), "-s", "syn", "--audio", str(wav), "--out", str(tmp_path / "y.mp4"), "--portrait")
    assert r.exit_code != 0 and "source.json" in str(r.exception) and "radnerf preprocess" in str(r.exception)

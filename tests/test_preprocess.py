"""`radnerf preprocess` on a real talking head: a 10-s cut of the shared anchor clip, run once."""

from __future__ import annotations

import json
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from radnerf_cli.preprocess import landmarks, pose
from radnerf_cli.preprocess.config import PreprocessConfig
from radnerf_cli.preprocess.pipeline import STEPS, Pipeline, run_preprocess
from radnerf_cli.workspace import Workspace

CUT_SECONDS = 10
# Rotation jitter bound (RMS second difference of the per-frame rotation, degrees). A newsreader's
# head moves a couple of degrees about once a second: 2 deg * (2 pi 1 Hz)^2 / 25^2 fps^2 = 0.13 deg
# per frame^2, and even 3 deg at 1.5 Hz gives 0.43. Raw face-mesh fits show about 1 deg of
# frame-to-frame noise on this clip. After smoothing the jitter must sit at the level of natural
# motion: below 0.35 deg.
JITTER_BOUND_DEG = 0.35


def ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def anchor_cut(shared_data, tmp_path_factory):
    """A 10-s cut of the shared clip (re-encoded, so the cut is exact)."""
    out = tmp_path_factory.mktemp("pre_video") / "anchor10.mp4"
    ffmpeg("-i", str(shared_data / "anchor_cnn_25fps.mp4"), "-t", str(CUT_SECONDS), "-c:v", "libx264",
           "-preset", "veryfast", "-crf", "18", "-c:a", "aac", str(out))
    return out


@pytest.fixture(scope="session")
def processed(anchor_cut, tmp_path_factory):
    """The whole pipeline run once on the cut (mel features: the whisper path is tested with the audio code)."""
    ws = Workspace(tmp_path_factory.mktemp("pre_ws"))
    subj = ws.subject("anchor10")
    summary = run_preprocess(anchor_cut, subj, PreprocessConfig(audio_features="mel"), show=False)
    return subj, summary


def test_every_frame_has_a_face_and_68_landmarks(processed):
    subj, s = processed
    n = CUT_SECONDS * 25
    assert s["frames"] == n and s["frames_with_face"] == n
    assert not s["interpolated"] and not s["dropped"]
    for i in (0, n // 2, n - 1):
        lms = np.loadtxt(subj.root / "ori_imgs" / f"{i}.lms")
        assert lms.shape == (68, 2)
        assert (lms >= 0).all() and (lms < 512).all()
        img = cv2.imread(str(subj.root / "ori_imgs" / f"{i}.jpg"))
        assert img.shape == (512, 512, 3)
    assert len(list((subj.root / "ori_imgs").glob("*.jpg"))) == n
    assert np.load(subj.root / "landmarks_mesh.npy").shape == (n, 468, 3)


def test_landmarks_are_in_ibug68_order(processed):
    subj, _ = processed
    lms = np.loadtxt(subj.root / "ori_imgs" / "100.lms")
    x, y = lms[:, 0], lms[:, 1]
    assert x[0] < x[8] < x[16]  # jaw runs from the image left over the chin
    assert y[8] == y[:17].max()  # the chin is the jaw's lowest point
    assert x[36] < x[39] < x[42] < x[45]  # right eye (image left) then left eye, outer->inner->outer
    assert y[19] < y[37] and y[24] < y[44]  # brows above the eyes
    assert y[27] < y[30] < y[33] < y[51] < y[57] < y[8]  # bridge, tip, base, upper lip, lower lip, chin
    assert x[48] < x[51] < x[54] and x[60] < x[64]


def test_landmark_reprojection_under_estimated_pose_and_focal(processed):
    subj, s = processed
    p = np.load(subj.state_dir / "pose.npz")
    mesh = np.load(subj.root / "landmarks_mesh.npy")
    K = pose.intrinsics(float(p["focal"]), 256, 256)
    rigid, err68 = [], []
    for i in range(0, len(mesh), 5):
        uv = pose.project(p["shape"], p["R"][i], p["t"][i], K)
        d = np.linalg.norm(uv - mesh[i, :, :2], axis=1)
        rigid.append(d[p["rigid"]].mean())
        err68.append(landmarks.to_ibug68(d[:, None])[:, 0].mean())
    # the skull points fit a rigid head to about a pixel; the 68 points include lips and jaw, which
    # move while speaking, so they fit less tightly but still within a few pixels
    assert np.mean(rigid) < 1.5 and np.max(rigid) < 3.0, f"rigid points: {np.mean(rigid):.2f} px, max {np.max(rigid):.2f}"
    assert np.mean(err68) < 3.0 and np.percentile(err68, 95) < 5.0, f"iBUG-68: {np.mean(err68):.2f} px"
    assert s["reproj_px_mean"] < 1.5 and s["reproj68_px_mean"] < 3.0


def test_smoothing_removes_jitter_without_lag(processed):
    subj, s = processed
    p = np.load(subj.state_dir / "pose.npz")
    assert s["jitter_smooth_deg"] < JITTER_BOUND_DEG
    assert s["jitter_smooth_deg"] < 0.5 * s["jitter_raw_deg"]
    # no lag: the smoothed yaw/pitch track the raw ones best at zero shift, and stay close to them
    raw, sm = pose.euler_deg(p["R_raw"]), pose.euler_deg(p["R"])
    for k in (0, 1):
        a, b = raw[:, k] - raw[:, k].mean(), sm[:, k] - sm[:, k].mean()
        shifts = range(-3, 4)
        corr = [np.dot(a[3 + d : len(a) - 3 + d], b[3 : len(b) - 3]) for d in shifts]
        assert list(shifts)[int(np.argmax(corr))] == 0
    assert np.abs(raw - sm).mean() < 0.5


def test_parsing_fractions_are_plausible(processed):
    subj, s = processed
    fr = s["parsing"]
    assert 0.15 < fr["head"] < 0.55
    assert 0.01 < fr["neck"] < 0.15
    assert 0.05 < fr["torso"] < 0.45
    assert 0.15 < fr["background"] < 0.75
    par = cv2.imread(str(subj.root / "parsing" / "50.png"), cv2.IMREAD_UNCHANGED)
    assert par.shape == (512, 512, 3)
    colors = {tuple(c) for c in np.unique(par.reshape(-1, 3), axis=0)}
    assert colors <= {(255, 255, 255), (0, 0, 255), (0, 255, 0), (255, 0, 0)}
    # read with cv2 (BGR), as RAD-NeRF's scripts do: head BGR (255, 0, 0) around the nose, background
    # white in the top corners, torso BGR (0, 0, 255) at the bottom corners
    lms = np.loadtxt(subj.root / "ori_imgs" / "50.lms")
    nx, ny = lms[30].astype(int)
    assert tuple(par[ny, nx]) == (255, 0, 0)
    assert tuple(par[5, 5]) == (255, 255, 255)
    assert tuple(par[505, 5]) == (0, 0, 255)
    torso = cv2.imread(str(subj.root / "torso_imgs" / "50.png"), cv2.IMREAD_UNCHANGED)
    assert torso.shape == (512, 512, 4)
    assert torso[ny, nx, 3] == 0 and torso[505, 5, 3] == 255  # head removed, torso kept
    bc = cv2.imread(str(subj.root / "bc.jpg"))
    gt = cv2.imread(str(subj.root / "gt_imgs" / "50.jpg"))
    assert np.abs(gt[5, 5].astype(int) - bc[5, 5].astype(int)).max() < 12  # background replaced by bc


def test_transforms_have_radnerf_structure(processed, shared_data):
    subj, s = processed
    ref = json.loads((shared_data / "radnerf_obama_transforms_val.json").read_text())
    ref_c2w = np.array([f["transform_matrix"] for f in ref["frames"]])
    train = json.loads((subj.root / "transforms_train.json").read_text())
    val = json.loads((subj.root / "transforms_val.json").read_text())
    for doc in (train, val):
        assert {"focal_len", "cx", "cy", "frames"} <= set(doc)
        assert set(ref) - {"frames"} <= set(doc)
        assert doc["cx"] == doc["cy"] == 256
        for f in doc["frames"][:20]:
            assert {"img_id", "aud_id", "transform_matrix"} <= set(f)
            assert set(ref["frames"][0]) - {"face_rect"} <= set(f)
            assert f["img_id"] == f["aud_id"]
            assert 0 < f["eye_ratio"] < 2.0
    ids = [f["img_id"] for f in train["frames"]] + [f["img_id"] for f in val["frames"]]
    assert ids == list(range(250))
    assert len(train["frames"]) == int(250 * 10 / 11)
    c2w = np.array([f["transform_matrix"] for f in train["frames"] + val["frames"]])
    assert c2w.shape[1:] == (4, 4)
    assert np.allclose(c2w[:, 3], [0, 0, 0, 1])
    Rm = c2w[:, :3, :3]
    assert np.allclose(np.einsum("nij,nkj->nik", Rm, Rm), np.eye(3), atol=1e-6)
    assert np.allclose(np.linalg.det(Rm), 1, atol=1e-6)
    # the same ranges as RAD-NeRF's file: camera ~0.6-1.2 units in front (+z), small x/y offsets,
    # near-identity rotations (camera looking at the face along -z)
    dist = np.linalg.norm(c2w[:, :3, 3], axis=1)
    ref_dist = np.linalg.norm(ref_c2w[:, :3, 3], axis=1)
    assert 0.6 < dist.min() and dist.max() < 1.2 and 0.6 < ref_dist.min() and ref_dist.max() < 1.2
    assert (c2w[:, 2, 3] > 0.5).all() and (ref_c2w[:, 2, 3] > 0.5).all()
    assert np.abs(c2w[:, :2, 3]).max() < 0.35 and np.abs(ref_c2w[:, :2, 3]).max() < 0.35
    assert (c2w[:, 2, 2] > 0.9).all() and (ref_c2w[:, 2, 2] > 0.9).all()
    # focal in the range a camera of this field of view has (RAD-NeRF's: 1100 px for a 450-px frame)
    assert 1.0 < train["focal_len"] / 512 < 6.0


def test_dataset_loads_back(processed):
    subj, _ = processed
    from radnerf_cli.data.dataset import SubjectData

    data = SubjectData(subj.root, split="val", feature="mel", preload=False, show_progress=False)
    assert len(data) == 250 - int(250 * 10 / 11)
    f = data.frame(0)
    assert tuple(f["image"].shape) == (512, 512, 3)
    assert tuple(f["torso_image"].shape) == (512, 512, 4)
    assert f["face_mask"].float().mean() > 0.1  # the red head of the parsing
    assert f["aud"].shape[0] == 8


def test_audio_and_previews(processed):
    subj, s = processed
    import wave

    with wave.open(str(subj.root / "aud.wav")) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        assert abs(w.getnframes() / 16000 - CUT_SECONDS) < 0.2
    feats = np.load(subj.root / "aud_mel.npy")
    assert feats.shape[:2] == (250, 16)
    for name in ("preprocess_overlays.png", "preprocess_pose.png", "preprocess_summary.json"):
        assert (subj.preview_dir / name).stat().st_size > 1000
    sheet = cv2.imread(str(subj.preview_dir / "preprocess_overlays.png"))
    assert sheet.shape[0] >= 256 and sheet.shape[1] >= 1024


@pytest.fixture
def subject_copy(processed, tmp_path):
    subj, _ = processed
    ws = Workspace(tmp_path)
    copy = ws.subject(subj.name)
    shutil.copytree(subj.root, copy.root)
    return copy


def test_rerun_skips_finished_steps_and_a_crash_resumes(subject_copy, anchor_cut, monkeypatch):
    cfg = PreprocessConfig(audio_features="mel")
    s = run_preprocess(anchor_cut, subject_copy, cfg, show=False)
    assert all(v["skipped"] for v in s["steps"].values())

    # a crash in the last step: its marker stays absent, the earlier ones stay done
    from radnerf_cli.preprocess import overlays

    def boom(*a, **k):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(overlays, "pose_plot", boom)
    (subject_copy.state_dir / "preview.json").unlink()
    with pytest.raises(RuntimeError):
        run_preprocess(anchor_cut, subject_copy, cfg, show=False)
    assert not (subject_copy.state_dir / "preview.json").exists()
    monkeypatch.undo()
    s = run_preprocess(anchor_cut, subject_copy, cfg, show=False)
    ran = [k for k, v in s["steps"].items() if not v["skipped"]]
    assert ran == ["preview"]

    # another feature kind re-runs only the audio step (and the preview after it)
    calls = []
    monkeypatch.setattr(Pipeline, "_step_audio", lambda self: calls.append("audio") or {"items": 0})
    monkeypatch.setattr(Pipeline, "_step_preview", lambda self: calls.append("preview") or {"items": 0})
    run_preprocess(anchor_cut, subject_copy, PreprocessConfig(audio_features="whisper"), show=False)
    assert calls == ["audio", "preview"]


def test_force_redoes_every_step(subject_copy, anchor_cut, monkeypatch):
    calls = []
    for step in STEPS:
        if step in ("video", "track"):  # the expensive ones: record the call, keep the outputs
            orig = getattr(Pipeline, f"_step_{step}")
            monkeypatch.setattr(Pipeline, f"_step_{step}", lambda self, _s=step, _o=orig: calls.append(_s) or
                                (_o(self) if _s == "video" else {"items": 250, "frames": 250, "with_face": 250}))
        else:
            orig = getattr(Pipeline, f"_step_{step}")
            monkeypatch.setattr(Pipeline, f"_step_{step}", lambda self, _s=step, _o=orig: calls.append(_s) or _o(self))
    s = run_preprocess(anchor_cut, subject_copy, PreprocessConfig(audio_features="mel", force=True), show=False)
    assert calls == list(STEPS)
    assert not any(v["skipped"] for v in s["steps"].values())


def test_import_radnerf_features(subject_copy, anchor_cut, shared_data):
    """RAD-NeRF's own wav2vec file (392 windows, from another clip) is adopted and fitted to 250 frames."""
    src = shared_data / "speech_ian_wav2vec_eo.npy"
    cfg = PreprocessConfig(audio_features="mel", import_features=str(src))
    s = run_preprocess(anchor_cut, subject_copy, cfg, show=False)
    assert [k for k, v in s["steps"].items() if not v["skipped"]] == ["audio", "preview"]
    feats = np.load(subject_copy.root / "aud_eo.npy")
    assert feats.shape == (250, 16, 44)
    assert np.array_equal(feats, np.load(src)[:250])
    assert "392 windows for 250 frames" in s["audio"]["warning"]
    assert (subject_copy.root / "aud_mel.npy").exists()  # the earlier kind stays beside it


def test_source_map_points_back_at_the_video_frames(processed, anchor_cut):
    """source.json: frame i of the dataset is the crop of frame i of the source at 25 fps."""
    from radnerf_cli import media
    from radnerf_cli.preprocess.source_map import read_source_map

    subj, s = processed
    sm = read_source_map(subj.root)
    assert sm is not None and sm.video == str(anchor_cut.resolve()) and sm.frames == s["frames"]
    assert sm.crop == s["crop"] and [sm.width, sm.height] == s["source"] and sm.size == 512
    for i, frame in enumerate(media.read_frames(anchor_cut, fps=sm.fps)):
        if i == 40:
            x, y, w, h = sm.crop
            crop = cv2.resize(frame[y:y + h, x:x + w], (sm.size, sm.size), interpolation=cv2.INTER_AREA)
            ori = cv2.cvtColor(cv2.imread(str(subj.root / "ori_imgs" / "40.jpg")), cv2.COLOR_BGR2RGB)
            assert np.abs(crop.astype(np.float32) - ori).mean() < 4.0
            break


def test_face_tracker_for_the_lmd_metric(processed):
    """The reusable single-image tracker finds the same 68 points the pipeline wrote."""
    from radnerf_cli.preprocess import FaceTracker

    subj, _ = processed
    ft = FaceTracker()
    try:
        img = cv2.cvtColor(cv2.imread(str(subj.root / "ori_imgs" / "120.jpg")), cv2.COLOR_BGR2RGB)
        lms = ft.landmarks68(img)
        assert lms is not None and lms.shape == (68, 2)
        ref = np.loadtxt(subj.root / "ori_imgs" / "120.lms")
        assert np.linalg.norm(lms - ref, axis=1).mean() < 4.0
        assert ft.landmarks68(np.full((256, 256, 3), 128, np.uint8)) is None
    finally:
        ft.close()


def test_printed_summary(processed):
    from radnerf_cli.console import results
    from radnerf_cli.preprocess.pipeline import print_summary

    _, s = processed
    with results.capture() as cap:
        print_summary(s)
    text = cap.get()
    assert "frames 250, with a face 250" in text
    assert "focal" in text and "jitter" in text and "before smoothing" in text
    for step in STEPS:
        assert step in text

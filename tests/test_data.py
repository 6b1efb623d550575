"""Dataset loading, camera conventions, rays and audio windows (src/radnerf_cli/data)."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
import torch

from radnerf_cli.data import SubjectData, audio_window, get_rays, nerf_matrix_to_ngp, ngp_matrix_to_nerf
from radnerf_cli.errors import InputError, WorkspaceError
from synthetic_scene import EYE_CENTERS, HEAD_AXES, MOUTH_CENTER, make_synthetic_subject


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return make_synthetic_subject(tmp_path_factory.mktemp("syn") / "subject", n_frames=44, size=48)


def _fresh_copy(syn, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(syn, dst)
    return dst


def _ellipsoid_hits(rays_o, rays_d, axes, points=False):
    """Ray / axis-aligned ellipsoid at the origin: [N] bool (and the first hit points [N, 3])."""
    o, d = rays_o / axes, rays_d / axes
    a = (d * d).sum(-1)
    b = 2 * (o * d).sum(-1)
    c = (o * o).sum(-1) - 1
    disc = b * b - 4 * a * c
    t = (-b - torch.sqrt(disc.clamp(min=0))) / (2 * a)
    hit = (disc > 0) & (t > 0)
    return (hit, rays_o + t[..., None] * rays_d) if points else hit


# ---- synthetic scene ---------------------------------------------------------------------------


def test_synthetic_subject_is_fast_and_deterministic(tmp_path):
    t0 = time.process_time()  # CPU time: wall time varies with the load of a shared machine
    a = make_synthetic_subject(tmp_path / "a")
    elapsed = time.process_time() - t0
    b = make_synthetic_subject(tmp_path / "b")
    assert elapsed < 2.0, f"make_synthetic_subject took {elapsed:.2f} s of CPU time"
    assert (a / "aud_mel.npy").read_bytes() == (b / "aud_mel.npy").read_bytes()
    assert (a / "gt_imgs" / "7.jpg").read_bytes() == (b / "gt_imgs" / "7.jpg").read_bytes()
    feats = np.load(a / "aud_mel.npy")
    assert feats.shape == (60, 16, 16) and feats.dtype == np.float32
    tr = json.loads((a / "transforms_train.json").read_text())
    va = json.loads((a / "transforms_val.json").read_text())
    assert len(tr["frames"]) == 55 and len(va["frames"]) == 5


def test_synthetic_mouth_is_encoded_in_the_audio(syn):
    """The mouth opening (inner-lip landmark height) is a linear function of the features."""
    data = SubjectData(syn, "all", preload=False)
    heights = []
    for i in data.frame_ids:
        lms = np.loadtxt(syn / "ori_imgs" / f"{i}.lms")
        heights.append(lms[[65, 66, 67], 1].mean() - lms[[61, 62, 63], 1].mean())
    centre = data.auds[data.aud_ids, 8].numpy()  # the row at each frame's own time
    x = np.concatenate([centre, np.ones((len(centre), 1))], 1)
    coef, *_ = np.linalg.lstsq(x, np.array(heights), rcond=None)
    resid = np.array(heights) - x @ coef
    assert np.std(heights) > 1.0  # the mouth really moves (pixels)
    assert resid.std() < 0.2 * np.std(heights)


# ---- dataset on the synthetic subject ----------------------------------------------------------


def test_dataset_contract_shapes(syn):
    d = SubjectData(syn, "train")
    n = len(d)
    assert n == 40 and d.H == d.W == 48
    np.testing.assert_allclose(d.intrinsics, [2.4 * 48, 2.4 * 48, 24, 24])
    assert d.poses.shape == (n, 4, 4) and d.poses.dtype == torch.float32
    assert d.poses_raw.shape == (n, 4, 4)
    assert d.auds.shape == (44, 16, 16) and d.feature_kind == "mel" and d.feature_dim == 16
    assert d.aud_ids.dtype == torch.long and d.aud_ids.tolist() == list(range(40))
    assert d.eye.shape == (n,) and bool((d.eye > 0).all()) and float(d.eye.max()) < 2
    assert d.lips_rects.shape == (n, 4) and d.face_rects.shape == (n, 4)
    assert d.bg.shape == (48, 48, 3)
    f = d.frame(5)
    assert f["image"].shape == (48, 48, 3) and f["image"].dtype == torch.float32
    assert 0.0 <= float(f["image"].min()) and float(f["image"].max()) <= 1.0
    assert f["torso_image"].shape == (48, 48, 4)
    assert f["face_mask"].dtype == torch.bool and f["face_mask"].shape == (48, 48)
    assert f["aud"].shape == (8, 16, 16) and f["eye"].shape == (1,)
    assert torch.equal(f["aud"], audio_window(d.auds, 5))
    # lazy loading gives the same frame
    lazy = SubjectData(syn, "train", preload=False)
    assert torch.equal(lazy.frame(5)["image"], f["image"])
    assert torch.equal(lazy.frame(5)["face_mask"], f["face_mask"])


def test_rays_hit_the_head_where_the_image_shows_it(syn):
    d = SubjectData(syn, "train")
    # the head ellipsoid in ngp space: axes permuted (y, z, x) and scaled like the translations
    axes = torch.tensor(HEAD_AXES[[1, 2, 0]] * d.scale, dtype=torch.float32)
    for i in (0, 13, 27, 39):
        f = d.frame(i)
        rays = get_rays(d.poses[i : i + 1], d.intrinsics, d.H, d.W)
        hit = _ellipsoid_hits(rays["rays_o"][0], rays["rays_d"][0], axes).view(d.H, d.W)
        head = f["face_mask"]  # parsing head (blue on disk) = head coverage > 50 %
        agree = (hit == head).float().mean().item()
        assert agree > 0.98, f"frame {i}: rays and head mask agree on only {agree:.3f} of pixels"
        # where the ground truth differs from background and torso, a ray must hit the head
        torso_a = f["torso_image"][..., 3]
        fg = ((f["image"] - f["bg"]).abs().amax(-1) > 0.15) & (torso_a < 0.5)
        assert fg.sum() > 100
        assert hit[fg].float().mean().item() > 0.97
        # orientation: rays through the mouth and the image-left eye land where they are on the head
        lms = np.loadtxt(syn / "ori_imgs" / f"{d.frame_ids[i]}.lms")
        for pts, expect_uv in ((lms[48:68], MOUTH_CENTER), (lms[36:42], EYE_CENTERS[0])):
            col, row = pts.mean(0)
            r = get_rays(d.poses[i : i + 1], d.intrinsics, d.H, d.W, rect=(int(row), int(row) + 1, int(col), int(col) + 1))
            ok, p = _ellipsoid_hits(r["rays_o"][0], r["rays_d"][0], axes, points=True)
            raw = p[0, [2, 0, 1]].numpy() / d.scale  # ngp (x, y, z) = scale * raw (y, z, x)
            assert ok[0] and raw[2] > 0  # on the front of the head
            np.testing.assert_allclose(raw[:2] / HEAD_AXES[:2], expect_uv, atol=0.12)


def test_lips_rect_and_eye_from_landmarks(syn):
    d = SubjectData(syn, "val")
    for k, img_id in enumerate(d.frame_ids):
        lms = np.loadtxt(syn / "ori_imgs" / f"{img_id}.lms")
        xmin, xmax, ymin, ymax = d.lips_rects[k].tolist()
        assert xmax - xmin == ymax - ymin  # square (away from the borders)
        rows, cols = lms[48:60, 1], lms[48:60, 0]
        # RAD-NeRF's integer rounding may cut up to 2 pixels off the lips' extent
        assert xmin <= rows.min() + 2 and rows.max() - 2 <= xmax
        assert ymin <= cols.min() + 2 and cols.max() - 2 <= ymax
    # eye value: percentage of the image covered by the two eye hexagons
    lms = np.loadtxt(syn / "ori_imgs" / f"{d.frame_ids[0]}.lms")
    x, y = lms[36:42, 0], lms[36:42, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    x, y = lms[42:48, 0], lms[42:48, 1]
    area += 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    assert d.eye[0].item() == pytest.approx(area / (48 * 48) * 100, rel=1e-5)


def test_downscale_halves_everything(syn):
    full, half = SubjectData(syn, "val"), SubjectData(syn, "val", downscale=2)
    assert (half.H, half.W) == (24, 24)
    np.testing.assert_allclose(half.intrinsics, full.intrinsics / 2)
    assert half.frame(0)["image"].shape == (24, 24, 3)
    assert half.eye[0].item() == pytest.approx(full.eye[0].item(), rel=1e-5)


# ---- poses and rays ----------------------------------------------------------------------------


def test_nerf_matrix_to_ngp_matches_radnerf_and_inverts():
    rng = np.random.default_rng(0)
    p = np.eye(4, dtype=np.float32)
    p[:3, :3] = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    p[:3, 3] = rng.normal(size=3)
    n = nerf_matrix_to_ngp(p, scale=4.0, offset=(0.1, 0.2, 0.3))
    expect = np.array([
        [p[1, 0], -p[1, 1], -p[1, 2], p[1, 3] * 4 + 0.1],
        [p[2, 0], -p[2, 1], -p[2, 2], p[2, 3] * 4 + 0.2],
        [p[0, 0], -p[0, 1], -p[0, 2], p[0, 3] * 4 + 0.3],
        [0, 0, 0, 1],
    ], dtype=np.float32)
    np.testing.assert_allclose(n, expect, atol=1e-6)
    np.testing.assert_allclose(ngp_matrix_to_nerf(n, 4.0, (0.1, 0.2, 0.3)), p, atol=1e-6)
    t = nerf_matrix_to_ngp(torch.from_numpy(np.stack([p, p])))
    assert isinstance(t, torch.Tensor) and t.shape == (2, 4, 4)


def test_get_rays_sampling_modes():
    pose = nerf_matrix_to_ngp(torch.eye(4))[None].expand(2, 4, 4)
    intr = (50.0, 50.0, 16.0, 12.0)
    full = get_rays(pose, intr, 24, 32)
    assert full["rays_d"].shape == (2, 768, 3)
    torch.testing.assert_close(full["rays_d"].norm(dim=-1), torch.ones(2, 768))
    # pixel (row 3, col 5): direction ((5.5 - 16) / 50, (3.5 - 12) / 50, 1) in camera space
    d = torch.tensor([(5.5 - 16) / 50, (3.5 - 12) / 50, 1.0])
    torch.testing.assert_close(full["rays_d"][0, 3 * 32 + 5], pose[0, :3, :3] @ (d / d.norm()))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = get_rays(pose, intr, 24, 32, N=100, generator=g1), get_rays(pose, intr, 24, 32, N=100, generator=g2)
    assert torch.equal(a["inds"], b["inds"]) and a["inds"].shape == (2, 100)
    patch = get_rays(pose, intr, 24, 32, N=64, patch_size=4, generator=g1)
    inds = patch["inds"][0].view(4, 16)  # 4 patches of 4x4
    rows, cols = inds // 32, inds % 32
    assert ((rows.amax(1) - rows.amin(1)) == 3).all() and ((cols.amax(1) - cols.amin(1)) == 3).all()
    rect = get_rays(pose, intr, 24, 32, rect=(2, 6, 10, 13))
    assert rect["inds"].shape == (2, 12)
    assert rect["inds"][0].tolist() == [r * 32 + c for r in range(2, 6) for c in range(10, 13)]


# ---- audio windows -----------------------------------------------------------------------------


def _radnerf_window(features, index):
    """RAD-NeRF's get_audio_features (att_mode 2), written out independently as the oracle."""
    left, right = index - 4, index + 4
    pad_left = pad_right = 0
    if left < 0:
        pad_left, left = -left, 0
    if right > features.shape[0]:
        pad_right, right = right - features.shape[0], features.shape[0]
    auds = features[left:right]
    zero = torch.zeros(1, *features.shape[1:])
    return torch.cat([zero.expand(pad_left, *features.shape[1:]), auds, zero.expand(pad_right, *features.shape[1:])])


def test_audio_window_padding_like_radnerf():
    feats = torch.randn(11, 16, 3)
    for idx in (0, 1, 3, 4, 5, 6, 7, 9, 10):
        w = audio_window(feats, idx)
        assert w.shape == (8, 16, 3)
        assert torch.equal(w, _radnerf_window(feats, idx)), idx
    assert torch.equal(audio_window(feats, 0)[:4], torch.zeros(4, 16, 3))
    assert torch.equal(audio_window(feats, 0)[4], feats[0])
    assert torch.equal(audio_window(feats, 10)[5:], torch.zeros(3, 16, 3))
    short = torch.randn(2, 16, 3)  # shorter than the window: padding on both sides
    assert torch.equal(audio_window(short, 1), _radnerf_window(short, 1))


def test_audio_window_on_radnerf_features(shared_data):
    feats = torch.from_numpy(np.load(shared_data / "speech_ian_wav2vec_eo.npy")).float()
    assert feats.shape == (392, 16, 44)
    for idx in (0, 2, 200, 389, 391):
        assert torch.equal(audio_window(feats, idx), _radnerf_window(feats, idx))


# ---- a real RAD-NeRF transforms file -----------------------------------------------------------


def _obama_folder(shared_data, tmp_path):
    """A folder around AD-NeRF's Obama val transforms: one real-size image, linked for every frame."""
    import cv2

    root = tmp_path / "obama"
    src = json.loads((shared_data / "radnerf_obama_transforms_val.json").read_text())
    for sub in ("gt_imgs", "ori_imgs"):
        (root / sub).mkdir(parents=True)
    img = np.full((450, 450, 3), 128, np.uint8)
    cv2.imwrite(str(root / "bc.jpg"), img)
    cv2.imwrite(str(tmp_path / "one.jpg"), img)
    lms = np.stack([np.linspace(150, 300, 68), np.linspace(120, 330, 68)], 1)
    np.savetxt(tmp_path / "one.lms", lms)
    for f in src["frames"]:
        (root / "gt_imgs" / f"{f['img_id']}.jpg").symlink_to(tmp_path / "one.jpg")
        (root / "ori_imgs" / f"{f['img_id']}.lms").symlink_to(tmp_path / "one.lms")
    n_aud = max(f["aud_id"] for f in src["frames"]) + 1
    np.save(root / "aud_eo.npy", np.zeros((n_aud, 16, 44), np.float16))
    shutil.copy(shared_data / "radnerf_obama_transforms_val.json", root / "transforms_val.json")
    return root, src


def test_radnerf_obama_transforms(shared_data, tmp_path):
    root, src = _obama_folder(shared_data, tmp_path)
    d = SubjectData(root, "val", preload=False)
    assert (d.H, d.W) == (450, 450) and len(d) == 728
    np.testing.assert_allclose(d.intrinsics, [1100, 1100, 225, 225])
    assert d.feature_kind == "eo" and d.feature_dim == 44 and d.auds.dtype == torch.float32
    assert d.frame_ids[0] == src["frames"][0]["img_id"] and d.aud_ids[-1].item() == src["frames"][-1]["aud_id"]
    raw = np.array([f["transform_matrix"] for f in src["frames"]], dtype=np.float32)
    np.testing.assert_allclose(d.poses_raw, raw)
    np.testing.assert_allclose(d.poses.numpy(), nerf_matrix_to_ngp(raw), atol=1e-6)
    # every camera looks at the head: the centre ray passes the origin closely, in front of the camera
    rays = get_rays(d.poses, d.intrinsics, d.H, d.W, rect=(224, 226, 224, 226))
    o, dirs = rays["rays_o"][:, 0], rays["rays_d"][:, 0]
    t = -(o * dirs).sum(-1)
    miss = (o + t[:, None] * dirs).norm(dim=-1)
    assert (t > 0).all() and float(miss.max()) < 0.5 * float(o.norm(dim=-1).min())
    assert 2.0 < float(o.norm(dim=-1).mean()) < 5.0  # ~0.76 raw units times scale 4
    assert d.frame(0)["image"].shape == (450, 450, 3)
    half = SubjectData(root, "val", preload=False, downscale=2)
    assert (half.H, half.W) == (225, 225)
    np.testing.assert_allclose(half.intrinsics, [550, 550, 112.5, 112.5])


# ---- bad folders -------------------------------------------------------------------------------


def test_missing_transforms_is_a_workspace_error(syn, tmp_path):
    root = _fresh_copy(syn, tmp_path)
    (root / "transforms_val.json").unlink()
    with pytest.raises(WorkspaceError, match="transforms_val.json: not found"):
        SubjectData(root, "val")
    with pytest.raises(WorkspaceError, match="dataset folder not found"):
        SubjectData(tmp_path / "nope", "train")


def test_missing_image_names_the_file(syn, tmp_path):
    root = _fresh_copy(syn, tmp_path)
    (root / "gt_imgs" / "41.jpg").unlink()
    with pytest.raises(WorkspaceError, match=r"gt_imgs/41\.jpg: not found \(1 of 4"):
        SubjectData(root, "val")
    (root / "torso_imgs" / "3.png").unlink()
    with pytest.raises(WorkspaceError, match=r"torso_imgs/3\.png: not found"):
        SubjectData(root, "train")


def test_short_or_malformed_features(syn, tmp_path):
    root = _fresh_copy(syn, tmp_path)
    np.save(root / "aud_mel.npy", np.zeros((30, 16, 16), np.float32))
    with pytest.raises(InputError, match=r"aud_mel\.npy: has 30 frames .* aud_id 43"):
        SubjectData(root, "val")
    np.save(root / "aud_mel.npy", np.zeros((43, 16, 16), np.float32))  # one short: clamped like RAD-NeRF
    d = SubjectData(root, "val")
    assert d.aud_ids[-1].item() == 42
    np.save(root / "aud_mel.npy", np.zeros((44, 16), np.float32))
    with pytest.raises(InputError, match=r"aud_mel\.npy: holds \[N, 16\] labels"):
        SubjectData(root, "val")
    np.save(root / "aud_mel.npy", np.zeros((44, 8, 16), np.float32))
    with pytest.raises(InputError, match=r"must be \[N_frames, 16, C\]"):
        SubjectData(root, "val")
    np.save(root / "aud_eo.npy", np.zeros((44, 16, 29), np.float32))
    with pytest.raises(InputError, match=r"aud_eo\.npy: 'eo' features have C = 44"):
        SubjectData(root, "val", feature="eo")
    (root / "aud_mel.npy").write_bytes(b"not numpy")
    with pytest.raises(InputError, match=r"aud_mel\.npy: not a readable \.npy"):
        SubjectData(root, "val", feature="mel")
    for p in root.glob("aud_*.npy"):
        p.unlink()
    with pytest.raises(WorkspaceError, match="no audio features"):
        SubjectData(root, "val")


def test_malformed_json_and_landmarks(syn, tmp_path):
    root = _fresh_copy(syn, tmp_path)
    (root / "ori_imgs" / "42.lms").write_text("1 2\n3 4\n")
    with pytest.raises(InputError, match=r"42\.lms: expected 68 rows"):
        SubjectData(root, "val")
    (root / "transforms_val.json").write_text("{broken")
    with pytest.raises(InputError, match=r"transforms_val\.json: not valid JSON"):
        SubjectData(root, "val")
    meta = json.loads((syn / "transforms_val.json").read_text())
    meta["frames"][1]["transform_matrix"] = [[1, 0], [0, 1]]
    (root / "transforms_val.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="transform_matrix must be a finite 4x4"):
        SubjectData(root, "val")
    meta = json.loads((syn / "transforms_val.json").read_text())
    del meta["focal_len"]
    (root / "transforms_val.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="missing or invalid camera field"):
        SubjectData(root, "val")


def test_wrong_image_size_is_reported(syn, tmp_path):
    import cv2

    root = _fresh_copy(syn, tmp_path)
    cv2.imwrite(str(root / "gt_imgs" / "40.jpg"), np.zeros((30, 30, 3), np.uint8))
    with pytest.raises(InputError, match=r"gt_imgs/40\.jpg: image is 30x30 but the transforms describe 48x48"):
        SubjectData(root, "val")

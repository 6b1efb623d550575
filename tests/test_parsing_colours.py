"""Parsing colours on disk follow RAD-NeRF's convention, in both directions.

RAD-NeRF's face parsing fills a numpy image with [255, 0, 0] for the head, [0, 255, 0] for the neck
and [0, 0, 255] for the torso on white, and writes it with cv2 (which takes it as BGR); its
process.py and provider read the files back with cv2 and test those same BGR triples. The folder
below is laid out as its scripts lay it out.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from radnerf_cli.data import SubjectData
from radnerf_cli.preprocess import parsing


def _labels(size: int) -> np.ndarray:
    """A head disc over a neck column over a torso band, on background."""
    yy, xx = np.mgrid[:size, :size]
    lab = np.zeros((size, size), np.uint8)
    lab[yy > 0.7 * size] = parsing.TORSO
    lab[(np.abs(xx - size / 2) < 0.12 * size) & (yy > 0.45 * size) & (yy <= 0.7 * size)] = parsing.NECK
    lab[(xx - size / 2) ** 2 + (yy - 0.35 * size) ** 2 < (0.22 * size) ** 2] = parsing.HEAD
    return lab


def _radnerf_parsing_image(lab: np.ndarray) -> np.ndarray:
    """What RAD-NeRF's face parsing hands to cv2.imwrite (a BGR array)."""
    img = np.full(lab.shape + (3,), 255, np.uint8)
    img[lab == parsing.HEAD] = (255, 0, 0)
    img[lab == parsing.NECK] = (0, 255, 0)
    img[lab == parsing.TORSO] = (0, 0, 255)
    return img


def _radnerf_read(path) -> dict[str, np.ndarray]:
    """The masks RAD-NeRF's process.py takes from a parsing file."""
    seg = cv2.imread(str(path))
    return {
        "head": (seg[..., 0] == 255) & (seg[..., 1] == 0) & (seg[..., 2] == 0),
        "neck": (seg[..., 0] == 0) & (seg[..., 1] == 255) & (seg[..., 2] == 0),
        "torso": (seg[..., 0] == 0) & (seg[..., 1] == 0) & (seg[..., 2] == 255),
        "bg": (seg[..., 0] == 255) & (seg[..., 1] == 255) & (seg[..., 2] == 255),
    }


def _radnerf_folder(root, size: int = 32, n: int = 12) -> np.ndarray:
    """A minimal subject folder as RAD-NeRF's scripts write it (cv2 for every image)."""
    lab = _labels(size)
    for d in ("ori_imgs", "gt_imgs", "parsing", "torso_imgs"):
        (root / d).mkdir(parents=True)
    lms = np.stack([np.linspace(8, 24, 68), np.linspace(6, 26, 68)], -1)
    frames = []
    for i in range(n):
        img = np.full((size, size, 3), 90 + i, np.uint8)
        cv2.imwrite(str(root / "ori_imgs" / f"{i}.jpg"), img)
        cv2.imwrite(str(root / "gt_imgs" / f"{i}.jpg"), img)
        cv2.imwrite(str(root / "parsing" / f"{i}.png"), _radnerf_parsing_image(lab))
        cv2.imwrite(str(root / "torso_imgs" / f"{i}.png"), np.zeros((size, size, 4), np.uint8))
        np.savetxt(root / "ori_imgs" / f"{i}.lms", lms, "%f")
        pose = np.eye(4)
        pose[2, 3] = 1.0
        frames.append({"img_id": i, "aud_id": i, "transform_matrix": pose.tolist()})
    cv2.imwrite(str(root / "bc.jpg"), np.full((size, size, 3), 200, np.uint8))
    np.save(root / "aud_ds.npy", np.zeros((n, 16, 29), np.float32))
    for split, part in (("train", frames[: n - 2]), ("val", frames[n - 2 :])):
        doc = {"focal_len": 40.0, "cx": size / 2, "cy": size / 2, "frames": part}
        (root / f"transforms_{split}.json").write_text(json.dumps(doc))
    return lab


def test_reader_takes_the_head_from_a_radnerf_folder(tmp_path):
    lab = _radnerf_folder(tmp_path)
    # on disk (RGB, as an image viewer shows it) RAD-NeRF's head is blue and its torso red
    rgb = cv2.cvtColor(cv2.imread(str(tmp_path / "parsing" / "0.png")), cv2.COLOR_BGR2RGB)
    assert tuple(rgb[lab == parsing.HEAD][0]) == (0, 0, 255)
    assert tuple(rgb[lab == parsing.TORSO][0]) == (255, 0, 0)
    for preload in (True, False):
        d = SubjectData(tmp_path, "train", preload=preload, show_progress=False)
        mask = d.frame(3)["face_mask"].numpy()
        assert np.array_equal(mask, lab == parsing.HEAD)
    assert np.array_equal(parsing.labels_from_rgb(rgb), lab)


def test_writer_makes_files_radnerf_reads(tmp_path):
    lab = _labels(48)
    path = tmp_path / "0.png"
    path.write_bytes(parsing.parsing_png(lab))
    got = _radnerf_read(path)
    assert np.array_equal(got["head"], lab == parsing.HEAD)
    assert np.array_equal(got["neck"], lab == parsing.NECK)
    assert np.array_equal(got["torso"], lab == parsing.TORSO)
    assert np.array_equal(got["bg"], lab == parsing.BG)
    # and the same bytes as RAD-NeRF's own writer, pixel for pixel
    ref = tmp_path / "ref.png"
    cv2.imwrite(str(ref), _radnerf_parsing_image(lab))
    assert np.array_equal(cv2.imread(str(path)), cv2.imread(str(ref)))


@pytest.mark.parametrize("noise", [0, 20])
def test_labels_round_trip_through_disk(tmp_path, noise):
    lab = _labels(40)
    path = tmp_path / "p.png"
    path.write_bytes(parsing.parsing_png(lab))
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(np.int32)
    rgb = np.clip(rgb + np.random.default_rng(0).integers(-noise, noise + 1, rgb.shape), 0, 255).astype(np.uint8)
    assert np.array_equal(parsing.labels_from_rgb(rgb), lab)
    from radnerf_cli.data.dataset import head_mask

    assert np.array_equal(head_mask(rgb), lab == parsing.HEAD)

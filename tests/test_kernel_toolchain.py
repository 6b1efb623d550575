"""CUDA toolchain checks with a faked nvcc (a script printing a chosen version) and a faked GPU."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import torch

from radnerf_cli.kernels import toolchain


def fake_cuda_home(tmp_path: Path, release: str, archs: tuple[int, ...] = (75, 80, 86, 89, 90, 100, 120)) -> Path:
    """A CUDA_HOME whose bin/nvcc answers --version and --list-gpu-arch like nvcc ``release`` would."""
    home = tmp_path / f"cuda-{release}"
    (home / "bin").mkdir(parents=True)
    nvcc = home / "bin" / "nvcc"
    arch_lines = "\\n".join(f"compute_{a}" for a in archs)
    nvcc.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then\n'
        "  echo 'nvcc: NVIDIA (R) Cuda compiler driver'\n"
        f"  echo 'Cuda compilation tools, release {release}, V{release}.48'\n"
        'elif [ "$1" = "--list-gpu-arch" ]; then\n'
        f"  printf '{arch_lines}\\n'\n"
        "else exit 1; fi\n"
    )
    nvcc.chmod(nvcc.stat().st_mode | stat.S_IEXEC)
    return home


@pytest.fixture
def cuda_home(monkeypatch, tmp_path):
    from torch.utils import cpp_extension

    def use(release: str, **kw) -> Path:
        home = fake_cuda_home(tmp_path, release, **kw)
        monkeypatch.setattr(cpp_extension, "CUDA_HOME", str(home))
        return home

    return use


def test_nvcc_version_and_archs_are_parsed(cuda_home):
    home = cuda_home("12.8", archs=(80, 90))
    nvcc = toolchain.nvcc_path()
    assert nvcc == home / "bin" / "nvcc"
    assert toolchain.nvcc_version(nvcc) == "12.8"
    assert toolchain.nvcc_archs(nvcc) == [80, 90]


def test_major_version_mismatch_says_what_to_install(cuda_home):
    cuda_home("13.0")
    msg = toolchain.toolkit_problem("12.8", "90")
    ver = torch.__version__.split("+")[0]
    assert "is CUDA 13.0 but this torch was built with CUDA 12.8" in msg
    assert "CUDA_HOME=/usr/local/cuda-12.8" in msg
    assert f"pip install torch=={ver} --index-url https://download.pytorch.org/whl/cu130" in msg


def test_same_major_version_is_accepted(cuda_home):
    cuda_home("12.4")
    assert toolchain.toolkit_problem("12.8", "90") is None


def test_gpu_arch_unknown_to_nvcc_is_reported(cuda_home):
    cuda_home("12.8", archs=(80, 86, 90))
    msg = toolchain.toolkit_problem("12.8", "120")
    assert "cannot compile for this GPU (sm_120; it knows sm_80..sm_90)" in msg


def test_missing_or_broken_nvcc(monkeypatch, tmp_path):
    from torch.utils import cpp_extension

    monkeypatch.setattr(cpp_extension, "CUDA_HOME", None)
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvcc on PATH either
    assert "nvcc not found: install the CUDA 12 toolkit" in toolchain.toolkit_problem("12.8", "90")
    broken = tmp_path / "bin" / "nvcc"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho hello\n")
    broken.chmod(0o755)
    assert "did not report a CUDA release" in toolchain.toolkit_problem("12.8", "90", nvcc=broken)


def test_loader_refuses_a_mismatched_nvcc(monkeypatch, cuda_home):
    """availability('cuda') carries the mismatch message, so `load` raises it instead of building."""
    from radnerf_cli.errors import KernelError
    from radnerf_cli.kernels import loader

    cuda_home("13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    loader._toolkit_problem.cache_clear()
    try:
        av = loader.availability("cuda")
        assert not av.available and "is CUDA 13.0 but this torch was built with CUDA 12.8" in av.reason
        with pytest.raises(KernelError, match="is CUDA 13.0 but this torch was built with CUDA 12.8"):
            loader.load("encoding", "cuda")
    finally:
        loader._toolkit_problem.cache_clear()


def test_cpu_only_torch_with_a_gpu_present(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(toolchain, "driver_cuda_version", lambda: "12.6")
    msg = toolchain.torch_gpu_problem(gpus=["NVIDIA H100 80GB HBM3"])
    assert "NVIDIA H100 80GB HBM3" in msg and "CPU-only build" in msg
    assert "--index-url https://download.pytorch.org/whl/cu126" in msg
    assert toolchain.torch_gpu_problem(gpus=[]) is None


def test_cuda_torch_that_cannot_use_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(toolchain, "driver_cuda_version", lambda: "12.4")
    msg = toolchain.torch_gpu_problem(gpus=["NVIDIA A100-SXM4-40GB"])
    assert "built for CUDA 13.0 but cannot use the GPU" in msg and "driver supports CUDA up to 12.4" in msg
    assert "whl/cu124" in msg


def test_index_urls():
    assert toolchain.torch_index_url(None) == "https://download.pytorch.org/whl/cpu"
    assert toolchain.torch_index_url("12.8") == "https://download.pytorch.org/whl/cu128"

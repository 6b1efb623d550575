"""Can the CUDA kernels be built and run here: nvcc against torch's CUDA, the GPU against torch.

``torch.utils.cpp_extension.load`` compiles with whatever nvcc ``CUDA_HOME`` holds. An nvcc of another
CUDA major version than the one torch was built with produces a module that fails to import or
crashes, so :func:`toolkit_problem` checks it before a build and says exactly what to install.
:func:`torch_gpu_problem` checks that the installed torch can use the NVIDIA GPU that is present
(pip installs a CPU-only torch unless told which index to use).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

#: PyTorch's wheel indexes: ``cpu`` or ``cu<major><minor>`` (the CUDA version torch is built with).
TORCH_INDEX = "https://download.pytorch.org/whl"


def torch_index_url(cuda_version: str | None) -> str:
    """The pip index of torch builds for ``cuda_version`` ("13.0" -> .../cu130; None -> .../cpu)."""
    if not cuda_version:
        return f"{TORCH_INDEX}/cpu"
    major, minor = (cuda_version.split(".") + ["0"])[:2]
    return f"{TORCH_INDEX}/cu{major}{minor}"


def torch_install_line(cuda_version: str | None) -> str:
    import torch

    ver = torch.__version__.split("+")[0]
    return f"pip install torch=={ver} --index-url {torch_index_url(cuda_version)}"


def nvcc_path() -> Path | None:
    """The nvcc torch's extension builder uses (``$CUDA_HOME/bin/nvcc``), if any."""
    from torch.utils import cpp_extension

    home = cpp_extension.CUDA_HOME
    if home:
        p = Path(home) / "bin" / "nvcc"
        if p.is_file():
            return p
    found = shutil.which("nvcc")
    return Path(found) if found else None


def _run(args: list[str]) -> str | None:
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout if p.returncode == 0 else None


def nvcc_version(nvcc: Path) -> str | None:
    """"13.0" from ``nvcc --version`` ("Cuda compilation tools, release 13.0, V13.0.48")."""
    out = _run([str(nvcc), "--version"])
    m = re.search(r"release (\d+)\.(\d+)", out or "")
    return f"{m.group(1)}.{m.group(2)}" if m else None


def nvcc_archs(nvcc: Path) -> list[int] | None:
    """The compute capabilities nvcc can compile for (``nvcc --list-gpu-arch``), e.g. [75, 80, ..., 120]."""
    out = _run([str(nvcc), "--list-gpu-arch"])
    if out is None:
        return None
    archs = sorted({int(a) for a in re.findall(r"compute_(\d+)", out)})
    return archs or None


def toolkit_problem(torch_cuda: str, arch: str, nvcc: Path | None = None) -> str | None:
    """Why nvcc cannot build kernels for this torch (CUDA ``torch_cuda``) and GPU (``arch``, e.g. "90"),
    with what to install; None when it can."""
    nvcc = nvcc or nvcc_path()
    if nvcc is None:
        return ("nvcc not found: install the CUDA " + torch_cuda.split(".")[0]
                + " toolkit (it must match torch's CUDA " + torch_cuda + ") or set CUDA_HOME")
    have = nvcc_version(nvcc)
    if have is None:
        return f"{nvcc} --version did not report a CUDA release: is it a working nvcc? set CUDA_HOME to the toolkit"
    if have.split(".")[0] != torch_cuda.split(".")[0]:
        return (
            f"nvcc ({nvcc}) is CUDA {have} but this torch was built with CUDA {torch_cuda}; the kernels must be "
            f"compiled by the same CUDA major version. Either install the CUDA {torch_cuda} toolkit and point "
            f"CUDA_HOME at it (e.g. CUDA_HOME=/usr/local/cuda-{torch_cuda}), or install a torch built for CUDA "
            f"{have}: `{torch_install_line(have)}`"
        )
    archs = nvcc_archs(nvcc)
    if archs is not None and int(arch) not in archs:
        return (f"nvcc (CUDA {have}) cannot compile for this GPU (sm_{arch}; it knows sm_{archs[0]}..sm_{archs[-1]}): "
                f"install a newer CUDA toolkit and a torch built for it")
    return None


def nvidia_gpus() -> list[str]:
    """Names of the NVIDIA GPUs the driver reports (``nvidia-smi -L``); [] without a driver or GPU."""
    smi = shutil.which("nvidia-smi")
    out = _run([smi, "-L"]) if smi else None
    if out:
        return [m.group(1).strip() for m in re.finditer(r"GPU \d+: ([^(]+)", out)]
    gpus = Path("/proc/driver/nvidia/gpus")
    return ["NVIDIA GPU"] * len(list(gpus.iterdir())) if gpus.is_dir() else []


def driver_cuda_version() -> str | None:
    """The newest CUDA version the installed driver supports ("CUDA Version: 12.4" in nvidia-smi)."""
    smi = shutil.which("nvidia-smi")
    m = re.search(r"CUDA Version:\s*(\d+\.\d+)", (_run([smi]) if smi else None) or "")
    return m.group(1) if m else None


def torch_gpu_problem(gpus: list[str] | None = None) -> str | None:
    """Why the installed torch cannot use the NVIDIA GPU that is present (and what to install); None when it
    can, or when there is no GPU."""
    import torch

    gpus = nvidia_gpus() if gpus is None else gpus
    if not gpus:
        return None
    name = gpus[0]
    if torch.version.cuda is None:
        return (f"an NVIDIA GPU is present ({name}) but torch {torch.__version__} is a CPU-only build: "
                f"`{torch_install_line(driver_cuda_version() or '13.0')}` (pick the cuXYZ your driver supports: "
                "see README, Install)")
    if not torch.cuda.is_available():
        drv = driver_cuda_version()
        why = (f"the driver supports CUDA up to {drv}" if drv else "the driver may be too old or not loaded")
        return (f"torch {torch.__version__} is built for CUDA {torch.version.cuda} but cannot use the GPU ({name}): "
                f"{why}; update the NVIDIA driver or install a torch for an older CUDA "
                f"(`{torch_install_line(drv) if drv else torch_install_line('12.6')}`)")
    major, minor = torch.cuda.get_device_capability()
    built = torch.cuda.get_arch_list()
    sm = f"sm_{major}{minor}"
    # PTX of an older compute capability is compiled for this GPU by the driver.
    ptx_ok = any(a.startswith("compute_") and a[8:].isdigit() and int(a[8:]) <= major * 10 + minor for a in built)
    if built and sm not in built and not ptx_ok:
        return (f"torch {torch.__version__} has no kernels for this GPU ({torch.cuda.get_device_name()}, {sm}; it is "
                f"built for {', '.join(built)}): install a torch built for a newer CUDA")
    return None

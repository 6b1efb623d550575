"""The only caller of ``torch.utils.cpp_extension.load``.

Kernels come in families (``encoding``, ``raymarch``); each family builds one extension module per
backend (``cpu``: g++ + OpenMP, ``cuda``: nvcc). Builds are cached under

    $RADNERF_KERNEL_CACHE (default ~/.cache/radnerf/kernels)/torch<ver>-py<ver>/<cpu | cuda<ver>-sm<XY>>/<family>

so a second load of the same sources with the same torch and GPU architecture is only an import.
CUDA builds are compiled for the running GPU's architecture only, after checking that nvcc's CUDA major
version is torch's (:mod:`radnerf_cli.kernels.toolchain`; torch's ``load`` does not check it).
A file lock (released by the OS if the process dies) keeps two processes from building into the
same folder at once. Nothing here runs at import time.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from radnerf_cli.errors import KernelError

CSRC = Path(__file__).resolve().parent / "csrc"

#: Sources of each family per backend. ``bind_<family>.cpp`` is compiled for both; it calls the CUDA
#: launchers when RADNERF_WITH_CUDA is defined and the OpenMP launchers otherwise.
FAMILIES: dict[str, dict[str, list[str]]] = {
    "encoding": {
        "cpu": ["bind_encoding.cpp", "encoding_cpu.cpp"],
        "cuda": ["bind_encoding.cpp", "encoding.cu"],
    },
    "raymarch": {
        "cpu": ["bind_raymarch.cpp", "raymarch_cpu.cpp"],
        "cuda": ["bind_raymarch.cpp", "raymarch.cu"],
    },
}

BACKENDS = ("cuda", "cpu", "torch")

_loaded: dict[tuple[str, str], ModuleType] = {}


@dataclass
class Availability:
    backend: str
    available: bool
    reason: str  # why not, or what it runs on


def cache_root() -> Path:
    """$RADNERF_KERNEL_CACHE, else $XDG_CACHE_HOME/radnerf/kernels, else ~/.cache/radnerf/kernels."""
    env = os.environ.get("RADNERF_KERNEL_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "radnerf" / "kernels"


def _torch_tag() -> str:
    import torch

    return f"torch{torch.__version__.split('+')[0]}-py{sys.version_info.major}{sys.version_info.minor}"


def _cuda_arch() -> str:
    import torch

    major, minor = torch.cuda.get_device_capability()
    return f"{major}{minor}"


def build_dir(family: str, backend: str) -> Path:
    import torch

    if backend == "cpu":
        tag = "cpu"
    elif backend == "cuda":
        tag = f"cuda{torch.version.cuda}-sm{_cuda_arch()}"
    else:
        raise ValueError(f"backend '{backend}' has no build")
    return cache_root() / _torch_tag() / tag / family


def module_name(family: str, backend: str) -> str:
    return f"radnerf_{family}_{backend}"


def _which_cxx() -> str | None:
    return shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++") or shutil.which("clang++")


def availability(backend: str) -> Availability:
    """Can this backend run here, and if not, why (and what to install)."""
    import torch

    if backend == "torch":
        return Availability("torch", True, "pure PyTorch reference, always available")
    cxx = _which_cxx()
    if backend == "cpu":
        if cxx is None:
            return Availability("cpu", False, "no C++ compiler found: install g++ (e.g. `apt-get install g++`)")
        if shutil.which("ninja") is None and not _ninja_in_venv():
            return Availability("cpu", False, "ninja not found: `pip install ninja`")
        return Availability("cpu", True, f"C++/OpenMP via {cxx}")
    if backend == "cuda":
        if not torch.cuda.is_available():
            return Availability("cuda", False, "no CUDA GPU visible to torch")
        if torch.version.cuda is None:
            return Availability("cuda", False, "this torch build has no CUDA support")
        from torch.utils.cpp_extension import CUDA_HOME

        if CUDA_HOME is None:
            return Availability("cuda", False, "nvcc not found: install the CUDA toolkit or set CUDA_HOME")
        if cxx is None:
            return Availability("cuda", False, "no C++ compiler found: install g++")
        problem = _toolkit_problem(torch.version.cuda, _cuda_arch())
        if problem:
            return Availability("cuda", False, problem)
        return Availability("cuda", True, f"{torch.cuda.get_device_name()} (sm_{_cuda_arch()})")
    raise ValueError(f"unknown backend '{backend}'")


@functools.lru_cache(maxsize=8)
def _toolkit_problem(torch_cuda: str, arch: str) -> str | None:
    """nvcc's CUDA version against torch's, and the GPU's arch against nvcc's (runs nvcc once per process)."""
    from radnerf_cli.kernels import toolchain

    return toolchain.toolkit_problem(torch_cuda, arch)


def _ninja_in_venv() -> bool:
    return (Path(sys.executable).parent / "ninja").exists()


def is_cached(family: str, backend: str) -> bool:
    """True when a built module for the current torch/arch exists in the cache."""
    d = build_dir(family, backend)
    return d.is_dir() and any(d.glob(f"{module_name(family, backend)}*.so"))


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def load(family: str, backend: str, verbose: bool = False, quiet: bool = False) -> ModuleType:
    """Build (first time) or import (cached) the extension of ``family`` for ``backend``.

    Shows a spinner while compiling. Raises :class:`KernelError` when the build fails.
    """
    key = (family, backend)
    if key in _loaded:
        return _loaded[key]
    if family not in FAMILIES:
        raise ValueError(f"unknown kernel family '{family}'")
    av = availability(backend)
    if not av.available:
        raise KernelError(f"the {backend} kernels cannot be built here: {av.reason}")

    from torch.utils.cpp_extension import load as _load

    # Make sure the venv's ninja is found even when the venv is not activated.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")

    d = build_dir(family, backend)
    d.mkdir(parents=True, exist_ok=True)
    sources = [str(CSRC / s) for s in FAMILIES[family][backend]]
    cflags = ["-O3", "-std=c++17", "-fopenmp"]
    ldflags = ["-fopenmp"]
    cuda_flags: list[str] = []
    if backend == "cuda":
        cflags.append("-DRADNERF_WITH_CUDA")
        cuda_flags = ["-O3", "-std=c++17", "-DRADNERF_WITH_CUDA"]
        major, minor = _cuda_arch()[:-1], _cuda_arch()[-1]
        os.environ["TORCH_CUDA_ARCH_LIST"] = f"{major}.{minor}"

    name = module_name(family, backend)
    cached = is_cached(family, backend)
    t0 = time.perf_counter()
    with _file_lock(d / ".radnerf-build.lock"):
        # torch's own build lock is a plain file that a killed build leaves behind, after which every
        # later load waits for it forever. Holding our lock, no other build runs here: remove it.
        (d / "lock").unlink(missing_ok=True)
        try:
            if cached or quiet:
                mod = _load(name=name, sources=sources, extra_cflags=cflags, extra_ldflags=ldflags,
                            extra_cuda_cflags=cuda_flags or None, extra_include_paths=[str(CSRC)],
                            build_directory=str(d), verbose=verbose)
            else:
                from radnerf_cli.console import err_console

                with err_console.status(f"[bold]Compiling {family} kernels for {backend} (first use only)..."):
                    mod = _load(name=name, sources=sources, extra_cflags=cflags, extra_ldflags=ldflags,
                                extra_cuda_cflags=cuda_flags or None, extra_include_paths=[str(CSRC)],
                                build_directory=str(d), verbose=verbose)
                err_console.print(f"[dim]built {family} kernels for {backend} in {time.perf_counter() - t0:.0f} s, cached in {d}[/dim]")
        except Exception as e:  # compiler errors surface as RuntimeError / subprocess errors
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise KernelError(
                f"building the {backend} {family} kernels failed: {first}",
                hint=f"run `radnerf kernels build --backend {backend} --verbose` to see the compiler output",
            ) from e
    _loaded[key] = mod
    return mod

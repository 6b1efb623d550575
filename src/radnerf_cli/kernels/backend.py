"""Which backend runs an op: ``auto`` | ``cuda`` | ``cpu`` | ``torch``.

Chosen with :func:`set_backend` or ``$RADNERF_KERNELS``. ``auto`` picks, per tensor device, the
compiled kernels of that device (cuda for CUDA tensors, cpu for CPU tensors) and falls back to the
pure-torch reference when they cannot be built, saying once what failed and how much slower the
reference is (:mod:`radnerf_cli.kernels.speed`). An explicit backend never falls back: a build failure
is an error. :func:`auto_plan` tells `radnerf kernels info` what ``auto`` will do, without building.
"""

from __future__ import annotations

import os
from types import ModuleType

import torch

from radnerf_cli.errors import KernelError
from radnerf_cli.kernels import loader

_choice: str | None = None
_warned: set[tuple[str, str]] = set()
_failed: dict[tuple[str, str], str] = {}


def set_backend(name: str) -> None:
    if name not in ("auto", *loader.BACKENDS):
        raise KernelError(f"unknown kernel backend '{name}'", hint="use auto, cuda, cpu or torch")
    global _choice
    _choice = name


def get_backend() -> str:
    if _choice is not None:
        return _choice
    env = os.environ.get("RADNERF_KERNELS", "auto").strip().lower() or "auto"
    if env not in ("auto", *loader.BACKENDS):
        raise KernelError(f"RADNERF_KERNELS='{env}' is not a backend", hint="use auto, cuda, cpu or torch")
    return env


def resolve(family: str, device: torch.device) -> tuple[str, ModuleType | None]:
    """The backend name and compiled module (None for torch) that runs ``family`` on ``device``."""
    choice = get_backend()
    native = "cuda" if device.type == "cuda" else "cpu"
    if choice == "torch":
        return "torch", None
    if choice in ("cuda", "cpu"):
        if choice != native:
            raise KernelError(f"kernel backend '{choice}' cannot run on {device.type} tensors")
        return choice, loader.load(family, choice)
    # auto
    key = (family, native)
    if key in _failed:
        return "torch", None
    try:
        return native, loader.load(family, native)
    except KernelError as e:
        _failed[key] = str(e)
        if key not in _warned:
            _warned.add(key)
            from radnerf_cli.console import err_console

            err_console.print(fallback_message(family, native, str(e)))
        return "torch", None


def fallback_message(family: str, native: str, failure: str) -> str:
    """The one warning line of an ``auto`` fallback: what failed, what runs instead, how much slower."""
    from radnerf_cli.kernels import speed

    return (f"[yellow]warning:[/yellow] {failure}; the {family} kernels fall back to the pure-torch reference, "
            f"{speed.slowdown_note(family, native)}. `radnerf kernels build --backend {native} --verbose` shows "
            f"why; RADNERF_KERNELS=torch chooses the reference without this warning")


def auto_plan(family: str, device_type: str) -> tuple[str, str]:
    """(backend, why) that ``auto`` uses for ``family`` on ``device_type`` tensors, judged without building:
    a failure seen in this process, else the backend's availability, else whether a build is cached."""
    from radnerf_cli.kernels import speed

    native = "cuda" if device_type == "cuda" else "cpu"
    failure = _failed.get((family, native))
    if failure is None:
        av = loader.availability(native)
        failure = None if av.available else f"the {native} kernels cannot be built here: {av.reason}"
    if failure is not None:
        return "torch", f"{failure}; the torch reference is {speed.slowdown_note(family, native)}"
    state = "built" if loader.is_cached(family, native) else "builds on first use"
    return native, state

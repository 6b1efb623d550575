"""Timing helper shared by the kernel benchmarks."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable

import torch


def time_fn(fn: Callable[[], object], device: torch.device | str = "cpu", warmup: int = 2, repeat: int = 5) -> float:
    """Median wall time of ``fn()`` in seconds, synchronising CUDA around each call."""
    dev = torch.device(device)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def result_row(op: str, size: str, backend: str, device: torch.device, seconds: float, items: int, unit: str) -> dict:
    """One benchmark result as the JSON row every kernel benchmark writes."""
    return {
        "op": op,
        "size": size,
        "backend": backend,
        "device": device.type,
        "seconds": seconds,
        "throughput": items / seconds if seconds > 0 else float("inf"),
        "unit": unit,
    }


@contextlib.contextmanager
def using_backend(name: str):
    """Run the body with the kernel backend ``name``, restoring the previous choice afterwards."""
    from radnerf_cli.kernels import backend

    previous = backend.get_backend()
    backend.set_backend(name)
    try:
        yield
    finally:
        backend.set_backend(previous)

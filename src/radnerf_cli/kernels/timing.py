"""Timing helper shared by the kernel benchmarks."""

from __future__ import annotations

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

"""Shared fixtures: the test data beside the repository, and the GPU marker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("RADNERF_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip with the reason when it is absent (a fresh clone elsewhere)."""
    d = shared_data_dir()
    if not d.is_dir():
        pytest.skip(f"shared test data not found at {d} (set RADNERF_SHARED_DATA or clone beside ../shared)")
    return d


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(skip)

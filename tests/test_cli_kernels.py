"""`radnerf kernels info | build | bench` through the Typer app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from radnerf_cli.cli import app
from radnerf_cli.errors import KernelError
from radnerf_cli.kernels import bench, loader

runner = CliRunner()
CPU_OK = loader.availability("cpu").available


def test_info_lists_backends_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RADNERF_KERNEL_CACHE", str(tmp_path / "kcache"))
    r = runner.invoke(app, ["kernels", "info"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    for word in ("cuda", "cpu", "torch", "encoding", "raymarch", "auto picks"):
        assert word in r.output
    assert str(tmp_path / "kcache") in r.output
    assert "builds on first use" in r.output or "n/a" in r.output  # nothing is cached in a fresh folder
    assert "auto picks for encoding on cpu tensors: " + ("cpu" if CPU_OK else "torch") in r.output
    assert not (tmp_path / "kcache").exists()  # info never builds


def test_info_shows_the_fallback_and_a_gpu_torch_cannot_use(tmp_path, monkeypatch):
    """Without a compiler, info says auto falls back and how much slower; a GPU that a CPU-only torch
    cannot use is reported with the install line."""
    import torch

    from radnerf_cli.kernels import toolchain

    monkeypatch.setenv("RADNERF_KERNEL_CACHE", str(tmp_path / "kcache"))
    monkeypatch.setattr(loader, "_which_cxx", lambda: None)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(toolchain, "nvidia_gpus", lambda: ["NVIDIA L4"])
    monkeypatch.setattr(toolchain, "driver_cuda_version", lambda: "12.8")
    r = runner.invoke(app, ["kernels", "info"], env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "auto picks for encoding on cpu tensors: torch (the cpu kernels cannot be built here: no C++" in text
    assert "8.2x slower than the compiled kernels" in text
    assert "GPU: an NVIDIA GPU is present (NVIDIA L4) but torch" in text and "whl/cu128" in text


def test_build_rejects_unknown_backend_and_family():
    # a value outside the choices is a usage error (exit 2) that lists the choices
    r = runner.invoke(app, ["kernels", "build", "--backend", "metal"], env={"COLUMNS": "200"})
    assert r.exit_code == 2 and "'metal' is not one of 'cpu', 'cuda', 'all'" in r.stderr
    r = runner.invoke(app, ["kernels", "build", "--family", "nope"], env={"COLUMNS": "200"})
    assert r.exit_code == 2 and "'nope' is not one of 'encoding', 'raymarch'" in r.stderr


def test_build_cuda_without_gpu_says_why():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    r = runner.invoke(app, ["kernels", "build", "--backend", "cuda"])
    assert isinstance(r.exception, KernelError)
    assert "no CUDA GPU" in str(r.exception)


@pytest.mark.slow
@pytest.mark.skipif(not CPU_OK, reason="no C++ compiler / ninja")
def test_build_cpu_then_cached(tmp_path, monkeypatch):
    """A real build into an empty cache, then a second build that only loads it."""
    monkeypatch.setenv("RADNERF_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setattr(loader, "_loaded", {})
    r = runner.invoke(app, ["kernels", "build", "--backend", "cpu", "--family", "encoding"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "encoding (cpu): built in" in r.output
    assert loader.is_cached("encoding", "cpu")
    assert str(loader.build_dir("encoding", "cpu")).startswith(str(tmp_path))

    monkeypatch.setattr(loader, "_loaded", {})  # a new process would start with nothing loaded
    r = runner.invoke(app, ["kernels", "build", "--backend", "cpu", "--family", "encoding"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "already built, loaded in" in r.output
    seconds = float(r.output.split("loaded in ")[1].split(" s")[0])
    assert seconds < 5.0


@pytest.fixture
def one_thread():
    """One CPU thread: the quick benchmark stays fast on a machine shared with other jobs."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_bench_quick_writes_json_with_ratios(tmp_path, monkeypatch, one_thread):
    monkeypatch.setattr(bench, "BENCH_FAMILIES", ("encoding", "no_such_family"))
    backends = ["--backend", "torch"] + (["--backend", "cpu"] if CPU_OK else [])
    out = tmp_path / "bench.json"
    r = runner.invoke(app, ["kernels", "bench", "--quick", "--json", str(out), *backends], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["missing_bench_modules"] == ["no_such_family"]
    ops = {(row["op"], row["backend"]) for row in data["results"]}
    assert ("grid 3D 16x2 fwd+bwd", "torch") in ops
    for row in data["results"]:
        assert set(row) >= {"op", "size", "backend", "seconds", "throughput", "unit"}
        assert row["seconds"] > 0 and row["throughput"] > 0
    if CPU_OK:
        ratio = [x for x in data["ratios"] if x["op"] == "grid 3D 16x2 fwd+bwd"]
        assert len(ratio) == 1 and ratio[0]["ratio"] == "cpu/torch" and ratio[0]["speedup"] > 0
    assert "vs torch" in r.output and "no_such_family" in r.output


def test_bench_ratios_pair_same_op_and_device():
    rows = [
        {"op": "a", "size": "s", "backend": "torch", "device": "cpu", "seconds": 2.0},
        {"op": "a", "size": "s", "backend": "cpu", "device": "cpu", "seconds": 0.5},
        {"op": "a", "size": "s", "backend": "torch", "device": "cuda", "seconds": 1.0},
        {"op": "a", "size": "s", "backend": "cuda", "device": "cuda", "seconds": 0.1},
        {"op": "b", "size": "s", "backend": "cpu", "device": "cpu", "seconds": 0.1},
    ]
    got = {(r["ratio"], r["device"]): r["speedup"] for r in bench._ratios(rows)}
    assert got == {("cpu/torch", "cpu"): pytest.approx(4.0), ("cuda/torch", "cuda"): pytest.approx(10.0)}

"""The kernel loader: nothing compiles at import, auto falls back once with a reason, builds are safe
when two processes start them at the same time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from radnerf_cli.errors import KernelError
from radnerf_cli.kernels import backend, loader


def _env(cache):
    env = dict(os.environ)
    env["RADNERF_KERNEL_CACHE"] = str(cache)
    return env


def test_import_compiles_nothing(tmp_path):
    cache = tmp_path / "cache"
    code = "import radnerf_cli.kernels, radnerf_cli.kernels.reference, radnerf_cli.cli"
    subprocess.run([sys.executable, "-c", code], env=_env(cache), check=True)
    assert not cache.exists()


@pytest.fixture
def no_compiler(monkeypatch):
    monkeypatch.setattr(loader, "_which_cxx", lambda: None)
    monkeypatch.setattr(backend, "_failed", {})
    monkeypatch.setattr(backend, "_warned", set())
    monkeypatch.setattr(loader, "_loaded", {})
    previous = backend.get_backend()
    yield
    backend.set_backend(previous)


def test_auto_falls_back_to_torch_once_naming_the_fix(no_compiler, capsys, monkeypatch, tmp_path):
    from radnerf_cli.kernels import sh_encode

    monkeypatch.setenv("RADNERF_KERNEL_CACHE", str(tmp_path))  # no speed-ups recorded: the shipped ones

    backend.set_backend("auto")
    dirs = torch.nn.functional.normalize(torch.randn(5, 3), dim=1)
    out1 = sh_encode(dirs, 3)
    out2 = sh_encode(dirs, 3)
    assert backend.resolve("encoding", torch.device("cpu")) == ("torch", None)
    cap = capsys.readouterr()
    text = " ".join((cap.out + cap.err).split())  # the console may wrap the line
    assert text.count("warning:") == 1, text
    assert "install g++" in text and "the encoding kernels fall back to the pure-torch reference" in text
    assert "8.2x slower than the compiled kernels (measured on a 2-core x86-64 CPU)" in text
    assert torch.equal(out1, out2) and out1.shape == (5, 9)


def test_explicit_backend_never_falls_back(no_compiler):
    backend.set_backend("cpu")
    with pytest.raises(KernelError, match="no C\\+\\+ compiler found"):
        backend.resolve("encoding", torch.device("cpu"))


def test_unknown_backend_is_rejected(monkeypatch):
    with pytest.raises(KernelError, match="unknown kernel backend"):
        backend.set_backend("metal")
    monkeypatch.setattr(backend, "_choice", None)
    monkeypatch.setenv("RADNERF_KERNELS", "fpga")
    with pytest.raises(KernelError, match="RADNERF_KERNELS='fpga'"):
        backend.get_backend()


@pytest.mark.slow
def test_two_processes_building_at_once_share_one_good_build(tmp_path):
    cache = tmp_path / "cache"
    script = textwrap.dedent(
        """
        import torch
        from radnerf_cli.kernels import loader
        mod = loader.load("raymarch", "cpu", quiet=True)
        coords = torch.randint(0, 128, (1000, 3), dtype=torch.int32)
        from radnerf_cli.kernels import morton3D, morton3D_invert, set_backend
        set_backend("cpu")
        assert torch.equal(morton3D_invert(morton3D(coords)), coords)
        print("ok")
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert out.strip().endswith("ok")
    builds = list((cache).rglob("radnerf_raymarch_cpu*.so"))
    assert len(builds) == 1, builds


def test_fallback_slowdown_comes_from_this_machines_benchmark(monkeypatch, tmp_path):
    """`radnerf kernels bench` records the measured speed-ups; the fallback note then quotes them."""
    from radnerf_cli.kernels import speed

    monkeypatch.setenv("RADNERF_KERNEL_CACHE", str(tmp_path))
    rows = [
        {"family": "raymarch", "op": "a", "size": "s", "device": "cpu", "backend": "torch", "seconds": 3.0},
        {"family": "raymarch", "op": "a", "size": "s", "device": "cpu", "backend": "cpu", "seconds": 1.0},
        {"family": "raymarch", "op": "b", "size": "s", "device": "cpu", "backend": "torch", "seconds": 12.0},
        {"family": "raymarch", "op": "b", "size": "s", "device": "cpu", "backend": "cpu", "seconds": 1.0},
    ]
    speed.record(rows)
    assert (tmp_path / "speedups.json").is_file()
    note = speed.slowdown_note("raymarch", "cpu")
    assert note.startswith("3.0-12.0x slower than the compiled kernels (measured on this machine")
    assert "8.2x" in speed.slowdown_note("encoding", "cpu")  # not measured here: the shipped number
    assert "not measured on this device yet" in speed.slowdown_note("encoding", "cuda")


def test_auto_plan_reports_the_fallback_without_building(no_compiler, monkeypatch, tmp_path):
    monkeypatch.setenv("RADNERF_KERNEL_CACHE", str(tmp_path))
    name, why = backend.auto_plan("raymarch", "cpu")
    assert name == "torch" and "install g++" in why and "2.3-10.1x slower" in why
    assert not any(tmp_path.iterdir())  # nothing was built


def test_a_stale_torch_build_lock_does_not_hang_the_next_load():
    """A build killed mid-way (a timeout, Ctrl-C twice) leaves torch's `lock` file; the next load must not
    wait for it forever."""
    loader.load("raymarch", "cpu", quiet=True)  # built (or cached) normally first
    (loader.build_dir("raymarch", "cpu") / "lock").write_text("")
    code = "from radnerf_cli.kernels import loader; loader.load('raymarch', 'cpu', quiet=True); print('ok')"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.strip().endswith("ok"), p.stderr[-2000:]
    assert not (loader.build_dir("raymarch", "cpu") / "lock").exists()

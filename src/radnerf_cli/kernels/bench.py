"""Kernel benchmark framework: times every family on every backend and compares each with torch.

Each family ``F`` has a module ``radnerf_cli.kernels.bench_F`` with
``run(backend, device, quick) -> list[dict]`` (keys op, size, backend, device, seconds, throughput,
unit); a family whose bench module does not exist yet is skipped. The compiled backends are compared
with the pure-torch reference on the same device, measured in the same run.

    radnerf kernels bench [--quick] [--json PATH] [--build-times]
"""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from radnerf_cli.kernels import loader

#: Families benchmarked, in order.
BENCH_FAMILIES = ("encoding", "raymarch")


def _bench_module(family: str):
    name = f"radnerf_cli.kernels.bench_{family}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            return None
        raise


def _pairs(backends: list[str]) -> list[tuple[str, str]]:
    """(backend, device) pairs to time; torch runs on every device a compiled backend runs on."""
    pairs = []
    cuda_ok = torch.cuda.is_available()
    for dev in ("cpu", "cuda"):
        if dev == "cuda" and not cuda_ok:
            continue
        native = "cpu" if dev == "cpu" else "cuda"
        if "torch" in backends:
            pairs.append(("torch", dev))
        if native in backends:
            pairs.append((native, dev))
    return pairs


def run(backends: list[str] | None = None, quick: bool = False, json_path: str | Path | None = None,
        build_times: bool = False) -> dict:
    """Benchmark every family on ``backends`` (default: all that can run here); print a table; return
    (and write to ``json_path``) the results with the compiled/torch ratios."""
    from radnerf_cli.console import console

    backends = list(backends) if backends else ["torch", "cpu", "cuda"]
    skipped: dict[str, str] = {}
    for b in list(backends):
        av = loader.availability(b)
        if not av.available:
            skipped[b] = av.reason
            backends.remove(b)
    results: list[dict] = []
    missing: list[str] = []
    for family in BENCH_FAMILIES:
        mod = _bench_module(family)
        if mod is None:
            missing.append(family)
            continue
        for backend, dev in _pairs(backends):
            if backend != "torch":
                loader.load(family, backend)  # compile outside the timings
            with console.status(f"[bold]bench {family} on {backend} ({dev})..."):
                rows = mod.run(backend, torch.device(dev), quick)
            for r in rows:
                r.setdefault("family", family)
            results.extend(rows)
    ratios = _ratios(results)
    out: dict = {
        "machine": {
            "platform": platform.platform(),
            "cpu_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "started": _now(),
        "quick": quick,
        "results": results,
        "ratios": ratios,
        "skipped_backends": skipped,
        "missing_bench_modules": missing,
    }
    if build_times:
        out["build_times"] = measure_build_times()
    if not quick:  # quick sizes are too small to say how much slower a fallback to torch would be
        from radnerf_cli.kernels import speed

        speed.record(results)
    _print(out)
    if json_path:
        from radnerf_cli import fsutil

        fsutil.write_json(json_path, out)
        console.print(f"results written to [bold]{json_path}[/bold]")
    return out


def _ratios(results: list[dict]) -> list[dict]:
    """Speed-up of each compiled result over the torch result of the same op, size and device."""
    ref = {(r["op"], r["size"], r["device"]): r["seconds"] for r in results if r["backend"] == "torch"}
    out = []
    for r in results:
        t = ref.get((r["op"], r["size"], r["device"]))
        if r["backend"] != "torch" and t is not None:
            out.append({"op": r["op"], "size": r["size"], "device": r["device"],
                        "ratio": f"{r['backend']}/torch", "speedup": t / r["seconds"]})
    return out


def measure_build_times(families: tuple[str, ...] = BENCH_FAMILIES) -> dict:
    """First cpu build (fresh empty cache) and cached load time of each family, each in a fresh process.

    Targets: first build < 90 s, cached load < 1 s.
    """
    from radnerf_cli.console import console

    code = (
        "import time, torch\n"
        "from radnerf_cli.kernels import loader\n"
        "t = time.perf_counter(); loader.load({family!r}, 'cpu', quiet=True)\n"
        "print(time.perf_counter() - t)\n"
    )
    times: dict = {}
    with tempfile.TemporaryDirectory(prefix="radnerf-kcache-") as tmp:
        env = dict(os.environ, RADNERF_KERNEL_CACHE=tmp)
        for family in families:
            sources = loader.FAMILIES.get(family, {}).get("cpu", [])
            if not sources or not all((loader.CSRC / s).exists() for s in sources):
                times[family] = {"error": "sources not present"}
                continue
            entry: dict = {}
            for label in ("first_build_s", "cached_load_s"):
                with console.status(f"[bold]{family}: {label.replace('_', ' ')}..."):
                    p = subprocess.run([sys.executable, "-c", code.format(family=family)], env=env,
                                       capture_output=True, text=True)
                if p.returncode != 0:
                    entry["error"] = (p.stderr.strip().splitlines() or ["failed"])[-1]
                    break
                entry[label] = float(p.stdout.strip().splitlines()[-1])
            times[family] = entry
    return times


def _print(out: dict) -> None:
    from rich.table import Table

    from radnerf_cli.console import results as console

    speed = {(r["op"], r["size"], r["device"], r["ratio"].split("/")[0]): r["speedup"] for r in out["ratios"]}
    t = Table(title="kernel benchmarks" + (" (quick)" if out["quick"] else ""))
    for col in ("op", "size", "backend", "time", "throughput", "vs torch"):
        text = col in ("op", "size", "backend")
        t.add_column(col, justify="left" if text else "right", no_wrap=not text)
    for r in out["results"]:
        s = speed.get((r["op"], r["size"], r["device"], r["backend"]))
        label = r["backend"] if r["backend"] == r["device"] or r["device"] == "cpu" else f"{r['backend']} ({r['device']})"
        t.add_row(r["op"], r["size"], label, f"{r['seconds'] * 1e3:,.1f} ms", f"{r['throughput']:,.3g} {r['unit']}",
                  f"{s:.1f}x" if s is not None else "")
    # Piped output (no terminal) gets room for the whole table instead of rich's 80 columns.
    if console.is_terminal:
        console.print(t)
    else:
        from rich.console import Console

        Console(file=console.file, width=max(console.width, 140), highlight=False).print(t)
    for b, why in out["skipped_backends"].items():
        console.print(f"[dim]{b}: skipped ({why})[/dim]")
    for f in out["missing_bench_modules"]:
        console.print(f"[dim]{f}: no benchmark module yet[/dim]")
    for family, bt in out.get("build_times", {}).items():
        if "error" in bt:
            console.print(f"{family}: build timing failed: {bt['error']}")
        else:
            console.print(f"{family}: first cpu build {bt['first_build_s']:.1f} s (target < 90 s), "
                          f"cached load {bt['cached_load_s']:.2f} s (target < 1 s)")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")

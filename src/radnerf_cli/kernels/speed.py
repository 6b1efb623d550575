"""How much faster the compiled kernels are than the pure-torch reference, as measured.

``radnerf kernels bench`` records, per machine device (``cpu`` or ``cuda:<GPU name>``) and kernel family,
the range of speed-ups of the compiled backend over torch in ``<kernel cache>/speedups.json``. When
``auto`` falls back to the reference, :func:`slowdown_note` says how much slower that is: from this
machine's own measurement when there is one, else from the measurement shipped below.
"""

from __future__ import annotations

import json
import time

from radnerf_cli.kernels import loader

#: Speed-ups measured with `make bench` on a 2-core x86-64 CPU (README, "Measured speed and quality").
SHIPPED: dict[str, dict[str, dict]] = {
    "cpu": {
        "encoding": {"min": 8.2, "max": 8.2, "where": "a 2-core x86-64 CPU"},
        "raymarch": {"min": 2.3, "max": 10.1, "where": "a 2-core x86-64 CPU"},
    },
}


def device_key(device_type: str) -> str:
    """``cpu``, or ``cuda:<name of the current GPU>``."""
    if device_type != "cuda":
        return "cpu"
    import torch

    return f"cuda:{torch.cuda.get_device_name()}" if torch.cuda.is_available() else "cuda"


def _path():
    return loader.cache_root() / "speedups.json"


def recorded() -> dict:
    try:
        return json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}


def record(results: list[dict]) -> dict:
    """Store the compiled/torch speed-up range of each (device, family) in ``results`` (bench rows)."""
    ref = {(r["family"], r["op"], r["size"], r["device"]): r["seconds"] for r in results if r["backend"] == "torch"}
    found: dict[str, dict[str, list[float]]] = {}
    for r in results:
        t = ref.get((r["family"], r["op"], r["size"], r["device"]))
        if r["backend"] == "torch" or t is None or r["seconds"] <= 0:
            continue
        found.setdefault(device_key(r["device"]), {}).setdefault(r["family"], []).append(t / r["seconds"])
    if not found:
        return {}
    data = recorded()
    import platform

    where = f"this machine ({platform.node()}), {time.strftime('%Y-%m-%d')}"
    for dev, fams in found.items():
        for fam, xs in fams.items():
            data.setdefault(dev, {})[fam] = {"min": round(min(xs), 2), "max": round(max(xs), 2), "where": where}
    from radnerf_cli import fsutil

    fsutil.write_json(_path(), data)
    return data


def slowdown(family: str, device_type: str) -> dict | None:
    """{"min", "max", "where"}: how many times faster the compiled ``family`` was than torch on this kind of
    device; None when never measured."""
    key = device_key(device_type)
    for table in (recorded(), SHIPPED):
        entry = table.get(key, {}).get(family)
        if entry:
            return entry
    return None


def slowdown_note(family: str, device_type: str) -> str:
    """One phrase on how much slower the torch reference of ``family`` is than the compiled kernels."""
    s = slowdown(family, device_type)
    if s is None:
        return "not measured on this device yet (`radnerf kernels bench` measures it)"
    span = f"{s['min']:.1f}x" if abs(s["max"] - s["min"]) < 0.05 else f"{s['min']:.1f}-{s['max']:.1f}x"
    return f"{span} slower than the compiled kernels (measured on {s['where']})"

"""First step of ``scripts/device-check``: install radnerf and what the machine lacks into a throwaway folder.

Standard library only (it runs before anything is installed). Never installs torch: the machine's own
CUDA build is used. A requirement of ``scripts/device-requirements.txt`` is installed (``--no-index``,
from the wheels folder, ``--no-deps``) only when no version of it is present; radnerf itself is
installed with ``--no-deps`` from the repository, or, when that cannot be built here, run from ``src/``.

    python -m benchmarks.device_install --wheels DIR --target DIR --json PATH
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "scripts" / "device-requirements.txt"
#: Needed on the machine but not shipped (per-Python-version wheels too large for the budget).
EXPECTED = ("numpy", "pillow")
#: Requirements that count as present when their module imports, whichever distribution provides it.
PROVIDES = {"opencv-python-headless": "cv2"}


def requirements(path: Path = REQUIREMENTS) -> list[tuple[str, str]]:
    """(distribution name, requirement line) of each requirement in ``path``."""
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append((re.split(r"[=<>!~ ;\[]", line, maxsplit=1)[0], line))
    return out


def installed_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        pass
    module = PROVIDES.get(name)
    if module:
        import importlib.util

        if importlib.util.find_spec(module) is not None:
            return f"{module} importable"
    return None


def folder_mib(path: Path, skip: tuple[str, ...] = (".git",)) -> float:
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and not any(part in skip for part in p.relative_to(path).parts):
            total += p.stat().st_size
    return total / 2**20


def _pip(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True)


def _last_line(p: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (p.stderr + p.stdout).splitlines() if ln.strip()]
    errs = [ln for ln in lines if "ERROR" in ln]
    return (errs or lines or ["pip failed"])[-1].strip()


def install(wheels: Path, target: Path) -> dict:
    """Install into ``target``; returns what was present, installed and not installable."""
    report: dict = {"python": sys.version.split()[0], "executable": sys.executable, "present": {},
                    "installed": [], "failed": {}, "expected_missing": []}
    try:
        import torch

        report["torch"] = torch.__version__
        report["torch_cuda"] = torch.version.cuda
    except Exception as e:  # no torch at all: nothing else can run
        report["torch"] = None
        report["failed"]["torch"] = f"torch cannot be imported ({type(e).__name__}: {e}); install a CUDA build first"
    for name in EXPECTED:
        v = installed_version(name)
        if v is None:
            report["expected_missing"].append(name)
        else:
            report["present"][name] = v
    todo = []
    for name, line in requirements():
        v = installed_version(name)
        if v is None:
            todo.append((name, line))
        else:
            report["present"][name] = v
    target.mkdir(parents=True, exist_ok=True)
    if todo:
        if not wheels.is_dir():
            for name, _ in todo:
                report["failed"][name] = f"not installed here and no wheels folder at {wheels}"
        else:
            base = ["install", "--no-index", "--find-links", str(wheels), "--no-deps", "--target", str(target), "-q"]
            p = _pip(base + [line for _, line in todo])
            if p.returncode == 0:
                report["installed"] = [line for _, line in todo]
            else:  # find which ones fail, install the others
                for name, line in todo:
                    q = _pip(base + [line])
                    if q.returncode == 0:
                        report["installed"].append(line)
                    else:
                        report["failed"][name] = _last_line(q)
    p = _pip(["install", "--no-index", "--no-deps", "--no-build-isolation", "--target", str(target), "-q", str(REPO)])
    report["radnerf"] = "installed" if p.returncode == 0 else f"run from src/ (installing failed: {_last_line(p)})"
    report["wheels_mib"] = round(folder_mib(wheels), 1) if wheels.is_dir() else 0.0
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", type=Path, required=True)
    ap.add_argument("--target", type=Path, required=True)
    ap.add_argument("--json", type=Path, required=True)
    a = ap.parse_args(argv)
    r = install(a.wheels, a.target)
    a.json.write_text(json.dumps(r, indent=2))
    print(f"python {r['python']}, torch {r.get('torch')} (CUDA {r.get('torch_cuda')})")
    print(f"installed into {a.target}: {', '.join(r['installed']) or 'nothing (all present)'}")
    for name, why in r["failed"].items():
        print(f"NOT INSTALLED {name}: {why}")
    for name in r["expected_missing"]:
        print(f"MISSING {name}: expected on the machine; add its wheel for Python {r['python'][:4]} to {a.wheels}")
    print(f"radnerf: {r['radnerf']}")
    return 0 if r.get("torch") else 1


if __name__ == "__main__":
    sys.exit(main())

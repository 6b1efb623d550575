"""What an install gives: declared dependencies, the interpreter check, runtime vs test extras."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
ROOT = Path(__file__).resolve().parents[1]
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _declared(extras: bool = False) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    if extras:  # optional features (e.g. the microphone) are declared as extras
        deps += [d for group in project.get("optional-dependencies", {}).values() for d in group]
    return {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower().replace("_", "-") for d in deps}


def _imported_modules() -> set[str]:
    mods = set()
    for f in (ROOT / "src" / "radnerf_cli").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                mods.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods.add(node.module.split(".")[0])
    return {m for m in mods if m not in sys.stdlib_module_names and m != "radnerf_cli"}


def test_every_imported_package_is_declared():
    providers = metadata.packages_distributions()
    declared = _declared(extras=True)
    missing = {}
    for mod in sorted(_imported_modules()):
        # an optional extra that is not installed here is known by its module name
        dists = {d.lower().replace("_", "-") for d in providers.get(mod, [])} or {mod.lower().replace("_", "-")}
        if not dists & declared:
            missing[mod] = sorted(dists) or ["(not installed)"]
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_cv2_comes_from_mediapipes_opencv_only():
    declared = _declared()
    assert "opencv-contrib-python" in declared
    assert not {"opencv-python", "opencv-python-headless", "opencv-contrib-python-headless"} & declared
    mp_reqs = [r.split(";")[0] for r in metadata.requires("mediapipe") or []]
    assert any(r.startswith("opencv-contrib-python") for r in mp_reqs), mp_reqs


def test_python_range_matches_mediapipe():
    req = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert req == ">=3.10,<3.13"


def test_pip_sees_a_consistent_environment():
    p = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


@needs_make
def test_make_refuses_an_unsupported_python_in_one_line(tmp_path):
    fake = tmp_path / "python3.13"
    fake.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Python 3.13.1"; exit 0; fi\nexit 1\n')
    fake.chmod(0o755)
    p = subprocess.run(["make", "-s", "-C", str(ROOT), "install", f"PY={fake}", f"VENV={tmp_path / 'venv'}"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and "needs Python 3.10, 3.11 or 3.12" in lines[0] and "Python 3.13.1" in lines[0], lines
    assert not (tmp_path / "venv").exists()


@needs_make
def test_make_install_is_runtime_only_and_test_adds_extras_and_pip_check(tmp_path):
    def plan(target: str) -> str:
        p = subprocess.run(["make", "-n", "-C", str(ROOT), target, f"PY={sys.executable}", f"VENV={tmp_path / 'v'}"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return p.stdout

    install = plan("install")
    assert "pip install -q -e ." in install and "[test]" not in install and "--no-deps" not in install
    test = plan("test")
    assert '-e ".[test]"' in test and "pip check" in test and "-m pytest" in test
    assert test.index("pip check") < test.index("-m pytest")

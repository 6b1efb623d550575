"""`make bench`: every benchmark, each printing its table; all results in bench-results/bench.json.

    python -m benchmarks.run [--quick] [--only kernels,audio,preprocess,train,render,live,lipsync,portrait,field] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib
import platform
import time
import traceback
from pathlib import Path

SUITES = {
    "kernels": "radnerf_cli.kernels.bench",
    "audio": "benchmarks.bench_audio",
    "preprocess": "benchmarks.bench_preprocess",
    "train": "benchmarks.bench_train",
    "render": "benchmarks.bench_render",
    "live": "benchmarks.bench_live",
    "lipsync": "benchmarks.bench_lipsync",
    "portrait": "benchmarks.bench_portrait",
    "field": "benchmarks.bench_field",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a fast check")
    ap.add_argument("--only", default="", help="comma-separated suites: " + ",".join(SUITES))
    ap.add_argument("--out", default="bench-results", help="folder for the JSON results")
    args = ap.parse_args()

    import torch

    from radnerf_cli import fsutil
    from radnerf_cli.console import console

    names = [n for n in args.only.split(",") if n] or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        ap.error(f"unknown suite(s): {', '.join(unknown)}")
    results: dict = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "suites": {},
    }
    failed = []
    for name in names:
        console.rule(f"[bold]{name}")
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(SUITES[name])
            res = mod.run(quick=args.quick)
        except Exception as e:  # a failing suite is reported, the others still run
            traceback.print_exc()
            res = {"error": f"{type(e).__name__}: {e}"}
            failed.append(name)
        results["suites"][name] = {"seconds": round(time.perf_counter() - t0, 2), "results": res}
    out = Path(args.out)
    fsutil.write_json(out / "bench.json", results)
    console.print(f"\nresults written to [bold]{out / 'bench.json'}[/bold]")
    if failed:
        console.print(f"[red]failed suites: {', '.join(failed)}[/red]")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`radnerf demo`: a talking portrait from installed packages, taken through the whole pipeline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from radnerf_cli.commands.common import JsonOpt, QuietOpt, VerboseOpt

EPILOG = """\
Examples:

  radnerf demo                                     # -> ./demo-workspace/demo/astronaut_talk.mp4

  radnerf demo --quick                             # the reduced setting CI runs (also RADNERF_DEMO_QUICK=1)

  radnerf demo -w /tmp/demo-ws
"""


def demo(
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", help="Workspace of the demo subject (default ./demo-workspace, apart "
                     "from your own ./workspace).", show_default=False),
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Reduced setting (short clip, small frames, few iterations), as in CI; "
                                        "also set by RADNERF_DEMO_QUICK=1.")] = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Build a demo subject (no download), then preprocess, train (fast preset) and render it speaking."""
    import time

    from radnerf_cli.console import configure, emit_json, results
    from radnerf_cli.demo.pipeline import DEMO_WORKSPACE, QUICK_ENV, DemoConfig, run_demo

    configure(quiet, verbose, json_out)
    quick = quick or os.environ.get(QUICK_ENV, "") not in ("", "0")
    cfg = DemoConfig.quick() if quick else DemoConfig()
    t0 = time.perf_counter()
    ws = (workspace or Path(DEMO_WORKSPACE)).expanduser().resolve()
    res = run_demo(ws, cfg)
    total = time.perf_counter() - t0
    steps = ", ".join(f"{k} {v:.0f}s" for k, v in res.timings.items())
    results.print(f"demo done in {total / 60:.1f} min ({steps})")
    results.print(f"source video: {res.source}")
    results.print(f"[bold green]talking-head video:[/bold green] [bold]{res.video}[/bold]")
    emit_json({"workspace": str(ws), "video": str(res.video), "source": str(res.source),
               "seconds": total, "timings": res.timings})


def register(app: typer.Typer) -> None:
    app.command("demo", epilog=EPILOG)(demo)

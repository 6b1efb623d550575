"""`radnerf demo`: a talking portrait from installed packages, taken through the whole pipeline."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from radnerf_cli.commands.common import WorkspaceOpt


def demo(
    workspace: WorkspaceOpt = None,
    quick: Annotated[bool, typer.Option("--quick", help="Reduced setting (short clip, small frames, few iterations), as in CI.")] = False,
) -> None:
    """Build a demo subject (no download), then preprocess, train (fast preset) and render it speaking."""
    import time

    from radnerf_cli.console import console
    from radnerf_cli.demo.pipeline import QUICK_ENV, DemoConfig, run_demo
    from radnerf_cli.workspace import resolve_workspace

    quick = quick or os.environ.get(QUICK_ENV, "") not in ("", "0")
    cfg = DemoConfig.quick() if quick else DemoConfig()
    t0 = time.perf_counter()
    res = run_demo(resolve_workspace(workspace), cfg)
    total = time.perf_counter() - t0
    steps = ", ".join(f"{k} {v:.0f}s" for k, v in res.timings.items())
    console.print(f"demo done in {total / 60:.1f} min ({steps})")
    console.print(f"source video: {res.source}")
    console.print(f"[bold green]talking-head video:[/bold green] [bold]{res.video}[/bold]")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)

"""`radnerf kernels`: which kernel backends work here, ahead-of-time builds, benchmarks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from radnerf_cli.commands.choices import BenchBackend, BuildBackend, KernelFamily
from radnerf_cli.commands.common import JsonOpt, QuietOpt, VerboseOpt

kernels_app = typer.Typer(
    name="kernels",
    help="Compute kernels: show the backends available here, build them ahead of time, benchmark them.",
    no_args_is_help=True,
)

INFO_EPILOG = """Examples:

  radnerf kernels info

  radnerf kernels info --json | jq .selected

Builds are cached in RADNERF_KERNEL_CACHE, else $XDG_CACHE_HOME/radnerf/kernels, else
~/.cache/radnerf/kernels. RADNERF_KERNELS sets the default --backend of every command.
"""

BUILD_EPILOG = """Examples:

  radnerf kernels build                            # every compiled backend available here

  radnerf kernels build --backend cpu --family encoding -v
"""

BENCH_EPILOG = """Examples:

  radnerf kernels bench --quick

  radnerf kernels bench --backend torch --backend cpu --json bench.json
"""


@kernels_app.command("info", epilog=INFO_EPILOG)
def info(json_out: JsonOpt = False, quiet: QuietOpt = False, verbose: VerboseOpt = False) -> None:
    """Show each backend (available, or why not), the build cache, what `auto` picks (and how much slower a
    fallback to the torch reference is), and whether this torch can use the GPU that is present."""
    import torch
    from rich.table import Table

    from radnerf_cli.console import configure, emit_json
    from radnerf_cli.console import results as console
    from radnerf_cli.kernels import backend, loader

    configure(quiet, verbose, json_out)
    doc: dict = {"backends": [], "cache": str(loader.cache_root()), "torch": torch.__version__, "builds": []}

    t = Table(title="kernel backends")
    t.add_column("backend")
    t.add_column("available")
    t.add_column("details")
    avail = {}
    for b in loader.BACKENDS:
        av = loader.availability(b)
        avail[b] = av.available
        doc["backends"].append({"backend": b, "available": av.available, "details": av.reason})
        t.add_row(b, "[green]yes[/green]" if av.available else "[red]no[/red]", av.reason)
    console.print(t)

    console.print(f"build cache: [bold]{loader.cache_root()}[/bold] (set RADNERF_KERNEL_CACHE or XDG_CACHE_HOME to move it)")
    c = Table(title=f"builds for torch {torch.__version__}")
    c.add_column("family")
    c.add_column("backend")
    c.add_column("cached")
    c.add_column("folder")
    for family, per_backend in loader.FAMILIES.items():
        for b in per_backend:
            entry = {"family": family, "backend": b, "cached": None, "folder": None}
            doc["builds"].append(entry)
            if not avail.get(b):
                c.add_row(family, b, "[dim]n/a[/dim]", "[dim]backend not available here[/dim]")
                continue
            missing = [s for s in per_backend[b] if not (loader.CSRC / s).exists()]
            if missing:
                c.add_row(family, b, "[dim]n/a[/dim]", f"[dim]sources missing: {', '.join(missing)}[/dim]")
                continue
            cached = loader.is_cached(family, b)
            entry.update(cached=cached, folder=str(loader.build_dir(family, b)))
            c.add_row(family, b, "[green]yes[/green]" if cached else "no (builds on first use)", str(loader.build_dir(family, b)))
    console.print(c)

    try:
        choice = backend.get_backend()
    except Exception as e:  # a bad $RADNERF_KERNELS is reported, not raised, by info
        choice = f"invalid ({e})"
    console.print(f"selected backend: [bold]{choice}[/bold] (--backend or RADNERF_KERNELS)")
    picks = []
    for dev in ("cpu", "cuda"):
        if dev == "cuda" and not torch.cuda.is_available():
            continue
        for family in loader.FAMILIES:
            name, why = backend.auto_plan(family, dev)
            picks.append({"family": family, "device": dev, "backend": name, "why": why})
            color = "red" if name == "torch" else "green"
            console.print(f"auto picks for {family} on {dev} tensors: [{color}]{name}[/{color}] ({why})")
    from radnerf_cli.kernels import toolchain

    gpu_problem = toolchain.torch_gpu_problem()
    if gpu_problem:
        console.print(f"[red]GPU:[/red] {gpu_problem}")
    console.print(f"CPU threads: {torch.get_num_threads()} (OMP_NUM_THREADS or torch.set_num_threads)")
    doc.update(selected=choice, auto_picks=picks, gpu_problem=gpu_problem or None, cpu_threads=torch.get_num_threads())
    emit_json(doc)


@kernels_app.command("build", epilog=BUILD_EPILOG)
def build(
    backend_choice: Annotated[
        BuildBackend, typer.Option("--backend", help="What to build (all: every compiled backend available here).")
    ] = BuildBackend.all,
    family_choice: Annotated[
        KernelFamily | None, typer.Option("--family", help="Build only this kernel family.", show_default=False)
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the compiler's commands and output.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Compile the kernels ahead of time (otherwise they build on first use) and report how long it took."""
    from radnerf_cli.console import configure
    from radnerf_cli.console import results as console
    from radnerf_cli.errors import KernelError
    from radnerf_cli.kernels import loader

    configure(quiet, verbose)
    backend_name = backend_choice.value
    family = None if family_choice is None else family_choice.value
    if backend_name == "all":
        targets = []
        for b in ("cpu", "cuda"):
            av = loader.availability(b)
            if av.available:
                targets.append(b)
            else:
                console.print(f"[dim]{b}: skipped ({av.reason})[/dim]")
        if not targets:
            raise KernelError("no compiled backend can be built here", hint="install g++ and ninja")
    else:
        av = loader.availability(backend_name)
        if not av.available:
            raise KernelError(f"the {backend_name} kernels cannot be built here: {av.reason}")
        targets = [backend_name]
    families = [family] if family else list(loader.FAMILIES)
    for b in targets:
        for f in families:
            missing = [s for s in loader.FAMILIES[f][b] if not (loader.CSRC / s).exists()]
            if missing:
                console.print(f"[yellow]{f} ({b}): sources missing ({', '.join(missing)}), skipped[/yellow]")
                continue
            cached = loader.is_cached(f, b)
            t0 = time.perf_counter()
            loader.load(f, b, verbose=verbose)
            dt = time.perf_counter() - t0
            what = "already built, loaded" if cached else "built"
            console.print(f"{f} ({b}): {what} in {dt:.1f} s -> {loader.build_dir(f, b)}")


@kernels_app.command("bench", epilog=BENCH_EPILOG)
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Smaller sizes and fewer repeats, for a fast check.")] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results to this JSON file.", show_default=False)
    ] = None,
    backend_choices: Annotated[
        list[BenchBackend] | None,
        typer.Option("--backend", help="Backends to time (repeatable): torch, cpu, cuda. Default: all available.",
                     show_default=False),
    ] = None,
    build_times: Annotated[
        bool, typer.Option("--build-times", help="Also time a first cpu build (fresh cache) and a cached load.")
    ] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Time every kernel on each backend; compiled backends are compared with torch in the same run."""
    from radnerf_cli.console import configure
    from radnerf_cli.kernels import bench as _bench

    configure(quiet, verbose)
    backend_names = [b.value for b in backend_choices or []]
    _bench.run(backends=backend_names or None, quick=quick, json_path=json_path, build_times=build_times)


def register(app: typer.Typer) -> None:
    app.add_typer(kernels_app, name="kernels")

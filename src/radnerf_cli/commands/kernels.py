"""`radnerf kernels`: which kernel backends work here, ahead-of-time builds, benchmarks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

kernels_app = typer.Typer(
    name="kernels",
    help="Compute kernels: show the backends available here, build them ahead of time, benchmark them.",
    no_args_is_help=True,
)


@kernels_app.command("info")
def info() -> None:
    """Show each backend (available, or why not), the build cache, what `auto` picks (and how much slower a
    fallback to the torch reference is), and whether this torch can use the GPU that is present."""
    import torch
    from rich.table import Table

    from radnerf_cli.console import console
    from radnerf_cli.kernels import backend, loader

    t = Table(title="kernel backends")
    t.add_column("backend")
    t.add_column("available")
    t.add_column("details")
    avail = {}
    for b in loader.BACKENDS:
        av = loader.availability(b)
        avail[b] = av.available
        t.add_row(b, "[green]yes[/green]" if av.available else "[red]no[/red]", av.reason)
    console.print(t)

    console.print(f"build cache: [bold]{loader.cache_root()}[/bold] (set RADNERF_KERNEL_CACHE to move it)")
    c = Table(title=f"builds for torch {torch.__version__}")
    c.add_column("family")
    c.add_column("backend")
    c.add_column("cached")
    c.add_column("folder")
    for family, per_backend in loader.FAMILIES.items():
        for b in per_backend:
            if not avail.get(b):
                c.add_row(family, b, "[dim]n/a[/dim]", "[dim]backend not available here[/dim]")
                continue
            missing = [s for s in per_backend[b] if not (loader.CSRC / s).exists()]
            if missing:
                c.add_row(family, b, "[dim]n/a[/dim]", f"[dim]sources missing: {', '.join(missing)}[/dim]")
                continue
            cached = loader.is_cached(family, b)
            c.add_row(family, b, "[green]yes[/green]" if cached else "no (builds on first use)", str(loader.build_dir(family, b)))
    console.print(c)

    try:
        choice = backend.get_backend()
    except Exception as e:  # a bad $RADNERF_KERNELS is reported, not raised, by info
        choice = f"invalid ({e})"
    console.print(f"selected backend: [bold]{choice}[/bold] (--backend or RADNERF_KERNELS)")
    for dev in ("cpu", "cuda"):
        if dev == "cuda" and not torch.cuda.is_available():
            continue
        for family in loader.FAMILIES:
            name, why = backend.auto_plan(family, dev)
            color = "red" if name == "torch" else "green"
            console.print(f"auto picks for {family} on {dev} tensors: [{color}]{name}[/{color}] ({why})")
    from radnerf_cli.kernels import toolchain

    gpu_problem = toolchain.torch_gpu_problem()
    if gpu_problem:
        console.print(f"[red]GPU:[/red] {gpu_problem}")
    console.print(f"CPU threads: {torch.get_num_threads()} (OMP_NUM_THREADS or torch.set_num_threads)")


@kernels_app.command("build")
def build(
    backend_name: Annotated[
        str, typer.Option("--backend", help="What to build: cpu, cuda or all (every compiled backend available here).")
    ] = "all",
    family: Annotated[
        str | None, typer.Option("--family", help="Build only this kernel family (encoding, raymarch).", show_default=False)
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the compiler's commands and output.")] = False,
) -> None:
    """Compile the kernels ahead of time (otherwise they build on first use) and report how long it took."""
    from radnerf_cli.console import console
    from radnerf_cli.errors import KernelError
    from radnerf_cli.kernels import loader

    if backend_name not in ("cpu", "cuda", "all"):
        raise KernelError(f"--backend {backend_name}: choose cpu, cuda or all")
    if family is not None and family not in loader.FAMILIES:
        raise KernelError(f"--family {family}: choose one of {', '.join(loader.FAMILIES)}")
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


@kernels_app.command("bench")
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Smaller sizes and fewer repeats, for a fast check.")] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results to this JSON file.", show_default=False)
    ] = None,
    backend_names: Annotated[
        list[str] | None,
        typer.Option("--backend", help="Backends to time (repeatable): torch, cpu, cuda. Default: all available.",
                     show_default=False),
    ] = None,
    build_times: Annotated[
        bool, typer.Option("--build-times", help="Also time a first cpu build (fresh cache) and a cached load.")
    ] = False,
) -> None:
    """Time every kernel on each backend; compiled backends are compared with torch in the same run."""
    from radnerf_cli.errors import KernelError
    from radnerf_cli.kernels import bench as _bench
    from radnerf_cli.kernels import loader

    for b in backend_names or []:
        if b not in loader.BACKENDS:
            raise KernelError(f"--backend {b}: choose torch, cpu or cuda")
    _bench.run(backends=backend_names or None, quick=quick, json_path=json_path, build_times=build_times)


def register(app: typer.Typer) -> None:
    app.add_typer(kernels_app, name="kernels")

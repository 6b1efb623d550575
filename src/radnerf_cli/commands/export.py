"""`radnerf export`: a trained subject as one self-contained bundle, or its head surface as a mesh."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radnerf_cli.commands.common import BackendOpt, SubjectOpt, WorkspaceOpt


def export(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (default: the subject's exports/NAME.radnerf or NAME.ply).", show_default=False)] = None,
    subject: SubjectOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="bundle (a .radnerf file that `radnerf render --model` reads) or mesh (PLY).")] = "bundle",
    resolution: Annotated[int, typer.Option("--resolution", help="Mesh: grid points per side for marching cubes.", min=16, max=1024)] = 128,
    threshold: Annotated[float, typer.Option("--threshold", help="Mesh: density level of the surface.")] = 10.0,
    device: Annotated[str, typer.Option("--device", help="Where the model runs: auto, cpu or cuda.")] = "auto",
    backend: BackendOpt = "auto",
) -> None:
    """Export a trained subject: a bundle to render on another machine without the dataset, or a mesh."""
    from radnerf_cli.console import console
    from radnerf_cli.engine.export import BUNDLE_SUFFIX, MeshConfig, check_writable, export_mesh, save_bundle
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.errors import InputError
    from radnerf_cli.kernels import set_backend
    from radnerf_cli.workspace import Workspace

    set_backend(backend)
    if fmt not in ("bundle", "mesh"):
        raise InputError(f"--format {fmt}: choose bundle or mesh")
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device {device}: choose auto, cpu or cuda")
    sub = Workspace(workspace).find_subject(subject)
    if out is None:
        out = sub.export_dir / (sub.name + (BUNDLE_SUFFIX if fmt == "bundle" else ".ply"))
    check_writable(out, fmt)
    head = TalkingHead.from_subject(sub, device=None if device == "auto" else device)
    if fmt == "bundle":
        path = save_bundle(head, out, subject=sub.name)
        size = path.stat().st_size / 2**20
        console.print(f"bundle: [bold]{path}[/bold] ({size:.1f} MiB, {head.feature_kind} audio features)")
        console.print(f"render it anywhere with: radnerf render --model {path} --audio SPEECH.wav --out talk.mp4")
    else:
        path, nv, nf = export_mesh(head, out, MeshConfig(resolution=resolution, threshold=threshold))
        console.print(f"mesh: [bold]{path}[/bold] ({nv} vertices, {nf} triangles)")


def register(app: typer.Typer) -> None:
    app.command("export")(export)

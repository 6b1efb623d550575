"""`radnerf export`: a trained subject as one self-contained bundle, or its head surface as a mesh."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radnerf_cli.commands.choices import Backend, Device, ExportFormat
from radnerf_cli.commands.common import (
    BackendOpt,
    DeviceOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    SubjectOpt,
    VerboseOpt,
    WorkspaceOpt,
    check_output,
)

EPILOG = """\
Examples:

  radnerf export                                   # -> workspace/subjects/NAME/exports/NAME.radnerf

  radnerf export -s alice -o alice.radnerf --force

  radnerf export -s alice -f mesh --resolution 256 -o alice.ply

An existing --out is kept unless --force (-y) is given.
"""


def export(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (default: the subject's exports/NAME.radnerf or NAME.ply).", show_default=False)] = None,
    subject: SubjectOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="bundle (a .radnerf file that `radnerf render --model` reads) or mesh (PLY).")] = ExportFormat.bundle,
    resolution: Annotated[int, typer.Option("--resolution", help="Mesh: grid points per side for marching cubes.", min=16, max=1024)] = 128,
    threshold: Annotated[float, typer.Option("--threshold", help="Mesh: density level of the surface.")] = 10.0,
    frames: Annotated[bool, typer.Option("--frames/--no-frames", help="Bundle: carry the real frames of the pose track, for `render --portrait` without the source video (--no-frames: a small bundle).")] = True,
    source: Annotated[Path | None, typer.Option("--source", help="Bundle: the subject's source video, when it has moved.", show_default=False)] = None,
    force: ForceOpt = False,
    device: DeviceOpt = Device.auto,
    backend: BackendOpt = Backend.auto,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Export a trained subject: a bundle to render on another machine without the dataset, or a mesh."""
    from radnerf_cli import validate
    from radnerf_cli.console import configure
    from radnerf_cli.engine.export import BUNDLE_SUFFIX, MeshConfig, check_writable
    from radnerf_cli.kernels import set_backend
    from radnerf_cli.locks import claim_output
    from radnerf_cli.workspace import Workspace

    configure(quiet, verbose, json_out)
    dev = validate.device(device.value)
    validate.number("--threshold", threshold)
    set_backend(backend.value)
    ws = Workspace(workspace)
    sub = ws.find_subject(subject)
    bundle = fmt == ExportFormat.bundle
    if out is None:
        out = sub.export_dir / (sub.name + (BUNDLE_SUFFIX if bundle else ".ply"))
    check_output(out, force)
    check_writable(out, fmt.value)
    with claim_output(out, ws.root):
        _write(sub, out, bundle, dev, MeshConfig(resolution=resolution, threshold=threshold), frames, source)


def _write(sub, out: Path, bundle: bool, dev: str | None, mesh, frames: bool = True,
           source: Path | None = None) -> None:
    from radnerf_cli.console import emit_json, results
    from radnerf_cli.engine.export import export_mesh, save_bundle
    from radnerf_cli.engine.inference import TalkingHead

    head = TalkingHead.from_subject(sub, device=dev)
    if bundle:
        extra = _portrait_data(sub, head, frames, source)
        path = save_bundle(head, out, subject=sub.name, portrait=extra)
        size = path.stat().st_size
        results.print(f"bundle: [bold]{path}[/bold] ({size / 2**20:.1f} MiB, {head.feature_kind} audio features)")
        if extra is None:
            results.print("no source.json in the dataset: the bundle cannot render --portrait")
        elif extra[1]["frames_included"]:
            mib = extra[1]["video_bytes"] / 2**20
            results.print(f"portrait frames: {len(head.pose_track)} real frames ({mib:.1f} MiB of it)")
        else:
            results.print("portrait frames left out: `render --portrait` will need --source VIDEO")
        results.print(f"render it anywhere with: radnerf render --model {path} --audio SPEECH.wav --out talk.mp4")
        emit_json({"format": "bundle", "path": str(path), "bytes": size, "audio_features": head.feature_kind})
    else:
        path, nv, nf = export_mesh(head, out, mesh)
        results.print(f"mesh: [bold]{path}[/bold] ({nv} vertices, {nf} triangles)")
        emit_json({"format": "mesh", "path": str(path), "vertices": nv, "triangles": nf})


def _portrait_data(sub, head, frames: bool, source: Path | None):
    """What the bundle carries for portrait mode, or None when the dataset has no source map."""
    from radnerf_cli.engine import portrait
    from radnerf_cli.preprocess.source_map import read_source_map

    if read_source_map(sub.dataset) is None:
        return None
    src = portrait.track_source(sub, source, need_video=frames)  # frames-less bundles keep only the mapping
    portrait.check_track(src, head, sub.name)
    return portrait.bundle_tensors(src, frames)


def register(app: typer.Typer) -> None:
    app.command("export", epilog=EPILOG)(export)

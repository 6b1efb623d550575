"""`radnerf evaluate`: PSNR, LPIPS and LMD of a trained subject on its held-out frames."""

from __future__ import annotations

from typing import Annotated

import typer

from radnerf_cli.commands.common import BackendOpt, SubjectOpt, WorkspaceOpt


def evaluate(
    subject: SubjectOpt = None,
    workspace: WorkspaceOpt = None,
    split: Annotated[str, typer.Option("--split", help="Frames to score: val (held out), train or all.")] = "val",
    max_frames: Annotated[int | None, typer.Option("--max-frames", "-n", help="Score only the first N frames of the split.", min=1, show_default=False)] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="Weights to score: head, lips or torso (default: the latest trained).", show_default=False)] = None,
    device: Annotated[str, typer.Option("--device", help="Where the model runs: auto (cuda when available), cpu or cuda.")] = "auto",
    backend: BackendOpt = "auto",
    lmd: Annotated[bool, typer.Option("--lmd/--no-lmd", help="Also measure the mouth landmark distance (face tracker on every frame).")] = True,
    video: Annotated[bool, typer.Option("--video/--no-video", help="Write the side-by-side video (render | ground truth).")] = True,
) -> None:
    """Render each held-out frame with its own pose, audio and blink; compare with the real frame."""
    from radnerf_cli.engine.evaluate import evaluate as run_evaluate
    from radnerf_cli.errors import InputError
    from radnerf_cli.kernels.backend import set_backend
    from radnerf_cli.workspace import Workspace

    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device {device}: choose auto, cpu or cuda")
    if split not in ("val", "train", "all"):
        raise InputError(f"--split {split}: choose val, train or all")
    set_backend(backend)
    sub = Workspace(workspace).find_subject(subject)
    run_evaluate(sub, split=split, device=None if device == "auto" else device, max_frames=max_frames,
                 stage=stage, landmarks=lmd, video=video)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)

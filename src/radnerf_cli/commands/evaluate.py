"""`radnerf evaluate`: PSNR, LPIPS and LMD of a trained subject on its held-out frames."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radnerf_cli.commands.choices import Backend, Device, Split, Stage, value
from radnerf_cli.commands.common import (
    BackendOpt,
    DeviceOpt,
    JsonOpt,
    QuietOpt,
    SubjectOpt,
    VerboseOpt,
    WorkspaceOpt,
    device_arg,
)

EPILOG = """\
Examples:

  radnerf evaluate                                 # held-out frames of the only subject

  radnerf evaluate -s alice --stage head -n 50 --no-video

  radnerf evaluate -s alice --json -q > metrics.json

Writes metrics.json, the side-by-side video and a sample sheet into the subject's run/eval/
(replaced on each evaluation).
"""


def evaluate(
    subject: SubjectOpt = None,
    workspace: WorkspaceOpt = None,
    split: Annotated[Split, typer.Option("--split", help="Frames to score: val (held out), train or all.")] = Split.val,
    max_frames: Annotated[int | None, typer.Option("--max-frames", "-n", help="Score only the first N frames of the split.", min=1, show_default=False)] = None,
    stage: Annotated[Stage | None, typer.Option("--stage", help="Weights to score (default: the latest trained stage).", show_default=False)] = None,
    device: DeviceOpt = Device.auto,
    backend: BackendOpt = Backend.auto,
    lmd: Annotated[bool, typer.Option("--lmd/--no-lmd", help="Also measure the mouth landmark distance (face tracker on every frame).")] = True,
    video: Annotated[bool, typer.Option("--video/--no-video", help="Write the side-by-side videos (render | ground truth, portrait | real frame).")] = True,
    audio: Annotated[list[str] | None, typer.Option("--audio", "-a", help="Also render this audio (wav, flac, mp3, video; repeatable) and score its lip sync.", show_default=False)] = None,
    audio_seconds: Annotated[float | None, typer.Option("--audio-seconds", help="Score only the first S seconds of each --audio.", min=1.0, show_default=False)] = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    portrait: Annotated[bool, typer.Option("--portrait/--no-portrait", help="Also score portrait mode (the face pasted into the real frames of the source video).")] = True,
    source: Annotated[Path | None, typer.Option("--source", help="Portrait: the subject's source video, when it has moved.", show_default=False)] = None,
) -> None:
    """Render each held-out frame with its own pose, audio and blink; compare with the real frame."""
    from radnerf_cli import validate
    from radnerf_cli.console import configure, emit_json
    from radnerf_cli.engine.evaluate import evaluate as run_evaluate
    from radnerf_cli.errors import InputError
    from radnerf_cli.kernels.backend import set_backend
    from radnerf_cli.workspace import Workspace

    configure(quiet, verbose, json_out)
    validate.device(device.value)
    for a in audio or []:
        if not Path(a).is_file():
            raise InputError(f"{a}: audio file not found")
    set_backend(backend.value)
    sub = Workspace(workspace).find_subject(subject)
    res = run_evaluate(sub, split=split.value, device=device_arg(device), max_frames=max_frames,
                       stage=value(stage), landmarks=lmd, video=video,
                       audios=audio or [], audio_seconds=audio_seconds,
                       portrait=portrait, source=source)
    emit_json(res)


def register(app: typer.Typer) -> None:
    app.command("evaluate", epilog=EPILOG)(evaluate)

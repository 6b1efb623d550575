"""Options shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radnerf_cli.commands.choices import Backend, Device

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder holding the subjects (default ./workspace).",
        envvar="RADNERF_WORKSPACE",
        show_default=False,
    ),
]

SubjectOpt = Annotated[
    str | None,
    typer.Option("--subject", "-s", help="Subject name inside the workspace (default: the only one there).", show_default=False),
]

BackendOpt = Annotated[
    Backend,
    typer.Option("--backend", help="Kernel backend (auto: compiled where available, else torch).", envvar="RADNERF_KERNELS"),
]

DeviceOpt = Annotated[
    Device, typer.Option("--device", help="Where the model runs (auto: cuda when available).")
]

QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bars or log lines: results and errors only.")
]

VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="More detail, including the face tracker's native log lines.")
]

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the summary as JSON on stdout (everything else goes to stderr).")
]

ForceOpt = Annotated[
    bool, typer.Option("--force", "-y", help="Overwrite an existing output file.")
]


def device_arg(device: Device) -> str | None:
    """The engine's device argument: None for auto."""
    return None if device == Device.auto else device.value


def check_output(out: Path, force: bool, inputs: dict[str, Path | None] | None = None) -> Path:
    """Refuse an output path that would destroy something, with one line naming it (InputError).

    - one of the command's own inputs (``render -a talk.mp4 -o talk.mp4``), whatever ``force`` says;
    - a file inside a subject's ``run/checkpoints`` folder (the trained weights), whatever ``force`` says;
    - an existing file, unless ``force`` (``--force``/``-y``), as ffmpeg does.
    """
    from radnerf_cli.errors import InputError

    target = out.expanduser().resolve()
    for opt, path in (inputs or {}).items():
        if path is not None and path.expanduser().resolve() == target:
            raise InputError(f"{out}: is also this command's input ({opt}); give another output file")
    parts = target.parts
    for i in range(len(parts) - 3):
        if parts[i] == "subjects" and parts[i + 2 : i + 4] == ("run", "checkpoints"):
            raise InputError(f"{out}: lies inside subject '{parts[i + 1]}''s run/checkpoints (its trained weights); "
                             "write the output somewhere else")
    if target.exists() and not target.is_dir() and not force:
        raise InputError(f"{out}: already exists", hint="give --force (-y) to overwrite it")
    return out

"""Options shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    str,
    typer.Option("--backend", help="Kernel backend: auto, cuda, cpu or torch.", envvar="RADNERF_KERNELS"),
]

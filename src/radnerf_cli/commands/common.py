"""Options shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

WorkspaceOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder holding the subjects (default ./workspace).",
        envvar="RADNERF_WORKSPACE",
        show_default=False,
    ),
]

SubjectOpt = Annotated[
    Optional[str],
    typer.Option("--subject", "-s", help="Subject name inside the workspace (default: the only one there).", show_default=False),
]

BackendOpt = Annotated[
    str,
    typer.Option("--backend", help="Kernel backend: auto, cuda, cpu or torch.", envvar="RADNERF_KERNELS"),
]

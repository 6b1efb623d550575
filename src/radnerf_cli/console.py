"""Where output goes, and the progress bars every long job uses.

- ``console`` (stderr): progress bars, spinners and log lines; silent under ``--quiet``.
- ``results`` (stdout): what a command produced (summaries, tables, output paths). Under ``--json``
  it moves to stderr too, so that stdout holds only the one JSON document of ``emit_json``.
- ``err_console`` (stderr): errors and warnings; never silenced.

``configure`` is called by every command with its ``-q/-v/--json`` options before it does anything.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, highlight=False)
results = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


@dataclass
class OutputMode:
    quiet: bool = False  # no progress, no logs: results and errors only
    verbose: bool = False  # also the native libraries' own log lines (mediapipe, TensorFlow Lite)
    json: bool = False  # stdout holds only a JSON document


mode = OutputMode()


def configure(quiet: bool = False, verbose: bool = False, json_out: bool = False) -> None:
    """Set this invocation's output mode (each command calls it first; it resets every field)."""
    from radnerf_cli.errors import InputError

    if quiet and verbose:
        raise InputError("--quiet and --verbose contradict each other: give one")
    mode.quiet, mode.verbose, mode.json = quiet, verbose, json_out
    console.quiet = quiet
    results.stderr = json_out
    results.quiet = quiet and not json_out


def emit_json(doc: Any) -> None:
    """Write ``doc`` as JSON to stdout (only in ``--json`` mode; the human summary went to ``results``)."""
    if mode.json:
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
        sys.stdout.flush()


class RateColumn(TextColumn):
    """Items per second, with a unit (``it/s``, ``frames/s``)."""

    def __init__(self, unit: str = "it"):
        super().__init__("")
        self.unit = unit

    def render(self, task):  # noqa: D401 - rich API
        from rich.text import Text

        speed = task.finished_speed or task.speed
        if speed is None:
            return Text(f"? {self.unit}/s", style="progress.data.speed")
        return Text(f"{speed:,.1f} {self.unit}/s", style="progress.data.speed")


def progress(unit: str = "it", transient: bool = False, extra: str | None = None) -> Progress:
    """A progress bar with count, rate and ETA, on stderr (hidden under ``--quiet``).

    ``extra`` is a format string over the task's fields, e.g. ``"loss {task.fields[loss]:.4f}"``.
    """
    columns = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    if extra:
        columns.append(TextColumn(extra))
    return Progress(*columns, console=console, transient=transient, disable=mode.quiet)

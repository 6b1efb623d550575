"""The one rich console, and the progress bars every long job uses."""

from __future__ import annotations

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

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


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
    """A progress bar with count, rate and ETA.

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
    return Progress(*columns, console=console, transient=transient)

"""One exception family. The engine raises these; only the CLI turns them into exit codes."""

from __future__ import annotations


class RadNerfError(Exception):
    """Base of every error the tool reports to the user as one clear line.

    ``hint`` is an optional second sentence telling the user what to do about it.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InputError(RadNerfError):
    """A file or value given by the user is missing, unreadable or unsuitable. Name the file."""


class ConfigError(RadNerfError):
    """A configuration file or key=value override is wrong."""


class WorkspaceError(RadNerfError):
    """A subject, dataset, run or checkpoint is missing from the workspace."""


class KernelError(RadNerfError):
    """A compute kernel could not be built or was called with wrong arguments."""


class TrainingError(RadNerfError):
    """Training cannot go on (for example the loss became NaN)."""


class WriteError(RadNerfError):
    """A file could not be written: no space left, read-only disk, no permission, not a folder."""


class BusyError(RadNerfError):
    """Another radnerf process is working on the same subject."""

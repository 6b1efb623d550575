"""Where things live. A workspace holds subjects; a subject holds its dataset, its runs and its exports.

    WORKSPACE/                         --workspace, $RADNERF_WORKSPACE, or ./workspace
      subjects/NAME/                   the dataset, in RAD-NeRF's format (SPEC section 2)
        .radnerf/                      preprocess step markers and reports
        preview/                       tracking overlays and plots
        run/                           training: config.yaml, checkpoints/, previews/, metrics.json
        exports/                       bundles and meshes
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from radnerf_cli.errors import WorkspaceError

DEFAULT_WORKSPACE = "workspace"
ENV_WORKSPACE = "RADNERF_WORKSPACE"


def resolve_workspace(path: str | os.PathLike | None) -> Path:
    """The workspace folder: the given path, else $RADNERF_WORKSPACE, else ./workspace."""
    if path is None:
        path = os.environ.get(ENV_WORKSPACE) or DEFAULT_WORKSPACE
    return Path(path).expanduser().resolve()


@dataclass(frozen=True)
class Subject:
    """Paths of one subject inside a workspace."""

    workspace: Path
    name: str

    @property
    def root(self) -> Path:
        return self.workspace / "subjects" / self.name

    # The dataset lives directly in the subject folder, so RAD-NeRF's scripts can read it as is.
    @property
    def dataset(self) -> Path:
        return self.root

    @property
    def state_dir(self) -> Path:
        return self.root / ".radnerf"

    @property
    def preview_dir(self) -> Path:
        return self.root / "preview"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def export_dir(self) -> Path:
        return self.root / "exports"

    def has_dataset(self) -> bool:
        return (self.root / "transforms_train.json").is_file()


class Workspace:
    def __init__(self, path: str | os.PathLike | None = None):
        self.root = resolve_workspace(path)
        for p in (self.root, self.root / "subjects"):
            if p.exists() and not p.is_dir():
                raise WorkspaceError(f"{p}: is a file, not a workspace folder", hint="give a folder with --workspace")

    def subject(self, name: str) -> Subject:
        if not name or "/" in name or name.startswith("."):
            raise WorkspaceError(f"'{name}' is not a valid subject name")
        return Subject(self.root, name)

    def subjects(self) -> list[Subject]:
        d = self.root / "subjects"
        if not d.is_dir():
            return []
        return [Subject(self.root, p.name) for p in sorted(d.iterdir()) if p.is_dir() and not p.name.startswith(".")]

    def find_subject(self, name: str | None, need_dataset: bool = True) -> Subject:
        """The named subject, or the only one when ``name`` is None; clear errors otherwise."""
        if name is None:
            subs = [s for s in self.subjects() if s.has_dataset()]
            if not subs:
                raise WorkspaceError(
                    f"no subjects in workspace {self.root}", hint="run `radnerf preprocess VIDEO` first"
                )
            if len(subs) > 1:
                names = ", ".join(s.name for s in subs)
                raise WorkspaceError(f"workspace {self.root} holds several subjects ({names})", hint="pick one with --subject")
            return subs[0]
        s = self.subject(name)
        if need_dataset and not s.has_dataset():
            known = ", ".join(x.name for x in self.subjects()) or "none"
            raise WorkspaceError(
                f"subject '{name}' has no dataset in {s.root} (subjects here: {known})",
                hint="run `radnerf preprocess VIDEO --subject NAME` first",
            )
        return s

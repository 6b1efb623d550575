"""What the page can render: the workspace's trained subjects and their exported bundles.

A model id is ``NAME`` for a subject's latest checkpoint, ``NAME/FILE.radnerf`` for a bundle in
the subject's ``exports/``, or ``FILE.radnerf`` for a bundle at the workspace root.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path

from radnerf_cli.errors import InputError
from radnerf_cli.workspace import Workspace


@dataclass
class Model:
    id: str
    name: str
    kind: str  # subject or bundle
    path: Path  # checkpoint folder's subject root, or the bundle file
    stage: str | None = None


class Catalog:
    """Lists models, loads them (a fresh TalkingHead per use) and renders preview frames (cached)."""

    def __init__(self, workspace: Path | None, device: str | None = None):
        self.ws = Workspace(workspace)
        self.device = device
        self._previews: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def models(self) -> list[Model]:
        from radnerf_cli.engine.inference import latest_stage

        out = []
        for sub in self.ws.subjects():
            stage = latest_stage(sub)
            if stage is not None:
                out.append(Model(sub.name, sub.name, "subject", sub.root, stage))
            if sub.export_dir.is_dir():
                for b in sorted(sub.export_dir.glob("*.radnerf")):
                    out.append(Model(f"{sub.name}/{b.name}", f"{sub.name} ({b.stem})", "bundle", b))
        for b in sorted(self.ws.root.glob("*.radnerf")) if self.ws.root.is_dir() else []:
            out.append(Model(b.name, b.stem, "bundle", b))
        return out

    def find(self, model_id: str) -> Model:
        for m in self.models():
            if m.id == model_id:
                return m
        raise InputError(f"no trained subject or bundle '{model_id}' in workspace {self.ws.root}")

    def load(self, model_id: str):
        """A new TalkingHead for ``model_id`` (callers own it: its audio smoothing is per render)."""
        m = self.find(model_id)
        if m.kind == "bundle":
            from radnerf_cli.engine.export import load_bundle

            return load_bundle(m.path, device=self.device)
        from radnerf_cli.engine.inference import TalkingHead

        return TalkingHead.from_subject(self.ws.subject(m.name), device=self.device)

    def describe(self, m: Model) -> dict:
        from radnerf_cli.engine.export import read_bundle_header

        info = {"id": m.id, "name": m.name, "kind": m.kind, "stage": m.stage}
        if m.kind == "bundle":
            try:
                meta = read_bundle_header(m.path)["meta"]
                info.update(size=f"{meta['W']}x{meta['H']}", features=meta["feature_kind"])
            except (InputError, KeyError):
                info.update(error="unreadable bundle")
        return info

    def preview_png(self, model_id: str) -> bytes:
        """One frame of the model with silent audio at its first pose, as PNG (rendered once)."""
        with self._lock:
            if model_id in self._previews:
                return self._previews[model_id]
        import torch
        from PIL import Image

        head = self.load(model_id)
        img = head.render_frame(head.pose_track[0], torch.zeros(8, 16, head.feature_dim), None)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        with self._lock:
            self._previews[model_id] = buf.getvalue()
        return buf.getvalue()

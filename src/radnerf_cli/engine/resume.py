"""Before a run writes anything: do the requested settings fit the checkpoints it would resume?

A checkpoint's tensors have the shapes of the model settings it was trained with. Asking for other
settings would fail at load time, after the run's config had been rewritten; this check compares
the settings first, using only the checkpoints' metadata, and names the keys that differ.
"""

from __future__ import annotations

from typing import Any

from radnerf_cli.config import to_dict
from radnerf_cli.engine import checkpoint
from radnerf_cli.engine.inference import stage_checkpoint
from radnerf_cli.errors import ConfigError
from radnerf_cli.model.config import STAGES
from radnerf_cli.workspace import Subject

SHAPE_KEYS = ("render.grid_size",)  # keys outside `model` that set the size of checkpointed tensors


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def shape_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The settings that fix the checkpoint's tensor shapes: every ``model.*`` key plus SHAPE_KEYS."""
    flat = _flat(cfg)
    return {k: v for k, v in flat.items() if k.startswith("model.") or k in SHAPE_KEYS}


def check_compatible(subject: Subject, cfg: Any) -> None:
    """ConfigError (naming the checkpoint and the keys) when ``cfg`` cannot resume ``subject``'s checkpoints."""
    want = shape_settings(to_dict(cfg))
    for stage in STAGES:
        path = stage_checkpoint(subject, stage)
        if not path.is_file():
            continue
        meta = checkpoint.read_meta(path)
        have = shape_settings(meta["model_meta"]["config"])
        diff = [k for k in sorted(set(want) | set(have)) if k in have and want.get(k) != have.get(k)]
        if diff:
            shown = ", ".join(f"{k}={have[k]} (asked {want.get(k)})" for k in diff[:4])
            raise ConfigError(
                f"{path}: was trained with other model settings: {shown}",
                hint="drop those overrides to resume, or delete run/checkpoints to start over",
            )

"""Training checkpoints: one safetensors file per stage, written atomically.

A checkpoint holds, as tensors: the model state (``model/*``: parameters and occupancy grids), the EMA
shadow of the trained parameters (``ema/*``), the Adam state (``optim/<param>/<name>``), the RNG
states (``rng/*``) and the data the model needs to render without the dataset (``data/*``:
background, pose and eye tracks). The safetensors metadata holds one JSON document (``meta``): the
resolved config, stage, step, Adam's param groups, the numpy/python RNG states and the metric history.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from radnerf_cli import fsutil
from radnerf_cli.errors import WorkspaceError


def _contig(t: Tensor) -> Tensor:
    return t.detach().to("cpu").contiguous().clone()


def save(path: Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Write ``tensors`` and the JSON ``meta`` to ``path`` atomically."""
    from safetensors.torch import save_file

    clean = {k: _contig(v) for k, v in tensors.items()}
    with fsutil.atomic_path(path) as tmp:
        save_file(clean, str(tmp), metadata={"meta": json.dumps(meta)})


REQUIRED_META = ("stage", "step", "optimizer", "rng", "model_meta")  # keys every checkpoint's meta has
REQUIRED_MODEL_META = ("config", "feature_kind", "feature_dim", "H", "W", "intrinsics")
REQUIRED_TENSORS = ("data/background", "data/pose_track", "rng/generator")


def _not_ours(path: Path, why: str) -> WorkspaceError:
    return WorkspaceError(f"{path}: not a radnerf training checkpoint ({why})",
                          hint="delete it to train that stage again")


def check_meta(path: Path, meta: Any) -> dict[str, Any]:
    """``meta`` when it has what a radnerf checkpoint's meta has; WorkspaceError naming ``path`` otherwise."""
    if not isinstance(meta, dict):
        raise _not_ours(path, "no radnerf metadata")
    for k in REQUIRED_META:
        if k not in meta:
            raise _not_ours(path, f"no '{k}' in its metadata")
    mm = meta["model_meta"]
    if not isinstance(mm, dict) or not isinstance(mm.get("config"), dict):
        raise _not_ours(path, "its model metadata is not a mapping")
    for k in REQUIRED_MODEL_META:
        if k not in mm:
            raise _not_ours(path, f"no '{k}' in its model metadata")
    return meta


def read_meta(path: Path) -> dict[str, Any]:
    """Only the JSON meta of a checkpoint (no tensors are read), validated."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("meta", "null"))
    except Exception as e:  # safetensors and json raise several error types
        raise WorkspaceError(f"{path}: not a readable checkpoint ({str(e).splitlines()[0]})",
                             hint="delete it to train that stage again") from None
    return check_meta(path, meta)


def load(path: Path, device: str | torch.device = "cpu") -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a checkpoint: (tensors, meta). A damaged or foreign file raises WorkspaceError naming it."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = json.loads((f.metadata() or {}).get("meta", "null"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several error types
        raise WorkspaceError(
            f"{path}: not a readable checkpoint ({str(e).splitlines()[0]})",
            hint="delete it to train that stage again",
        ) from None
    check_meta(path, meta)
    for k in REQUIRED_TENSORS:
        if k not in tensors:
            raise _not_ours(path, f"the tensor '{k}' is missing")
    if not any(k.startswith("model/") for k in tensors):
        raise _not_ours(path, "it holds no model weights")
    return tensors, meta


def prefixed(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries under ``prefix/`` with the prefix removed."""
    p = prefix + "/"
    return {k[len(p) :]: v for k, v in tensors.items() if k.startswith(p)}


# ------------------------------------------------------------------ optimizer
def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], list[dict[str, Any]]]:
    """Adam state as flat tensors plus its JSON-able param groups."""
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    for pid, st in sd["state"].items():
        for name, v in st.items():
            tensors[f"optim/{pid}/{name}"] = v if torch.is_tensor(v) else torch.tensor(v)
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, Tensor], groups: list[dict[str, Any]]) -> None:
    state: dict[int, dict[str, Tensor]] = {}
    for k, v in prefixed(tensors, "optim").items():
        pid, name = k.split("/", 1)
        state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": groups})


# ------------------------------------------------------------------ RNG
def rng_state(generator: torch.Generator) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The sampling generator's and torch/numpy/python global RNG states: (tensors, JSON part)."""
    np_state = np.random.get_state()
    tensors = {
        "rng/generator": generator.get_state(),
        "rng/torch": torch.get_rng_state(),
        "rng/numpy_keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
    }
    py = random.getstate()
    js = {
        "numpy": [str(np_state[0]), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py[0], list(py[1]), py[2]],
    }
    return tensors, js


def restore_rng(generator: torch.Generator, tensors: dict[str, Tensor], js: dict[str, Any]) -> None:
    generator.set_state(tensors["rng/generator"])
    torch.set_rng_state(tensors["rng/torch"])
    name, pos, has_gauss, cached = js["numpy"]
    keys = tensors["rng/numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((name, keys, pos, has_gauss, cached))
    v, st, g = js["python"]
    random.setstate((v, tuple(st), g))

"""Exports of a trained talking head: a self-contained bundle, and the head's surface as a mesh.

Bundle (``NAME.radnerf``): one safetensors file. Its tensors are the model's state (EMA weights,
density grid and bitfield, background, pose and eye tracks, whatever
:meth:`TalkingHead.state_and_meta` returns); its header metadata holds one JSON document under the
key ``radnerf``::

    {"format": "radnerf-bundle", "format_version": 1, "radnerf_version": "0.1.0",
     "subject": "NAME", "feature_kind": "whisper", "feature_dim": 384, "H": 512, "W": 512,
     "frames": 6000, "meta": {...}}

``meta`` is the model's own JSON meta (config, intrinsics, ...). A reader refuses any other
``format_version`` with a clear error rather than guessing.

Mesh: marching cubes over the head's density at a neutral audio code, written as a binary PLY.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from radnerf_cli import __version__, fsutil
from radnerf_cli.errors import InputError

if TYPE_CHECKING:
    from radnerf_cli.engine.inference import TalkingHead

BUNDLE_FORMAT = "radnerf-bundle"  # the "format" value of every bundle
BUNDLE_VERSION = 1  # bumped whenever a reader of the old layout could no longer render the new one
META_KEY = "radnerf"  # safetensors metadata key holding the bundle's JSON
BUNDLE_SUFFIX = ".radnerf"


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Fail early (InputError naming the path) when ``path`` cannot be written as a file."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(f"{p}: is a folder; give a file name for the {what}")
    parent = p.parent
    probe = parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{p}: cannot write the {what} here ({probe} is not a folder)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{p}: cannot write the {what} here (no write permission in {probe})")
    try:  # permissions are not the whole story (root, read-only mounts, /proc): try a file there
        fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.{os.getpid()}.", suffix=".tmp.probe", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise InputError(f"{p}: cannot write the {what} here ({e.strerror or e})") from None
    fsutil.clean_stale_temps(probe, recursive=False, stem=p.stem)  # left by a killed earlier write
    if p.exists() and not os.access(p, os.W_OK):
        raise InputError(f"{p}: cannot overwrite the {what} (the file is read-only)")
    return p


# ----------------------------------------------------------------------------------------------
# bundle


def _plain_tensors(tensors: dict[str, Any]) -> dict[str, Any]:
    """CPU, contiguous, non-aliasing copies (safetensors refuses shared or strided storage)."""
    import torch

    out = {}
    for k, v in tensors.items():
        if not isinstance(v, torch.Tensor):
            v = torch.as_tensor(np.asarray(v))
        out[k] = v.detach().to("cpu").contiguous().clone()
    return out


def bundle_header(head: TalkingHead, meta: dict[str, Any], subject: str | None) -> dict[str, Any]:
    """The JSON document stored in a bundle's metadata (``portrait`` is added when the bundle has it)."""
    return {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "radnerf_version": __version__,
        "subject": subject,
        "feature_kind": head.feature_kind,
        "feature_dim": int(head.feature_dim),
        "H": int(head.H),
        "W": int(head.W),
        "frames": int(len(head.pose_track)),
        "meta": meta,
    }


def save_bundle(head: TalkingHead, path: str | os.PathLike, subject: str | None = None,
                portrait: tuple[dict[str, Any], dict[str, Any]] | None = None) -> Path:
    """Write ``head`` as one self-contained ``.radnerf`` file (safetensors), atomically. Returns the path.

    ``portrait``: (tensors, header entry) from :func:`radnerf_cli.engine.portrait.bundle_tensors`.
    """
    from safetensors.torch import save_file

    path = check_writable(path, "bundle")
    tensors, meta = head.state_and_meta()
    header = bundle_header(head, meta, subject)
    if portrait is not None:
        tensors.update(portrait[0])
        header["portrait"] = portrait[1]
    try:
        text = json.dumps(header)
    except TypeError as e:
        raise TypeError(f"the model's meta is not JSON-serialisable: {e}") from None
    with fsutil.atomic_path(path, suffix=".safetensors") as tmp:
        save_file(_plain_tensors(tensors), str(tmp), metadata={META_KEY: text})
    return path


def read_bundle_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a bundle, validated (InputError naming the file when it is not one we read)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: bundle not found")
    try:
        with safe_open(str(p), framework="pt") as f:
            md = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for foreign or truncated files
        raise InputError(f"{p}: not a radnerf bundle (unreadable: {str(e).splitlines()[0][:120]})") from None
    text = md.get(META_KEY)
    if text is None:
        raise InputError(f"{p}: not a radnerf bundle (a safetensors file without radnerf metadata)")
    try:
        header = json.loads(text)
    except json.JSONDecodeError:
        raise InputError(f"{p}: not a radnerf bundle (its metadata is not valid JSON)") from None
    if not isinstance(header, dict) or header.get("format") != BUNDLE_FORMAT:
        raise InputError(f"{p}: not a radnerf bundle (format {header.get('format') if isinstance(header, dict) else '?'!r})")
    version = header.get("format_version")
    if version != BUNDLE_VERSION:
        made_by = header.get("radnerf_version", "an unknown version")
        raise InputError(
            f"{p}: bundle format version {version} (written by radnerf {made_by}) is not supported; "
            f"this radnerf {__version__} reads version {BUNDLE_VERSION}",
            hint="export the subject again with this version of radnerf",
        )
    return header


def load_bundle(path: str | os.PathLike, device: str | None = None) -> TalkingHead:
    """A :class:`TalkingHead` from a ``.radnerf`` bundle, without any dataset."""
    from safetensors.torch import load_file

    from radnerf_cli.engine.inference import TalkingHead

    header = read_bundle_header(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as e:
        raise InputError(f"{path}: bundle is damaged ({str(e).splitlines()[0][:120]})") from None
    meta = header.get("meta")
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise InputError(f"{path}: not a radnerf bundle (its header has no model settings)")
    return TalkingHead.from_state(tensors, meta, device=device, source=path, error=InputError)


# ----------------------------------------------------------------------------------------------
# mesh


@dataclass
class MeshConfig:
    """How the head's surface is extracted."""

    resolution: int = 128  # grid points per side of the marching-cubes grid
    threshold: float = 10.0  # density (sigma) level of the surface; RAD-NeRF's occupancy threshold
    chunk: int = 65536  # points per density query


def density_grid(head: TalkingHead, resolution: int, bound: float, chunk: int = 65536) -> np.ndarray:
    """Head density at a neutral audio code on a regular grid over [-bound, bound]^3: [R, R, R] float32."""
    import torch

    from radnerf_cli.console import progress

    lin = torch.linspace(-bound, bound, resolution)
    out = np.empty(resolution**3, dtype=np.float32)
    xx, yy, zz = torch.meshgrid(lin, lin, lin, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1), zz.reshape(-1)], -1)  # [R^3, 3]
    with torch.no_grad(), progress("points") as bar:
        task = bar.add_task("density", total=pts.shape[0])
        for s in range(0, pts.shape[0], chunk):
            sigma = head.density(pts[s:s + chunk])
            out[s:s + chunk] = sigma.detach().float().cpu().numpy().reshape(-1)
            bar.advance(task, min(chunk, pts.shape[0] - s))
    return out.reshape(resolution, resolution, resolution)


def extract_mesh(sigma: np.ndarray, bound: float, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes over a density grid [R, R, R] spanning [-bound, bound]^3.

    Returns (vertices [V, 3] float32 in model space, faces [F, 3] int32).
    """
    from skimage.measure import marching_cubes

    sigma = np.nan_to_num(sigma, nan=0.0, posinf=1e6)
    lo, hi = float(sigma.min()), float(sigma.max())
    if not lo < threshold < hi:
        raise InputError(
            f"the head's density never crosses the surface level {threshold:g} (range {lo:.3g}..{hi:.3g})",
            hint="pass a --threshold inside that range",
        )
    r = sigma.shape[0]
    step = 2 * bound / (r - 1)
    verts, faces, _normals, _values = marching_cubes(sigma, level=threshold, spacing=(step, step, step))
    verts = verts - bound
    return verts.astype(np.float32), faces.astype(np.int32)


def write_ply(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Binary little-endian PLY of a triangle mesh (vertices [V, 3], faces [F, 3]), atomically."""
    vertices = np.ascontiguousarray(vertices, dtype="<f4")
    faces = np.asarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"expected vertices [V, 3] and faces [F, 3], got {vertices.shape} and {faces.shape}")
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment radnerf head surface (model space)\n"
        f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    face_rec = np.empty(len(faces), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    face_rec["n"] = 3
    face_rec["idx"] = faces
    fsutil.write_bytes(path, header.encode("ascii") + vertices.tobytes() + face_rec.tobytes())
    return Path(path)


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read back a PLY written by :func:`write_ply`: (vertices [V, 3], faces [F, 3])."""
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise InputError(f"{path}: not a PLY file")
    header = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise InputError(f"{path}: only binary little-endian PLY is read here")
    nv = next(int(x.split()[2]) for x in header if x.startswith("element vertex"))
    nf = next(int(x.split()[2]) for x in header if x.startswith("element face"))
    body = data[end + len(b"end_header\n"):]
    verts = np.frombuffer(body, dtype="<f4", count=nv * 3).reshape(nv, 3)
    face_rec = np.frombuffer(body, dtype=[("n", "u1"), ("idx", "<i4", (3,))], count=nf, offset=nv * 12)
    if nf and not (face_rec["n"] == 3).all():
        raise InputError(f"{path}: faces are not all triangles")
    if len(body) != nv * 12 + nf * 13:
        raise InputError(f"{path}: PLY body has {len(body)} bytes, expected {nv * 12 + nf * 13}")
    return verts.copy(), face_rec["idx"].copy()


def export_mesh(head: TalkingHead, path: str | os.PathLike, cfg: MeshConfig | None = None,
                bound: float | None = None) -> tuple[Path, int, int]:
    """Write the head's surface at a neutral audio code as PLY. Returns (path, vertices, faces)."""
    cfg = cfg or MeshConfig()
    path = check_writable(path, "mesh")
    if bound is None:
        model_cfg = getattr(getattr(head, "cfg", None), "model", None)
        bound = float(getattr(model_cfg, "bound", 1.0))
    sigma = density_grid(head, cfg.resolution, bound, cfg.chunk)
    verts, faces = extract_mesh(sigma, bound, cfg.threshold)
    write_ply(path, verts, faces)
    return path, len(verts), len(faces)

"""One subject's dataset in RAD-NeRF's folder format (ours and those made by RAD-NeRF's scripts).

    root/transforms_{train,val}.json   focal_len (or fl_x/fl_y), cx, cy, [h, w], frames[] of
                                       {img_id, aud_id, transform_matrix}
    root/gt_imgs/{img_id}.jpg          frames with the background replaced by bc.jpg
    root/torso_imgs/{img_id}.png       RGBA torso layer (optional: only the torso stage needs it)
    root/parsing/{img_id}.png          head BLUE (0, 0, 255) as stored, RAD-NeRF's convention (optional:
                                       the face rectangle is used instead)
    root/ori_imgs/{img_id}.lms         68 landmark rows "x y" (x = column, y = row)
    root/bc.jpg                        background
    root/aud_<kind>.npy                [T, 16, C] audio features (see FEATURE_KINDS)

Images are held as uint8 (head masks bit-packed) and converted to float per frame, so a
450x450 subject of 7,000 frames takes about 4 GiB; above ``max_preload_gb`` frames are read from
disk on demand instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from radnerf_cli.data.audio_window import audio_window
from radnerf_cli.data.rays import nerf_matrix_to_ngp
from radnerf_cli.errors import InputError, WorkspaceError

# Feature kinds in the order they are looked for, with the channel count each must have (None: any).
FEATURE_KINDS: dict[str, int | None] = {
    "whisper": None,  # ours: Whisper tiny.en encoder (384)
    "mel": None,  # ours: log-mel, weight-free
    "eo": 44,  # RAD-NeRF: wav2vec (esperanto) logits
    "ds": 29,  # RAD-NeRF: DeepSpeech logits
    "hu": 1024,  # HuBERT hidden states
}
AUD_ID_SLACK = 2  # aud_ids may run this many frames past the feature file (clamped, as RAD-NeRF does)
SPLITS = ("train", "val", "all")


def _read_image(path: Path, channels: int) -> np.ndarray:
    """Read an image as uint8 RGB (3) or RGBA (4). InputError naming the file when unreadable."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{path}: not a readable image")
    if img.dtype != np.uint8:
        img = (img / (np.iinfo(img.dtype).max / 255.0)).astype(np.uint8) if img.dtype.kind == "u" else img.astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, -1)
    if channels == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    else:
        if img.shape[2] != 4:
            raise InputError(f"{path}: expected an RGBA image (4 channels), got {img.shape[2]} channels")
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return img


def _fit(img: np.ndarray, path: Path, H: int, W: int, downscale: int) -> np.ndarray:
    """Accept an image of the dataset size (H, W) or of the full size before ``downscale``."""
    import cv2

    h, w = img.shape[:2]
    if (h, w) == (H, W):
        return img
    if downscale > 1 and (h, w) == (H * downscale, W * downscale):
        return cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)
    raise InputError(f"{path}: image is {w}x{h} but the transforms describe {W * downscale}x{H * downscale}")


def polygon_area(x: np.ndarray, y: np.ndarray) -> float:
    """Area of the polygon with vertices (x[k], y[k]) (shoelace, on centred coordinates)."""
    x = x - x.mean()
    y = y - y.mean()
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def eye_area(lms: np.ndarray, H: int, W: int) -> float:
    """RAD-NeRF's eye value: area of eye polygons 36-41 plus 42-47 as a percentage of H*W."""
    left = polygon_area(lms[36:42, 0], lms[36:42, 1])
    right = polygon_area(lms[42:48, 0], lms[42:48, 1])
    return (left + right) / (H * W) * 100.0


def lips_rect(lms: np.ndarray, H: int, W: int) -> list[int]:
    """Square around the outer lips (48-59): (xmin, xmax, ymin, ymax), x = rows, y = columns."""
    xmin, xmax = int(lms[48:60, 1].min()), int(lms[48:60, 1].max())
    ymin, ymax = int(lms[48:60, 0].min()), int(lms[48:60, 0].max())
    cx, cy = (xmin + xmax) // 2, (ymin + ymax) // 2
    half = max(max(xmax - xmin, ymax - ymin) // 2, 1)
    return [max(0, cx - half), min(H, cx + half), max(0, cy - half), min(W, cy + half)]


def face_rect(lms: np.ndarray, H: int, W: int) -> list[int]:
    """RAD-NeRF's lower-face rectangle (nose bottom to chin, face width): (xmin, xmax, ymin, ymax)."""
    xmin, xmax = int(lms[31:36, 1].min()), int(lms[:, 1].max())
    ymin, ymax = int(lms[:, 0].min()), int(lms[:, 0].max())
    return [max(0, xmin), min(H, xmax), max(0, ymin), min(W, ymax)]


def head_mask(par: np.ndarray) -> np.ndarray:
    """Head pixels of an RGB parsing image [H, W, 3] as stored on disk: bool [H, W].

    RAD-NeRF's face parsing writes the head as BGR (255, 0, 0) with cv2, so in RGB it is blue.
    """
    return (par[..., 2] > 127) & (par[..., 0] < 128) & (par[..., 1] < 128)


def find_feature_file(root: Path, feature: str | None) -> tuple[Path, str]:
    """The audio feature file and its kind. ``feature``: a kind (``eo``), a file name or a path."""
    root = Path(root)
    if feature is None:
        for kind in FEATURE_KINDS:
            p = root / f"aud_{kind}.npy"
            if p.is_file():
                return p, kind
        names = ", ".join(f"aud_{k}.npy" for k in FEATURE_KINDS)
        raise WorkspaceError(
            f"{root}: no audio features ({names})",
            hint="run `radnerf preprocess` (audio step) or copy RAD-NeRF's aud_eo.npy / aud_ds.npy here",
        )
    if feature.endswith(".npy"):
        p = Path(feature)
        p = p if p.is_absolute() or p.parent != Path(".") else root / p
        kind = p.stem[4:] if p.stem.startswith("aud_") else p.stem
    else:
        kind = feature
        p = root / f"aud_{kind}.npy"
    if not p.is_file():
        raise WorkspaceError(f"{p}: audio feature file not found")
    return p, kind


def load_features(path: Path, kind: str) -> Tensor:
    """Load and check a [T, 16, C] feature file -> float32 tensor."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable .npy file ({e})") from None
    if arr.ndim == 2:
        raise InputError(
            f"{path}: holds [N, 16] labels (shape {list(arr.shape)}); features must be [N, 16, C]",
            hint="re-extract logits or features, not argmax labels",
        )
    if arr.ndim != 3 or arr.shape[1] != 16 or arr.shape[0] == 0:
        raise InputError(f"{path}: audio features must be [N_frames, 16, C], got shape {list(arr.shape)}")
    want = FEATURE_KINDS.get(kind)
    if want is not None and arr.shape[2] != want:
        raise InputError(f"{path}: '{kind}' features have C = {want}, this file has C = {arr.shape[2]}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{path}: audio features must be floating point, got {arr.dtype}")
    if not np.isfinite(arr).all():
        raise InputError(f"{path}: audio features contain NaN or infinite values")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _load_transforms(root: Path, split: str) -> tuple[dict, list[dict], list[Path]]:
    names = ["train", "val"] if split == "all" else [split]
    paths = [root / f"transforms_{n}.json" for n in names]
    meta: dict | None = None
    frames: list[dict] = []
    for p in paths:
        if not p.is_file():
            raise WorkspaceError(f"{p}: not found", hint="run `radnerf preprocess` for this subject first")
        try:
            d = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{p}: not valid JSON ({e})") from None
        if not isinstance(d, dict) or not isinstance(d.get("frames"), list) or not d["frames"]:
            raise InputError(f"{p}: needs a non-empty 'frames' list")
        meta = meta or d
        for k, f in enumerate(d["frames"]):
            if not isinstance(f, dict) or "img_id" not in f or "transform_matrix" not in f:
                raise InputError(f"{p}: frame {k} needs 'img_id' and 'transform_matrix'")
            if "aud_id" not in f:
                raise InputError(f"{p}: frame {k} (img_id {f['img_id']}) has no 'aud_id'")
            m = np.asarray(f["transform_matrix"], dtype=np.float64)
            if m.shape != (4, 4) or not np.isfinite(m).all():
                raise InputError(f"{p}: frame {k} (img_id {f['img_id']}): transform_matrix must be a finite 4x4 matrix")
            frames.append(f)
    assert meta is not None
    return meta, frames, paths


def _intrinsics(meta: dict, path: Path, downscale: int) -> tuple[int, int, np.ndarray]:
    try:
        if "h" in meta and "w" in meta:
            H, W = int(meta["h"]), int(meta["w"])
        else:
            H, W = int(meta["cy"]) * 2, int(meta["cx"]) * 2
        if "focal_len" in meta:
            fx = fy = float(meta["focal_len"])
        elif "fl_x" in meta or "fl_y" in meta:
            fx = float(meta.get("fl_x", meta.get("fl_y")))
            fy = float(meta.get("fl_y", meta.get("fl_x")))
        elif "camera_angle_x" in meta:
            fx = fy = W / (2 * np.tan(float(meta["camera_angle_x"]) / 2))
        else:
            raise KeyError("focal_len")
        cx = float(meta.get("cx", W / 2))
        cy = float(meta.get("cy", H / 2))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: missing or invalid camera field {e} (needs focal_len, cx, cy)") from None
    if H <= 0 or W <= 0 or fx <= 0 or fy <= 0:
        raise InputError(f"{path}: invalid camera (H={H}, W={W}, focal {fx}, {fy})")
    intr = np.array([fx / downscale, fy / downscale, cx / downscale, cy / downscale], dtype=np.float64)
    return H // downscale, W // downscale, intr


class SubjectData:
    """Poses, intrinsics, audio features, eye values, landmark rectangles and images of one split.

    >>> data = SubjectData(root, split="val")      # doctest: +SKIP
    >>> f = data.frame(0); f["image"].shape         # doctest: +SKIP
    torch.Size([450, 450, 3])
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        feature: str | None = None,
        downscale: int = 1,
        preload: bool = True,
        scale: float = 4.0,
        offset: Sequence[float] = (0.0, 0.0, 0.0),
        max_preload_gb: float = 8.0,
        show_progress: bool = True,
    ):
        root = Path(root)
        if split not in SPLITS:
            raise InputError(f"unknown split '{split}' (choose from {', '.join(SPLITS)})")
        if downscale < 1:
            raise InputError(f"downscale must be >= 1, got {downscale}")
        if not root.is_dir():
            raise WorkspaceError(f"{root}: dataset folder not found")
        self.root, self.split, self.downscale = root, split, int(downscale)
        self.scale, self.offset = float(scale), tuple(float(v) for v in offset)
        meta, frames, tpaths = _load_transforms(root, split)
        self.H, self.W, self.intrinsics = _intrinsics(meta, tpaths[0], self.downscale)
        H, W = self.H, self.W
        self.frame_ids: list[int] = [int(f["img_id"]) for f in frames]

        # poses
        self.poses_raw = np.stack([np.asarray(f["transform_matrix"], dtype=np.float32) for f in frames])
        self.poses = torch.from_numpy(nerf_matrix_to_ngp(self.poses_raw, self.scale, self.offset))

        # audio
        fpath, self.feature_kind = find_feature_file(root, feature)
        self.feature_path = fpath
        self.auds = load_features(fpath, self.feature_kind)
        self.feature_dim = int(self.auds.shape[2])
        T = self.auds.shape[0]
        aud_ids = np.array([int(f["aud_id"]) for f in frames])
        if aud_ids.min() < 0:
            raise InputError(f"{tpaths[0]}: negative aud_id {int(aud_ids.min())}")
        if aud_ids.max() > T - 1 + AUD_ID_SLACK:
            raise InputError(
                f"{fpath}: has {T} frames of audio features but the transforms refer to aud_id {int(aud_ids.max())}",
                hint="the features were extracted from a shorter audio than the video; re-extract them",
            )
        self.aud_ids = torch.from_numpy(np.minimum(aud_ids, T - 1)).long()

        # file lists, checked up front
        self.image_paths = [root / "gt_imgs" / f"{i}.jpg" for i in self.frame_ids]
        _require_all(self.image_paths, "gt_imgs")
        self.torso_paths = _optional_all([root / "torso_imgs" / f"{i}.png" for i in self.frame_ids], "torso_imgs")
        self.parsing_paths = _optional_all([root / "parsing" / f"{i}.png" for i in self.frame_ids], "parsing")
        lms_paths = [root / "ori_imgs" / f"{i}.lms" for i in self.frame_ids]
        _require_all(lms_paths, "ori_imgs (.lms landmarks)")

        # landmarks -> eye values and rectangles
        eyes, lips, faces, all_lms = [], [], [], []
        for p in lms_paths:
            lms = _read_lms(p) / self.downscale
            all_lms.append(lms)
            eyes.append(eye_area(lms, H, W))
            lips.append(lips_rect(lms, H, W))
            faces.append(face_rect(lms, H, W))
        self.eye: Tensor | None = torch.tensor(eyes, dtype=torch.float32)  # [N]
        self.lips_rects = torch.tensor(lips, dtype=torch.long)  # [N, 4]
        self.face_rects = torch.tensor(faces, dtype=torch.long)  # [N, 4]
        self.lms68 = np.stack(all_lms) if all_lms else np.zeros((0, 68, 2))  # [N, 68, 2] (x, y) at this scale

        # background
        bc = root / "bc.jpg"
        if not bc.is_file():
            raise WorkspaceError(f"{bc}: background image not found", hint="run the preprocess background step")
        bg = _read_image(bc, 3)
        if bg.shape[:2] != (H, W):
            import cv2

            bg = cv2.resize(bg, (W, H), interpolation=cv2.INTER_AREA)
        self.bg = torch.from_numpy(bg.astype(np.float32) / 255.0)  # [H, W, 3]

        # images: uint8 in memory when they fit in the budget
        n = len(self.frame_ids)
        per_frame = H * W * 3 + (H * W * 4 if self.torso_paths else 0) + (H * W + 7) // 8
        self.preloaded = bool(preload) and n * per_frame <= max_preload_gb * 2**30
        if preload and not self.preloaded:
            from radnerf_cli.console import err_console

            err_console.print(
                f"[yellow]{n} frames need {n * per_frame / 2**30:.1f} GiB (> {max_preload_gb:g} GiB): "
                "reading images from disk per frame[/yellow]"
            )
        self._images: np.ndarray | None = None  # [N, H, W, 3] uint8
        self._torso: np.ndarray | None = None  # [N, H, W, 4] uint8
        self._body: Tensor | None = None  # [N, BODY_DIM], see body_pose()
        self._masks: np.ndarray | None = None  # [N, ceil(H*W/8)] packed bits
        if self.preloaded:
            self._preload(show_progress)

    # ---- loading ---------------------------------------------------------------------------
    def _load_uint8(self, i: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(image [H,W,3], torso [H,W,4] or None, head mask bits) of frame i, from disk."""
        H, W, ds = self.H, self.W, self.downscale
        img = _fit(_read_image(self.image_paths[i], 3), self.image_paths[i], H, W, ds)
        torso = None
        if self.torso_paths:
            torso = _fit(_read_image(self.torso_paths[i], 4), self.torso_paths[i], H, W, ds)
        if self.parsing_paths:
            par = _fit(_read_image(self.parsing_paths[i], 3), self.parsing_paths[i], H, W, ds)
            mask = head_mask(par)
        else:
            mask = np.zeros((H, W), dtype=bool)
            xmin, xmax, ymin, ymax = self.face_rects[i].tolist()
            mask[xmin:xmax, ymin:ymax] = True
        return img, torso, np.packbits(mask.reshape(-1))

    def _preload(self, show_progress: bool) -> None:
        n, H, W = len(self.frame_ids), self.H, self.W
        self._images = np.empty((n, H, W, 3), dtype=np.uint8)
        self._torso = np.empty((n, H, W, 4), dtype=np.uint8) if self.torso_paths else None
        self._masks = np.empty((n, (H * W + 7) // 8), dtype=np.uint8)

        def work(i: int) -> int:
            img, torso, bits = self._load_uint8(i)
            self._images[i] = img
            if self._torso is not None:
                self._torso[i] = torso
            self._masks[i] = bits
            return i

        with ThreadPoolExecutor(max_workers=4) as ex:
            results = ex.map(work, range(n))
            if show_progress and n > 50:
                from radnerf_cli.console import progress

                with progress("frames") as bar:
                    task = bar.add_task(f"loading {self.split} frames", total=n)
                    for _ in results:
                        bar.advance(task)
            else:
                for _ in results:
                    pass

    # ---- access ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame_ids)

    def frame(self, i: int) -> dict:
        """Everything the trainer needs for frame ``i`` (float tensors in [0, 1], on the CPU)."""
        if not 0 <= i < len(self):
            raise IndexError(f"frame {i} out of range (0..{len(self) - 1})")
        if self.preloaded:
            img, torso, bits = self._images[i], (self._torso[i] if self._torso is not None else None), self._masks[i]
        else:
            img, torso, bits = self._load_uint8(i)
        H, W = self.H, self.W
        mask = np.unpackbits(bits, count=H * W).reshape(H, W).astype(bool)
        return {
            "image": torch.from_numpy(img.astype(np.float32) / 255.0),  # [H, W, 3]
            "torso_image": None if torso is None else torch.from_numpy(torso.astype(np.float32) / 255.0),  # [H, W, 4]
            "face_mask": torch.from_numpy(mask),  # [H, W] bool
            "pose": self.poses[i],  # [4, 4] ngp convention
            "aud": audio_window(self.auds, int(self.aud_ids[i])),  # [8, 16, C]
            "eye": None if self.eye is None else self.eye[i : i + 1],  # [1]
            "index": i,
            "lips_rect": self.lips_rects[i],  # [4]
            "face_rect": self.face_rects[i],  # [4] RAD-NeRF's lower-face rectangle
            "bg": self.bg,  # [H, W, 3]
        }

    def image_uint8(self, i: int) -> np.ndarray:
        """Ground-truth image of frame ``i`` as uint8 [H, W, 3]."""
        if self.preloaded:
            return self._images[i]
        return _fit(_read_image(self.image_paths[i], 3), self.image_paths[i], self.H, self.W, self.downscale)

    def body_pose(self) -> Tensor | None:
        """[N, BODY_DIM] body pose of every frame (:mod:`radnerf_cli.data.body_pose`), None without torso layers.

        Measured against the torso layer of the first training frame, so that both splits agree.
        Computed once per dataset object."""
        if not self.torso_paths:
            return None
        if self._body is None:
            from radnerf_cli.data.body_pose import body_track

            _, frames, _ = _load_transforms(self.root, "train")
            ref_path = self.root / "torso_imgs" / f"{int(frames[0]['img_id'])}.png"
            if not ref_path.is_file():
                raise WorkspaceError(f"{ref_path}: not found (the body pose is measured against this torso layer)",
                                     hint="re-run preprocess")
            ref = _fit(_read_image(ref_path, 4), ref_path, self.H, self.W, self.downscale)
            self._body = torch.from_numpy(body_track((self.torso_uint8(i) for i in range(len(self))), ref))
        return self._body

    def torso_uint8(self, i: int) -> np.ndarray | None:
        """Torso layer of frame ``i`` as uint8 RGBA [H, W, 4], or None when the dataset has none."""
        if not self.torso_paths:
            return None
        if self._torso is not None:
            return self._torso[i]
        return _fit(_read_image(self.torso_paths[i], 4), self.torso_paths[i], self.H, self.W, self.downscale)


def _read_lms(path: Path) -> np.ndarray:
    try:
        lms = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable landmark file ({e})") from None
    if lms.shape != (68, 2) or not np.isfinite(lms).all():
        raise InputError(f"{path}: expected 68 rows of 'x y' landmarks, got shape {list(lms.shape)}")
    return lms


def _require_all(paths: list[Path], what: str) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise WorkspaceError(
            f"{missing[0]}: not found ({len(missing)} of {len(paths)} frames miss their {what} file)",
            hint="the transforms refer to frames the dataset does not have; re-run preprocess",
        )


def _optional_all(paths: list[Path], what: str) -> list[Path]:
    """All paths when every one exists, [] when the folder is absent; an error when only some exist."""
    if not paths or not paths[0].parent.is_dir():
        return []
    present = [p.is_file() for p in paths]
    if all(present):
        return paths
    if not any(present):
        return []
    first = paths[present.index(False)]
    raise WorkspaceError(f"{first}: not found ({present.count(False)} of {len(paths)} frames miss their {what} file)")

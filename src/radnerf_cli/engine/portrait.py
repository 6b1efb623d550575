"""Portrait mode: the subject's own video at its original size and framing, only the face replaced.

For every output frame the real frame of the pose track (the same frame whose pose and blink the
model is given) is read at full resolution, only the rays of the face region are rendered, at the
model's size, and the result is pasted into the real frame through a feathered mask (see
:mod:`radnerf_cli.engine.portrait_mask`). Outside the mask the output is the real frame.

A :class:`PortraitSource` says where the real frames come from: the subject's source video (through
``source.json``, see :mod:`radnerf_cli.preprocess.source_map`) or the frames embedded in a bundle.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from radnerf_cli.engine.portrait_frames import FrameReader
from radnerf_cli.engine.portrait_mask import MaskConfig, blend_mask, face_region, fill_under_jaw
from radnerf_cli.errors import InputError, WorkspaceError

if TYPE_CHECKING:
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.workspace import Subject

PORTRAIT_KEY = "portrait"  # bundle: header entry and tensor prefix


@dataclass
class PortraitSource:
    """Real frames of a pose track and where the dataset crop sits in them."""

    video: Path  # file the frames are decoded from
    fps: float | None  # decode rate (None: every frame of the file, as stored)
    frame_index: np.ndarray  # [P] frame of ``video`` for each pose-track entry
    lms: np.ndarray  # [P, 68, 2] landmarks of each entry, dataset pixels
    crop: tuple[int, int, int, int]  # (x, y, w, h) of the dataset crop in source pixels
    width: int  # source frame size
    height: int
    size: int  # dataset crop side, pixels (lms are in this grid)
    _tmp: Any = field(default=None, repr=False)  # keeps an extracted bundle video alive

    def reader(self, track_order: Sequence[int]) -> FrameReader:
        """Frames of the given pose-track entries, fetched in this order."""
        order = [int(self.frame_index[k]) for k in track_order]
        return FrameReader(self.video, self.fps, order, size=(self.height, self.width))

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _read_lms(root: Path, ids: Sequence[int]) -> np.ndarray:
    out = []
    for i in ids:
        p = root / "ori_imgs" / f"{i}.lms"
        try:
            out.append(np.loadtxt(p, dtype=np.float64).reshape(68, 2))
        except (OSError, ValueError):
            raise WorkspaceError(f"{p}: missing or unreadable landmarks", hint="re-run `radnerf preprocess`") from None
    return np.stack(out).astype(np.float32)


def split_ids(root: Path, split: str) -> list[int]:
    """img_ids of ``transforms_{split}.json`` in order."""
    p = root / f"transforms_{split}.json"
    try:
        return [int(f["img_id"]) for f in json.loads(p.read_text())["frames"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise WorkspaceError(f"{p}: missing or unreadable", hint="re-run `radnerf preprocess`") from None


def subject_source(subject: Subject, ids: Sequence[int], video: str | os.PathLike | None = None,
                   need_video: bool = True) -> PortraitSource:
    """The real frames ``ids`` (dataset img_ids) of ``subject``, from its source video (or ``video``).

    ``need_video=False``: the mapping alone (the recorded video path is not checked).
    """
    from radnerf_cli.preprocess.source_map import locate_video, read_source_map

    sm = read_source_map(subject.dataset)
    if sm is None:
        raise WorkspaceError(
            f"{subject.dataset}: has no source.json, so portrait mode cannot find the original frames",
            hint=f"re-run `radnerf preprocess VIDEO --subject {subject.name}` (finished steps are skipped)",
        )
    path = locate_video(sm, video, subject.name) if need_video else Path(video or sm.video)
    return PortraitSource(path, sm.fps, np.asarray(ids, dtype=np.int64), _read_lms(subject.dataset, ids),
                          tuple(sm.crop), sm.width, sm.height, sm.size)


def track_source(subject: Subject, video: str | os.PathLike | None = None, need_video: bool = True) -> PortraitSource:
    """The real frames of the pose track a model of ``subject`` plays (its training split)."""
    return subject_source(subject, split_ids(subject.dataset, "train"), video, need_video)


def check_track(src: PortraitSource, head: TalkingHead, where: str) -> None:
    """WorkspaceError when ``src`` does not cover the head's pose track entry for entry."""
    if len(src.frame_index) != len(head.pose_track):
        raise WorkspaceError(
            f"{where}: has real frames for {len(src.frame_index)} poses but the model's pose track has "
            f"{len(head.pose_track)}", hint="the dataset changed after training; re-train the subject",
        )


# ----------------------------------------------------------------------------------------------
# bundles


def bundle_tensors(src: PortraitSource, with_frames: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a bundle stores for portrait mode: (tensors, header entry). With ``with_frames`` the real
    frames of the track are embedded as one H.264 video (crf 12), in track order."""
    import torch

    from radnerf_cli import media

    tensors: dict[str, Any] = {f"{PORTRAIT_KEY}/lms": torch.from_numpy(src.lms.astype(np.float32))}
    header = {"crop": list(src.crop), "width": src.width, "height": src.height, "size": src.size,
              "fps": src.fps, "frames_included": bool(with_frames),
              "video_bytes": 0, "source_video": str(src.video)}
    tensors[f"{PORTRAIT_KEY}/frame_index"] = torch.from_numpy(src.frame_index.astype(np.int64))
    if with_frames:
        w, h = src.width + src.width % 2, src.height + src.height % 2
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d) / "frames.mp4"
            reader = src.reader(range(len(src.frame_index)))
            writer = media.VideoWriter(tmp, w, h, fps=25.0, crf=12)
            try:
                for _ in range(len(src.frame_index)):
                    writer.write(pad_even(reader.next()))
            except BaseException:
                writer.abort()
                raise
            finally:
                reader.close()
            writer.close()
            data = tmp.read_bytes()
        tensors[f"{PORTRAIT_KEY}/video"] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        header["video_bytes"] = len(data)
    return tensors, header


def bundle_source(path: str | os.PathLike, video: str | os.PathLike | None = None) -> PortraitSource:
    """The real frames a bundle carries (or, for a bundle without frames, those of ``video``)."""
    from safetensors import safe_open

    from radnerf_cli.engine.export import read_bundle_header

    header = read_bundle_header(path)
    info = header.get(PORTRAIT_KEY)
    if info is None:
        raise InputError(f"{path}: bundle has no portrait data (exported by an older radnerf)",
                         hint="export the subject again with `radnerf export`")
    with safe_open(str(path), framework="np") as f:
        lms = f.get_tensor(f"{PORTRAIT_KEY}/lms")
        index = f.get_tensor(f"{PORTRAIT_KEY}/frame_index")
        blob = f.get_tensor(f"{PORTRAIT_KEY}/video") if info["frames_included"] else None
    crop = tuple(int(v) for v in info["crop"])
    if blob is None:
        if video is None:
            raise InputError(
                f"{path}: bundle was exported without frames (--no-frames), so portrait mode has no real frames",
                hint="export it again without --no-frames, or pass the subject's source video with --source PATH",
            )
        from radnerf_cli import media

        vpath = Path(video).expanduser()
        if not vpath.is_file():
            raise InputError(f"{vpath}: source video not found")
        mi = media.probe(vpath)
        if (mi.width, mi.height) != (info["width"], info["height"]):
            raise InputError(f"{vpath}: frames are {mi.width}x{mi.height}, but the bundle's subject was made "
                             f"from a {info['width']}x{info['height']} video", hint="pass the original video")
        return PortraitSource(vpath, info["fps"], index, lms, crop, info["width"], info["height"], info["size"])
    tmp = tempfile.TemporaryDirectory(prefix="radnerf-portrait-")
    vpath = Path(tmp.name) / "frames.mp4"
    vpath.write_bytes(blob.tobytes())
    return PortraitSource(vpath, None, np.arange(len(index)), lms, crop, info["width"], info["height"],
                          info["size"], _tmp=tmp)


# ----------------------------------------------------------------------------------------------
# compositing


def pad_even(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return img
    return np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


RenderFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # pixels [n] -> (head [n, 3], weights [n])


def paste(real: np.ndarray, crop: tuple[int, int, int, int], lms: np.ndarray, H: int, W: int, size: int,
          render: RenderFn, cfg: MaskConfig | None = None, want_mask: bool = False) -> dict[str, Any]:
    """One portrait frame: ``real`` uint8 [Hs, Ws, 3] with the rendered face pasted in.

    ``lms`` [68, 2] in the ``size`` grid of the dataset crop; ``render(pixels)`` renders the head at
    row-major pixel indices of the model's H x W grid (called twice: the jaw room, then the rest of the
    mask). Returns image (uint8, the size of ``real``),
    rays (how many were rendered) and, with ``want_mask``, mask (float32 [Hs, Ws]).
    """
    x0, y0, cw, ch = crop
    crop_img = real[y0:y0 + ch, x0:x0 + cw]
    bg = cv2.resize(crop_img, (W, H), interpolation=cv2.INTER_AREA)
    reg = face_region(np.asarray(lms, dtype=np.float64) * (W / size), H, W, cfg)
    comp = fill_under_jaw(bg, reg).reshape(-1, 3).astype(np.float32) / 255.0
    weights = np.zeros(H * W, np.float32)
    n_rays = 0

    def draw(pixels: np.ndarray) -> None:
        nonlocal n_rays
        if len(pixels):
            head, ws = render(pixels)
            comp[pixels] = head + (1.0 - ws)[:, None] * comp[pixels]
            weights[pixels] = ws
            n_rays += len(pixels)

    # two passes: the mask depends on the rendered opacity only inside the jaw room, so that is
    # rendered first; then only the rest of the region the feathered mask actually covers
    draw(np.flatnonzero((reg.room & reg.render).reshape(-1)))
    mask = blend_mask(reg, weights.reshape(H, W))
    draw(np.flatnonzero(((mask > 0) & ~reg.room).reshape(-1)))
    out = real.copy()
    full_mask = np.zeros(real.shape[:2], np.float32) if want_mask else None
    rows, cols = np.nonzero(mask > 0)
    if len(rows):
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        sy, sx = ch / H, cw / W
        ys0, ys1 = int(round(r0 * sy)), int(round(r1 * sy))
        xs0, xs1 = int(round(c0 * sx)), int(round(c1 * sx))
        patch = cv2.resize(comp.reshape(H, W, 3)[r0:r1, c0:c1], (xs1 - xs0, ys1 - ys0), interpolation=cv2.INTER_LINEAR)
        m = cv2.resize(mask[r0:r1, c0:c1], (xs1 - xs0, ys1 - ys0), interpolation=cv2.INTER_LINEAR)
        m = np.clip(m, 0.0, 1.0)[..., None]
        view = out[y0 + ys0:y0 + ys1, x0 + xs0:x0 + xs1]
        blended = view.astype(np.float32) * (1.0 - m) + patch * 255.0 * m
        view[...] = np.where(m > 0, np.clip(blended + 0.5, 0, 255), view).astype(np.uint8)
        if full_mask is not None:
            full_mask[y0 + ys0:y0 + ys1, x0 + xs0:x0 + xs1] = m[..., 0]
    return {"image": out, "rays": n_rays, "mask": full_mask}


def head_render_fn(head: TalkingHead, pose: np.ndarray, aud, eye: float | None) -> RenderFn:
    """A :data:`RenderFn` rendering only the asked pixels of ``head`` at ``pose``."""

    layers = head.pixel_renderer(pose, aud, eye)

    def fn(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lay = layers(pixels)
        return lay["head"], lay["weights"]

    return fn

"""The preprocessing pipeline: steps with completion markers, resume, ``--force`` and a summary.

Each step writes its outputs atomically and, last, a marker ``.radnerf/<step>.json`` holding a key
of everything its outputs depend on. A re-run skips steps whose marker matches; once one step
runs, every later step runs too. A crash leaves no marker for the step it was in, so the next run
starts there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from radnerf_cli import fsutil, media, staging
from radnerf_cli.console import err_console, progress, results
from radnerf_cli.errors import InputError, RadNerfError
from radnerf_cli.preprocess import background, landmarks, overlays, parsing, pose, source_map, video
from radnerf_cli.preprocess.config import PreprocessConfig
from radnerf_cli.workspace import Subject

FORMAT_VERSION = 2  # bump when a step's outputs change form: older markers then no longer match
STEPS = ("video", "track", "landmarks", "pose", "background", "images", "audio", "preview")
PERSON_SIDE = 256  # person masks are kept at this resolution between steps
MAX_PENDING = 24  # image writes queued before the decoder waits
# fast PNG: light zlib, run-length strategy and one fixed row filter (libpng's adaptive filter
# choice costs more than the compression itself); older OpenCV builds lack the filter flag
_PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
if hasattr(cv2, "IMWRITE_PNG_FILTER"):
    _PNG_FAST += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and its finished children (ffmpeg), seconds."""
    import resource

    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: missing or unreadable (re-run with --force)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _write_image(path: Path, img: np.ndarray, quality: int = 95) -> None:
    """Encode with OpenCV (fast) and write atomically. RGB / RGBA / gray uint8."""
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    if path.suffix == ".jpg":
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    else:
        ok, buf = cv2.imencode(".png", img, _PNG_FAST)
    if not ok:
        raise RadNerfError(f"{path}: image encoding failed")
    fsutil.write_bytes(path, buf.tobytes())


class _Writer:
    """Background image writes on a small thread pool (encoders release the GIL)."""

    def __init__(self, workers: int = 2):
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._pending: deque = deque()

    def put(self, path: Path, img: np.ndarray, quality: int = 95) -> None:
        self._pending.append(self._pool.submit(_write_image, path, img, quality))
        while len(self._pending) > MAX_PENDING:
            self._pending.popleft().result()

    def put_bytes(self, path: Path, encode, *args) -> None:
        """Write ``encode(*args)`` (bytes) at ``path`` in the background."""
        self._pending.append(self._pool.submit(lambda: fsutil.write_bytes(path, encode(*args))))
        while len(self._pending) > MAX_PENDING:
            self._pending.popleft().result()

    def close(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)


class Pipeline:
    """Runs the steps for one video into one subject folder."""

    def __init__(self, video_path: str | os.PathLike, subject: Subject, cfg: PreprocessConfig, root: Path | None = None):
        self.video_path = Path(video_path)
        self.subject = subject
        self.cfg = cfg
        self.root = root or subject.root  # where the dataset is built (a staging folder when one exists)
        self.state = self.root / subject.state_dir.name
        self.timings: dict[str, dict] = {}
        self.src: video.SourceInfo | None = None

    # ---- markers -------------------------------------------------------------------------------
    def _key(self, step: str) -> str:
        st = self.video_path.stat()
        c = asdict(self.cfg)
        c.pop("force")
        if step not in ("audio", "preview"):
            c.pop("audio_features")
            c.pop("import_features")
        elif c["import_features"]:
            p = Path(c["import_features"])
            c["import_features"] = [str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] if p.exists() else str(p)
        ident = {"format": FORMAT_VERSION, "video": str(self.video_path.resolve()), "bytes": st.st_size, "mtime": st.st_mtime_ns, "cfg": c}
        return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]

    def _marker(self, step: str) -> Path:
        return self.state / f"{step}.json"

    def _done(self, step: str) -> dict | None:
        p = self._marker(step)
        if not p.is_file():
            return None
        try:
            m = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return m if m.get("key") == self._key(step) else None

    def _finish(self, step: str, seconds: float, items: int, **info) -> dict:
        fsutil.sync()  # the step's outputs reach the disk before its marker says they exist
        m = {"key": self._key(step), "seconds": round(seconds, 3), "items": items, **info}
        fsutil.write_json(self._marker(step), m)
        return m

    def up_to_date(self) -> bool:
        """Whether every step's marker matches (a re-run would change nothing)."""
        return not self.cfg.force and all(self._done(step) is not None for step in STEPS)

    # ---- run -----------------------------------------------------------------------------------
    def run(self, until: str | None = None) -> dict:
        """Run (or skip) every step in order, or only up to and including ``until``."""
        cfg = self.cfg
        if until is not None and until not in STEPS:
            raise ValueError(f"unknown step {until!r}; steps: {', '.join(STEPS)}")
        self.src = video.check_source(self.video_path, cfg)
        if cfg.import_features and not Path(cfg.import_features).is_file():
            raise InputError(f"{cfg.import_features}: feature file not found")
        created = not self.root.exists()
        redo, ran_any = cfg.force, False
        try:
            for step in STEPS:
                marker = None if redo else self._done(step)
                if marker is not None:
                    self.timings[step] = {**marker, "skipped": True}
                    if step == until:
                        return self.timings
                    continue
                if not ran_any and STEPS.index(step) <= STEPS.index("pose"):
                    # the frames are about to change: until the poses are written again this
                    # folder must not look like a finished dataset
                    for name in ("transforms_train.json", "transforms_val.json"):
                        (self.root / name).unlink(missing_ok=True)
                redo = ran_any = True
                self._marker(step).unlink(missing_ok=True)
                t0, c0 = time.perf_counter(), _cpu_seconds()
                info = getattr(self, f"_step_{step}")()
                items = info.pop("items", 0)
                info["cpu_seconds"] = round(_cpu_seconds() - c0, 3)
                m = self._finish(step, time.perf_counter() - t0, items, **info)
                self.timings[step] = {**m, "skipped": False}
                if step == until:
                    return self.timings
        except InputError:
            if created:  # bad input found on a first run: leave nothing behind that looks like a dataset
                shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self.summary()

    # ---- steps ---------------------------------------------------------------------------------
    def _step_video(self) -> dict:
        assert self.src is not None
        fb = video.detect_faces(self.src, self.cfg)
        track = video.track_main_face(fb)
        crop = video.choose_crop(self.src, track, self.cfg, fb.canvas)
        info = {"crop": list(crop), "canvas": list(fb.canvas or ()), "max_faces": fb.max_faces,
                "source": [self.src.width, self.src.height],
                "source_fps": self.src.fps, "duration": self.src.duration}
        if warning := video.upscale_warning(self.src, crop, self.cfg):
            err_console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
            info["warning"] = warning
        fsutil.write_json(self.state / "video_info.json", info)
        return {"items": len(fb.boxes), **info}

    def _video_info(self) -> dict:
        return json.loads((self.state / "video_info.json").read_text())

    def _step_track(self) -> dict:
        """One decode pass: write ori_imgs, run the face mesh and the person segmentation."""
        cfg, src = self.cfg, self.src
        assert src is not None
        vi = self._video_info()
        (self.root / "ori_imgs").mkdir(parents=True, exist_ok=True)
        meshes, found = [], []
        empty = np.zeros((landmarks.N_MESH, 3), np.float32)
        writer = _Writer()
        total = video.expected_frames(src, cfg) or None
        mt = landmarks.MeshTracker(max_faces=2 if vi["max_faces"] > 1 else 1)
        seg = parsing.Segmenter()
        try:
            # person masks stream to disk (a long clip's masks would not fit in memory)
            with fsutil.atomic_path(self.state / "person.u8") as ptmp, open(ptmp, "wb") as person_file, \
                    progress("frames") as bar:
                task = bar.add_task("frames + landmarks", total=total)
                for i, frame in enumerate(video.stream_frames(src, tuple(vi["crop"]), cfg, tuple(vi.get("canvas") or ()) or None)):
                    writer.put(self.root / "ori_imgs" / f"{i}.jpg", frame, cfg.jpeg_quality)
                    m = mt.process(frame)
                    found.append(m is not None)
                    meshes.append(empty if m is None else m)
                    person_file.write(seg.person(frame, PERSON_SIDE).tobytes())
                    bar.advance(task)
                bar.update(task, total=len(found))
        finally:
            writer.close()
            mt.close()
            seg.close()
        n = len(found)
        self._remove_stale(n)
        if total and n < 0.9 * total - 2:
            raise InputError(f"{src.path}: decoding stopped at frame {n} of about {total} (the file is truncated or damaged)")
        if n < cfg.min_duration * cfg.fps:
            raise InputError(f"{src.path}: video is {n / cfg.fps:.1f} s long; at least {cfg.min_duration:g} s are needed")
        fsutil.save_npy(self.state / "mesh_raw.npy", np.stack(meshes).astype(np.float32))
        fsutil.save_npy(self.state / "found.npy", np.array(found, bool))
        return {"items": n, "frames": n, "with_face": int(np.sum(found))}

    def _remove_stale(self, n: int) -> None:
        """Files of frames >= n left by an earlier, longer video (the rest are overwritten in place)."""
        for d in ("ori_imgs", "parsing", "gt_imgs", "torso_imgs"):
            folder = self.root / d
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                stem = p.name.split(".")[0]
                if stem.isdigit() and int(stem) >= n:
                    p.unlink(missing_ok=True)

    def _persons(self) -> np.ndarray:
        """Person masks of every frame, uint8 [N, PERSON_SIDE, PERSON_SIDE], memory-mapped."""
        path = self.state / "person.u8"
        n = path.stat().st_size // (PERSON_SIDE * PERSON_SIDE)
        return np.memmap(path, dtype=np.uint8, mode="r", shape=(n, PERSON_SIDE, PERSON_SIDE))

    def _step_landmarks(self) -> dict:
        cfg = self.cfg
        mesh = np.load(self.state / "mesh_raw.npy")
        found = np.load(self.state / "found.npy")
        filled, usable, rep = landmarks.fill_dropouts(mesh, found, cfg.fps, cfg.max_gap_seconds,
                                                      cfg.max_missing_fraction, str(self.video_path))
        lms = landmarks.to_ibug68(filled)[:, :, :2]
        for i, pts in enumerate(lms):
            fsutil.write_text(self.root / "ori_imgs" / f"{i}.lms", "\n".join(f"{x:.3f} {y:.3f}" for x, y in pts) + "\n")
        fsutil.save_npy(self.root / "landmarks_mesh.npy", filled.astype(np.float32))
        fsutil.save_npy(self.state / "usable.npy", usable)
        return {"items": len(lms), "missing": rep.missing, "interpolated": rep.interpolated, "dropped": rep.dropped}

    def _step_pose(self) -> dict:
        cfg = self.cfg
        mesh = np.load(self.root / "landmarks_mesh.npy").astype(np.float64)
        usable = np.load(self.state / "usable.npy")
        c = cfg.size / 2.0
        idx = np.flatnonzero(usable)
        sel = mesh[idx[np.linspace(0, len(idx) - 1, min(300, len(idx))).astype(int)]]
        all_ok = np.ones(len(sel), bool)

        first = pose.reference_shape(pose.unproject_mesh(sel, 2.5 * cfg.size, c, c), all_ok, cfg.eye_distance_m,
                                     cfg.head_depth_m)
        rigid = pose.rigid_points(first)  # the pose follows the skull, not the jaw, lips or eyelids

        def full_shape(f: float) -> np.ndarray:
            return pose.reference_shape(pose.unproject_mesh(sel, f, c, c), all_ok, cfg.eye_distance_m, cfg.head_depth_m,
                                        align=rigid)

        res = pose.estimate(mesh[:, rigid, :2], lambda f: full_shape(f)[rigid], cfg.size, usable, cfg.focal_min,
                            cfg.focal_max, cfg.focal_frames, cfg.smooth_sigma, cfg.prior_distance_m)
        shape = full_shape(res.focal)
        K = pose.intrinsics(res.focal, c, c)
        s68 = landmarks.to_ibug68(shape)
        err68 = np.array([np.linalg.norm(pose.project(s68, res.R[i], res.t[i], K) - landmarks.to_ibug68(mesh[i, :, :2]),
                                         axis=1).mean() for i in range(len(mesh))])
        c2w = pose.to_camera_to_world(res.R, res.t)
        lms68 = landmarks.to_ibug68(mesh)[:, :, :2]
        eyes = landmarks.eye_ratio(lms68, cfg.size, cfg.size)
        ids = idx.tolist()
        split = int(len(ids) * 10 / 11)
        for name, part in (("transforms_train.json", ids[:split]), ("transforms_val.json", ids[split:])):
            doc = {"focal_len": res.focal, "cx": c, "cy": c, "frames": [
                {"img_id": i, "aud_id": i, "transform_matrix": c2w[i].tolist(), "eye_ratio": float(eyes[i])}
                for i in part]}
            fsutil.write_json(self.root / name, doc)
        np.savez(self.state / "pose.tmp.npz", R=res.R, t=res.t, R_raw=res.R_raw, t_raw=res.t_raw, err=res.err_px,
                 shape=shape, rigid=rigid, focal=res.focal, cuts=res.cuts)
        os.replace(self.state / "pose.tmp.npz", self.state / "pose.npz")
        return {"items": len(mesh), "focal": res.focal, "focal_observable": res.focal_curve.get("observable"),
                "reproj_px_mean": float(res.err_px[usable].mean()), "reproj_px_max": float(res.err_px[usable].max()),
                "rigid_points": len(rigid), "cuts": res.cuts.tolist(), "reproj68_px_mean": float(err68[usable].mean()),
                "jitter_raw_deg": res.jitter_raw, "jitter_smooth_deg": res.jitter_smooth,
                "camera_distance": float(np.median(np.linalg.norm(c2w[usable, :3, 3], axis=1))),
                "train": split, "val": len(ids) - split}

    def _step_background(self) -> dict:
        cfg = self.cfg
        persons = self._persons()
        n = len(persons)
        pick = np.unique(np.linspace(0, n - 1, min(cfg.background_samples, n)).astype(int))
        frames = (_read_rgb(self.root / "ori_imgs" / f"{i}.jpg") for i in pick)
        bc, seen = background.estimate_background(frames, (persons[i] for i in pick), cfg.size)
        _write_image(self.root / "bc.jpg", bc, cfg.jpeg_quality)
        return {"items": len(pick), "background_seen": seen}

    def _step_images(self) -> dict:
        """parsing/, gt_imgs/, torso_imgs/ for every frame."""
        cfg = self.cfg
        persons = self._persons()
        mesh = np.load(self.root / "landmarks_mesh.npy")
        bc = _read_rgb(self.root / "bc.jpg")
        for d in ("parsing", "gt_imgs", "torso_imgs"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        fr = np.zeros(4)
        writer = _Writer()
        try:
            with progress("frames") as bar:
                task = bar.add_task("parsing + images", total=len(mesh))
                for i in range(len(mesh)):
                    frame = _read_rgb(self.root / "ori_imgs" / f"{i}.jpg")
                    labels = parsing.label_frame(np.asarray(persons[i]), mesh[i], cfg.size)
                    fr += np.bincount(labels.ravel(), minlength=4)[:4]
                    writer.put_bytes(self.root / "parsing" / f"{i}.png", parsing.parsing_png, labels)
                    writer.put(self.root / "gt_imgs" / f"{i}.jpg", background.composite(frame, labels, bc), cfg.jpeg_quality)
                    writer.put(self.root / "torso_imgs" / f"{i}.png", parsing.torso_rgba(frame, labels, mesh[i]))
                    bar.advance(task)
        finally:
            writer.close()
        fr /= fr.sum()
        return {"items": len(mesh), "fractions": {"background": fr[0], "head": fr[1], "neck": fr[2], "torso": fr[3]}}

    def _step_audio(self) -> dict:
        from radnerf_cli.audio import extract_features, feature_file_name, fit_frames, load_feature_file

        cfg = self.cfg
        n = int(np.load(self.state / "found.npy").shape[0])
        audio = media.load_audio(self.video_path, 16000)
        media.write_wav(self.root / "aud.wav", audio, 16000)
        info: dict = {"items": n}
        # features of other kinds written earlier stay; only this kind's file is (re)written
        if cfg.import_features:
            feats, kind = load_feature_file(cfg.import_features)
            if abs(len(feats) - n) > 1:
                info["warning"] = f"{Path(cfg.import_features).name} has {len(feats)} windows for {n} frames; fitted"
            feats = fit_frames(feats, n)
        else:
            kind = cfg.audio_features
            feats = extract_features(audio, kind, n_frames=n, progress=True, source=str(self.video_path))
        name = feature_file_name(kind)
        fsutil.save_npy(self.root / name, np.asarray(feats, dtype=np.float32))
        info.update({"kind": kind, "file": name, "shape": list(np.shape(feats)), "seconds_audio": len(audio) / 16000})
        return info

    def _step_preview(self) -> dict:
        cfg = self.cfg
        mesh = np.load(self.root / "landmarks_mesh.npy")
        persons = self._persons()
        p = np.load(self.state / "pose.npz")
        K = pose.intrinsics(float(p["focal"]), cfg.size / 2, cfg.size / 2)
        n = len(mesh)
        pick = np.unique(np.linspace(0, n - 1, min(cfg.preview_frames, n)).astype(int))
        tiles, caps = [], []
        for i in pick:
            frame = _read_rgb(self.root / "ori_imgs" / f"{i}.jpg")
            labels = parsing.label_frame(np.asarray(persons[i]), mesh[i], cfg.size)
            tiles.append(overlays.draw_frame(frame, landmarks.to_ibug68(mesh[i])[:, :2], labels, p["R"][i], p["t"][i], K))
            caps.append(f"frame {i}  ({i / cfg.fps:.1f} s)")
        sheet = overlays.contact_sheet(tiles, caps)
        cfg_dir = self.root / self.subject.preview_dir.name
        _write_image(cfg_dir / "preprocess_overlays.png", sheet)
        overlays.pose_plot(cfg_dir / "preprocess_pose.png", pose.euler_deg(p["R_raw"]), pose.euler_deg(p["R"]),
                           p["t_raw"], p["t"], cfg.fps, p["cuts"])
        return {"items": len(pick), "files": ["preview/preprocess_overlays.png", "preview/preprocess_pose.png"]}

    # ---- summary -------------------------------------------------------------------------------
    def summary(self) -> dict:
        t = self.timings
        s = {
            "subject": self.subject.name,
            "folder": str(self.subject.root),
            "frames": t["track"].get("frames"),
            "frames_with_face": t["track"].get("with_face"),
            "interpolated": t["landmarks"].get("interpolated"),
            "dropped": t["landmarks"].get("dropped"),
            "crop": t["video"].get("crop"),
            "source": t["video"].get("source"),
            "focal": t["pose"].get("focal"),
            "focal_observable": t["pose"].get("focal_observable"),
            "camera_distance": t["pose"].get("camera_distance"),
            "reproj_px_mean": t["pose"].get("reproj_px_mean"),
            "reproj68_px_mean": t["pose"].get("reproj68_px_mean"),
            "jitter_raw_deg": t["pose"].get("jitter_raw_deg"),
            "cuts": t["pose"].get("cuts"),
            "jitter_smooth_deg": t["pose"].get("jitter_smooth_deg"),
            "parsing": t["images"].get("fractions"),
            "audio": {k: t["audio"].get(k) for k in ("kind", "file", "shape", "warning") if k in t["audio"]},
            "steps": {k: {"seconds": v["seconds"], "cpu_seconds": v.get("cpu_seconds"), "items": v["items"],
                          "skipped": v["skipped"]} for k, v in t.items()},
        }
        fsutil.write_json(self.root / self.subject.preview_dir.name / "preprocess_summary.json", s)
        vi = self._video_info()  # portrait mode finds the source frames through this
        source_map.write_source_map(self.root, self.video_path, vi["crop"], *vi["source"], self.cfg.size, self.cfg.fps, s["frames"])
        return s


def print_summary(s: dict) -> None:
    """The printed summary: what was found, and the time and rate of each step."""
    from rich.table import Table

    n = s["frames"] or 0
    fps_total = sum(v["seconds"] for v in s["steps"].values() if not v["skipped"])
    lines = [
        f"[bold]{s['subject']}[/bold] -> {s['folder']}",
        f"frames {n}, with a face {s['frames_with_face']}"
        + (f", interpolated {landmarks.format_ranges(s['interpolated'])}" if s["interpolated"] else "")
        + (f", left out {landmarks.format_ranges(s['dropped'])}" if s["dropped"] else ""),
        f"crop {s['crop']} of a {s['source'][0]}x{s['source'][1]} source",
        f"focal {s['focal']:.1f} px"
        + (" (not determined by this clip: set from the prior camera distance)" if s["focal_observable"] is False else "")
        + f", camera {s['camera_distance']:.2f} units away, reprojection {s['reproj_px_mean']:.2f} px "
        f"(rigid points), {s['reproj68_px_mean']:.2f} px (iBUG-68, lips and jaw move)",
        f"rotation jitter {s['jitter_raw_deg']:.3f} deg before smoothing, {s['jitter_smooth_deg']:.3f} deg after"
        + (f"; {len(s['cuts'])} cut(s) in the clip (at frames {', '.join(map(str, s['cuts'][:8]))}), not smoothed across"
           if s["cuts"] else ""),
        "parsing " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in (s["parsing"] or {}).items()),
        f"audio features {s['audio'].get('file')} {s['audio'].get('shape')}"
        + (f" [yellow]({s['audio']['warning']})[/yellow]" if s["audio"].get("warning") else ""),
    ]
    for line in lines:
        results.print(line)
    table = Table(title="preprocess steps", show_edge=False)
    for col in ("step", "seconds", "items", "items/s"):
        table.add_column(col, justify="right" if col != "step" else "left")
    for k, v in s["steps"].items():
        if v["skipped"]:
            table.add_row(k, "done earlier", str(v["items"]), "")
        else:
            rate = v["items"] / v["seconds"] if v["seconds"] > 0 else 0.0
            table.add_row(k, f"{v['seconds']:.2f}", str(v["items"]), f"{rate:.1f}")
    table.add_row("total", f"{fps_total:.2f}", str(n), f"{n / fps_total:.1f}" if fps_total > 0 else "")
    results.print(table)


def run_preprocess(video_path: str | os.PathLike, subject: Subject, cfg: PreprocessConfig, show: bool = True) -> dict:
    """Preprocess ``video_path`` into ``subject``'s folder; returns the summary dict.

    A subject that already has a dataset is rebuilt beside it and swapped in only when complete.
    """
    pipe = Pipeline(video_path, subject, cfg)
    video.check_source(pipe.video_path, cfg)
    with fsutil.batched():
        if subject.has_dataset() and not pipe.up_to_date():
            with staging.rebuild(subject) as root:
                summary = Pipeline(video_path, subject, cfg, root=root).run()
        else:
            summary = pipe.run()
    if show:
        print_summary(summary)
    return summary

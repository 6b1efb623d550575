"""Render jobs from the page: one render at a time per model, the others wait in its queue."""

from __future__ import annotations

import queue
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from radnerf_cli.errors import RadNerfError


@dataclass
class Job:
    id: str
    model: str
    audio: Path
    folder: Path
    status: str = "queued"  # queued, running, done, error
    done: int = 0  # frames rendered
    total: int = 0  # frames to render
    error: str | None = None
    out: Path | None = None
    position: int = 0  # jobs ahead of it when it was queued

    def public(self) -> dict:
        return {"id": self.id, "model": self.model, "status": self.status, "done": self.done, "total": self.total,
                "error": self.error, "position": self.position,
                "video": f"/api/jobs/{self.id}/video" if self.status == "done" else None}


class _Counting:
    """A TalkingHead seen through render_video, counting the frames it renders (the job's progress)."""

    def __init__(self, head, job: Job):
        self._head, self._job = head, job

    def __getattr__(self, name):
        return getattr(self._head, name)

    def render_frame(self, *args, **kwargs):
        out = self._head.render_frame(*args, **kwargs)
        self._job.done += 1
        return out


@dataclass
class RenderJobs:
    catalog: object
    root: Path  # where uploads and videos are kept while the server runs
    keep: int = 20  # finished jobs remembered (older ones and their files are removed)
    jobs: dict[str, Job] = field(default_factory=dict)
    _queues: dict[str, queue.Queue] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def new_folder(self) -> tuple[str, Path]:
        jid = uuid.uuid4().hex[:12]
        d = self.root / jid
        d.mkdir(parents=True, exist_ok=True)
        return jid, d

    def discard(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def submit(self, jid: str, folder: Path, model: str, audio: Path) -> Job:
        job = Job(jid, model, audio, folder)
        with self._lock:
            q = self._queues.get(model)
            if q is None:
                q = self._queues[model] = queue.Queue()
                threading.Thread(target=self._worker, args=(q,), name=f"render-{model}", daemon=True).start()
            job.position = sum(1 for j in self.jobs.values() if j.model == model and j.status in ("queued", "running"))
            self.jobs[jid] = job
            self._forget_old()
        q.put(job)
        return job

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs.values() if j.status in ("done", "error")]
        for j in finished[: max(0, len(finished) - self.keep)]:
            self.jobs.pop(j.id, None)
            shutil.rmtree(j.folder, ignore_errors=True)

    def _worker(self, q: queue.Queue) -> None:
        while True:
            job = q.get()
            job.status = "running"
            try:
                self._render(job)
                job.status = "done"
            except RadNerfError as e:
                job.error, job.status = e.message, "error"
            except Exception as e:  # a failed render must not stop the queue
                job.error, job.status = f"render failed: {type(e).__name__}: {e}", "error"

    def _render(self, job: Job) -> None:
        from radnerf_cli.engine.render_video import audio_features, frame_range, read_audio, render_video

        src = read_audio(job.audio)
        head = self.catalog.load(job.model)
        clip = audio_features(src, head.feature_kind)
        job.total = frame_range(clip, 0.0, None)[1]
        out = job.folder / "render.mp4"
        render_video(_Counting(head, job), clip, out, show_progress=False)
        job.out = out

"""Live rendering: audio chunks in, frames out as soon as their sound is known, in step at 25 fps.

    feed(chunk) --> [feature thread] row stream -> frame windows [8, 16, C] -> ready queue
                                                                               |
    frames()    <-- [caller's thread] scheduler picks a level per frame <------+
                     (full size, smaller sizes, an optional region level, or hold)

Frame ``i`` shows the sound at samples ``640 i .. 640 (i + 1)``. It can be made once the audio
its attention window covers has arrived (280 ms after the frame starts, plus the extractor's
look-ahead); it must leave before ``deadline = entered + latency``, where ``entered`` is when the
chunk holding its first sample was fed and ``latency`` is the stated, fixed delay that the audio is
played out with. Frames follow the pose track back and forth and the subject's blinks exactly as
`radnerf render` does, so silence between utterances gives a head that idles, not a still image.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from radnerf_cli.audio.streaming import FRAME_SAMPLES, SAMPLE_RATE, StreamWindows, row_stream
from radnerf_cli.engine.render_video import ping_pong, smooth_poses
from radnerf_cli.engine.scheduler import HOLD, FrameScheduler

if TYPE_CHECKING:
    from radnerf_cli.engine.inference import TalkingHead

FPS = 25
WINDOW_WAIT_S = 14 * 320 / SAMPLE_RATE  # frame i needs rows up to 2 i + 13: 280 ms after the frame starts
DEFAULT_SIZES = (1.0, 0.75, 0.5, 0.35)  # render sizes tried, as fractions of the subject's size
RENDER_BUDGET_S = 0.2  # latency allowed for rendering on top of what the audio windows need


class RenderLevel(Protocol):
    """One way of making a frame at the subject's full size (full render, smaller render, region...)."""

    name: str

    def render(self, pose: np.ndarray, aud, eye: float | None, body: np.ndarray | None = None
               ) -> np.ndarray:  # [H, W, 3] uint8; body: the track entry's body pose (None: nearest)
        ...

    def reset(self) -> None:  # the next frame starts a new run of this level (no audio-code smoothing from before)
        ...


class ScaledLevel:
    """Render at ``scale`` of the subject's size and upsample: cost falls with the pixel count."""

    def __init__(self, head: TalkingHead, scale: float, bg: np.ndarray, torso: bool = True):
        from PIL import Image

        self.full = (head.H, head.W)
        self.scale = float(scale)
        self.name = "full" if scale >= 1 else f"{round(scale * 100)}%"
        self.torso = torso
        if scale >= 1:
            self.head, self.bg = head, bg
            return
        from radnerf_cli.engine.inference import TalkingHead as _TH

        h = max(8, int(round(head.H * scale / 2)) * 2)
        w = max(8, int(round(head.W * scale / 2)) * 2)
        tensors, meta = head.state_and_meta()
        k = np.asarray(meta["intrinsics"], dtype=np.float64)
        meta = dict(meta, H=h, W=w, intrinsics=[k[0] * w / head.W, k[1] * h / head.H, k[2] * w / head.W,
                                                k[3] * h / head.H])
        small_bc = np.asarray(Image.fromarray(np.asarray(tensors["data/background"].numpy(), np.uint8))
                              .resize((w, h), Image.BILINEAR))
        import torch

        tensors["data/background"] = torch.from_numpy(small_bc.copy())
        self.head = _TH.from_state(tensors, meta, device=head.device)
        self.bg = np.array(Image.fromarray(bg).resize((w, h), Image.BILINEAR))

    def render(self, pose: np.ndarray, aud, eye: float | None, body: np.ndarray | None = None) -> np.ndarray:
        img = self.head.render_frame(pose, aud, eye, bg=self.bg, torso=self.torso, body=body)
        if img.shape[:2] == self.full:
            return img
        from PIL import Image

        return np.asarray(Image.fromarray(img).resize((self.full[1], self.full[0]), Image.BILINEAR))

    def reset(self) -> None:
        self.head.reset()


@dataclass
class LiveFrame:
    """One frame as it leaves the engine."""

    index: int  # frame number (25 fps from the first sample fed)
    image: np.ndarray  # [H, W, 3] uint8 at the subject's size
    level: str  # how it was made: a level name, or "hold" (the previous image again)
    entered: float  # clock time the chunk holding the frame's first sample was fed
    ready: float  # clock time its audio window was complete
    left: float  # clock time it was done
    deadline: float  # entered + latency (paced at 25 fps when audio came in faster)

    @property
    def latency(self) -> float:
        """Seconds from its sound entering to the frame leaving."""
        return self.left - self.entered

    @property
    def late(self) -> bool:
        return self.left > self.deadline


@dataclass
class _Job:
    index: int
    aud: np.ndarray
    entered: float
    ready: float
    deadline: float


@dataclass
class LiveOptions:
    latency: float | None = None  # seconds (None: what the audio windows need + RENDER_BUDGET_S)
    sizes: Sequence[float] = DEFAULT_SIZES
    realtime: bool = True  # False: every frame at full size, however long it takes
    pose_smooth: int = 7
    fix_eye: float | None = None
    background: str = "bc"
    torso: bool = True
    whisper_lookahead: int | None = None  # rows (None: the audio module's default)
    device: str | None = None  # where whisper runs
    extra_levels: Sequence[RenderLevel] = field(default_factory=tuple)  # e.g. a face-only region, after the sizes


class LiveEngine:
    """Audio in (any thread: :meth:`feed`, :meth:`end`), frames out (:meth:`frames`, one consumer)."""

    def __init__(self, head: TalkingHead, opts: LiveOptions | None = None, clock=time.perf_counter):
        from radnerf_cli.audio.streaming import WHISPER_LOOKAHEAD
        from radnerf_cli.data.body_pose import smooth_track
        from radnerf_cli.engine.render_video import parse_background

        self.head = head
        self.opts = opts = opts or LiveOptions()
        self.clock = clock
        look = WHISPER_LOOKAHEAD if opts.whisper_lookahead is None else opts.whisper_lookahead
        self.rows = row_stream(head.feature_kind, whisper_lookahead=look, device=opts.device)
        self.windows = StreamWindows(head.feature_dim)
        self.audio_wait = WINDOW_WAIT_S + self.rows.lookahead_s  # audio needed after a frame's start
        self.latency = float(opts.latency) if opts.latency is not None else self.audio_wait + RENDER_BUDGET_S
        bg = parse_background(opts.background, head)
        sizes = sorted({float(s) for s in opts.sizes if 0 < s <= 1}, reverse=True) or [1.0]
        self.levels: list[RenderLevel] = [ScaledLevel(head, s, bg, opts.torso) for s in sizes]
        self.levels += list(opts.extra_levels)
        self.by_name = {lv.name: lv for lv in self.levels}
        self.scheduler = FrameScheduler([lv.name for lv in self.levels], period=1 / FPS, realtime=opts.realtime)
        self.track = smooth_poses(np.asarray(head.pose_track, np.float32), opts.pose_smooth)
        self.bodies = None if head.body_track is None else smooth_track(head.body_track, opts.pose_smooth)
        self.eyes = (None if opts.fix_eye is not None or head.eye_track is None
                     else np.asarray(head.eye_track, np.float32))
        self._in: queue.Queue = queue.Queue()
        self._ready: deque[_Job] = deque()
        self._cv = threading.Condition()
        self._done = False  # the feature thread has released every frame
        self._error: BaseException | None = None
        self._chunks: deque[tuple[int, float]] = deque()  # (first sample, time fed) of chunks not yet needed
        self._fed = 0  # samples fed
        self._anchor: float | None = None  # time the first chunk was fed
        self._last_image: np.ndarray | None = None
        self._costs: dict[str, float] | None = None  # measured by warm_up
        self._current: str | None = None
        self.frames_out: list[LiveFrame] = []  # the latest frames' timing (images dropped), for stats
        self._worker = threading.Thread(target=self._features, name="live-features", daemon=True)
        self._worker.start()

    # ---------------------------------------------------------------- input
    def feed(self, samples: np.ndarray, t: float | None = None) -> None:
        """Push 16 kHz mono float audio; ``t``: when it entered (default: now)."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if x.size:
            self._in.put((x, self.clock() if t is None else t))

    def end(self) -> None:
        """No more audio: the remaining frames (RAD-NeRF's count for the whole stream) follow."""
        self._in.put(None)

    def warm_up(self) -> dict[str, float]:
        """Render a silent frame at every level so the scheduler knows their costs (seconds).

        The full-size one is kept as the image a frame can hold before any other was made."""
        import torch

        if self._costs is not None:
            return self._costs
        aud = torch.zeros(8, 16, self.head.feature_dim)
        costs = {}
        for lv in self.levels:
            for _ in range(2 if lv is self.levels[0] else 1):  # the very first frame pays one-time setup
                t0 = self.clock()
                image = lv.render(self.track[0], aud, None)
                dt = self.clock() - t0
            if self._last_image is None:
                self._last_image = image  # the idle head: what a held first frame shows
            self.scheduler.record(lv.name, dt)
            self.scheduler.stats[lv.name].frames -= 1  # warm-up frames are not part of the video
            lv.reset()
            costs[lv.name] = dt
        self._costs = costs
        return costs

    # ---------------------------------------------------------------- feature thread
    def _entered(self, sample: int) -> float:
        """Time the chunk holding ``sample`` was fed (the last chunk for the padding frames at the end)."""
        while len(self._chunks) > 1 and self._chunks[1][0] <= sample:
            self._chunks.popleft()
        return self._chunks[0][1]

    def _release(self, frames, now: float) -> None:
        jobs = []
        for i, aud in frames:
            entered = self._entered(FRAME_SAMPLES * i)
            deadline = max(entered, self._anchor + i / FPS) + self.latency
            jobs.append(_Job(i, aud, entered, now, deadline))
        if jobs:
            with self._cv:
                self._ready.extend(jobs)
                self._cv.notify_all()

    def _features(self) -> None:
        try:
            while True:
                item = self._in.get()
                if item is None:
                    break
                x, t = item
                if self._anchor is None:
                    self._anchor = t
                self._chunks.append((self._fed, t))
                self._fed += x.size
                self._release(self.windows.push(self.rows.push(x)), self.clock())
            if self._anchor is not None:
                self.windows.push(self.rows.finish())
                self._release(self.windows.finish(self._fed), self.clock())
        except BaseException as e:  # surfaced by frames()
            self._error = e
        finally:
            with self._cv:
                self._done = True
                self._cv.notify_all()

    # ---------------------------------------------------------------- output
    def frames(self) -> Iterator[LiveFrame]:
        """Frames in order, each as soon as it is made; ends after :meth:`end` once all are out."""
        import torch

        while True:
            with self._cv:
                while not self._ready and not self._done:
                    self._cv.wait(0.5)
                if not self._ready:
                    break
                job = self._ready.popleft()
                deadlines = [job.deadline] + [j.deadline for j in self._ready]
            now = self.clock()
            level = self.scheduler.choose(now, deadlines, have_previous=self._last_image is not None)
            if level == HOLD:
                image = self._last_image
            else:
                lv = self.by_name[level]
                if level != self._current:
                    lv.reset()
                    self._current = level
                k = ping_pong(job.index, len(self.track))
                eye = (float(self.opts.fix_eye) if self.opts.fix_eye is not None
                       else float(self.eyes[ping_pong(job.index, len(self.eyes))]) if self.eyes is not None else None)
                image = lv.render(self.track[k], torch.from_numpy(job.aud), eye,
                                  body=None if self.bodies is None else self.bodies[k])
                self._last_image = image
            left = self.clock()
            self.scheduler.record(level, left - now)
            frame = LiveFrame(job.index, image, level, job.entered, job.ready, left, job.deadline)
            self.frames_out.append(LiveFrame(job.index, None, level, job.entered, job.ready, left, job.deadline))
            if len(self.frames_out) > 10000:
                del self.frames_out[:5000]
            yield frame
        if self._error is not None:
            raise self._error

    def events(self) -> list[str]:
        """Scheduler messages not yet taken (level changes, slower than real time)."""
        ev, self.scheduler.events[:] = list(self.scheduler.events), []
        return ev

    def stats(self) -> dict:
        """Latency (median, p95, seconds) and frames per level of the frames made so far."""
        lat = np.array([f.latency for f in self.frames_out]) if self.frames_out else np.zeros(0)
        return {
            "frames": len(self.frames_out),
            "latency_median": float(np.median(lat)) if lat.size else None,
            "latency_p95": float(np.percentile(lat, 95)) if lat.size else None,
            "late": int(sum(f.late for f in self.frames_out)),
            "levels": self.scheduler.summary(),
            "stated_latency": self.latency,
            "audio_wait": self.audio_wait,
        }

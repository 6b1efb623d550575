"""Keeping live video in step with its audio: how to make each frame so it leaves before its deadline.

Every frame ``i`` has a deadline: the moment its sound entered plus the stated latency (the same
delay the audio is played out with). Before each frame the scheduler picks the best *level* whose
measured cost lets this frame and the frames already waiting behind it all meet their deadlines:

    levels, best first:  full size -> 75 % -> 50 % -> ... (-> a face-only region, when one is given)
    then:                hold (show the previous frame again; costs nothing)

A level is *sustainable* when it renders faster than the frame period (with some headroom);
unsustainable levels are only used while there is slack, so the video degrades step by step instead
of drifting behind the audio. Costs are running averages of the measured render times, so the
choice follows the machine's actual speed. Every change of level is reported as an event (the
first time rendering is slower than real time, it says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

HOLD = "hold"


@dataclass
class LevelStats:
    name: str
    cost: float | None = None  # running average of seconds per frame (None: never measured)
    frames: int = 0  # frames made at this level


@dataclass
class FrameScheduler:
    """Choose a level per frame from measured costs and the deadlines of the waiting frames."""

    levels: Sequence[str]  # level names, best first (HOLD is implicit, after the last)
    period: float = 1 / 25  # seconds between frames
    headroom: float = 0.85  # a level is sustainable when cost <= headroom * period
    smoothing: float = 0.3  # weight of a new measurement in the running cost
    recovery: float = 0.99  # per frame, the estimate of a better, unused level shrinks by this factor
    retry_limit: float = 0.4  # seconds: levels estimated slower than this are not retried
    realtime: bool = True  # False: always the best level (no deadlines: offline-quality streaming)
    stats: dict[str, LevelStats] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    current: str | None = None
    _warned_slow: bool = False

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("a scheduler needs at least one level")
        self.stats = {n: LevelStats(n) for n in [*self.levels, HOLD]}

    def record(self, level: str, seconds: float) -> None:
        """A frame was made at ``level`` in ``seconds``."""
        s = self.stats[level]
        s.frames += 1
        if level != HOLD:
            s.cost = seconds if s.cost is None else (1 - self.smoothing) * s.cost + self.smoothing * seconds
        # levels better than the one used grow slowly cheaper in the estimate, so a passing slowdown
        # (another program, a burst of audio) does not keep the video degraded: they get tried again.
        # A level measured far slower than real time (> retry_limit) is not retried: one more try would
        # stall every frame behind it.
        for n in self.levels:
            if n == level:
                break
            c = self.stats[n].cost
            if c is not None and c <= self.retry_limit:
                self.stats[n].cost = c * self.recovery

    def sustainable(self, level: str) -> bool:
        c = self.stats[level].cost
        return c is not None and c <= self.headroom * self.period

    def _feasible(self, level: str, now: float, deadlines: Sequence[float]) -> bool:
        c = self.stats[level].cost
        if c is None:
            return False
        return all(now + (k + 1) * c <= d for k, d in enumerate(deadlines))

    def choose(self, now: float, deadlines: Sequence[float], have_previous: bool = True) -> str:
        """The level for the next frame; ``deadlines``: of that frame and of those waiting behind it."""
        if not self.realtime:
            return self._switch(self.levels[0], None)
        feasible = [n for n in self.levels if self._feasible(n, now, deadlines)]
        pick = next((n for n in feasible if self.sustainable(n)), None)
        if pick is None and feasible:
            pick = feasible[-1]  # nothing keeps up for long: the cheapest that still meets the deadlines
        if pick is None:
            pick = HOLD if have_previous else self.levels[-1]
        return self._switch(pick, now - deadlines[0] if deadlines else None)

    def _switch(self, pick: str, slack: float | None) -> str:
        if pick != self.current:
            best = self.stats[self.levels[0]]
            if pick != self.levels[0] and not self._warned_slow and best.cost is not None:
                self._warned_slow = True
                self.events.append(
                    f"rendering is slower than real time: {best.name} takes {best.cost * 1000:.0f} ms a frame "
                    f"(budget {self.period * 1000:.0f} ms); degrading to {pick}"
                )
            elif self.current is not None:
                late = "" if slack is None else (f" ({slack * 1000:.0f} ms late)" if slack > 0
                                                 else f" ({-slack * 1000:.0f} ms to spare)")
                self.events.append(f"level {self.current} -> {pick}{late}")
            self.current = pick
        return pick

    def summary(self) -> dict[str, int]:
        """Frames made at each level (those with at least one)."""
        return {n: s.frames for n, s in self.stats.items() if s.frames}

"""The demo end to end: build the source video, preprocess, train (fast preset), render new speech.

Each step is a `radnerf` command run as a child process, exactly as a user would type it, so the
demo exercises the real command line. Every step resumes: a finished step is skipped on a re-run.

    WORKSPACE/demo/astronaut.mp4          the source video (portrait + synthetic speech)
    WORKSPACE/subjects/astronaut/         the preprocessed dataset and the trained run
    WORKSPACE/demo/speech.wav             new synthetic speech the subject has never heard
    WORKSPACE/demo/astronaut_talk.mp4     the result
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from radnerf_cli.demo.source import DemoVideoConfig
from radnerf_cli.errors import RadNerfError

QUICK_ENV = "RADNERF_DEMO_QUICK"  # set to 1 to run the reduced (CI) setting without --quick
DEMO_WORKSPACE = "demo-workspace"  # the demo's own default workspace, apart from the user's ./workspace


@dataclass
class DemoConfig:
    """What the demo builds and how hard it trains."""

    subject: str = "astronaut"  # subject name in the workspace
    video: DemoVideoConfig = field(default_factory=DemoVideoConfig)  # the source video
    preprocess_size: int = 256  # frame side of the preprocessed dataset
    preset: str = "fast"  # training preset
    # key=value overrides of the training config: the fast preset's schedule shortened so that
    # install + demo stay under 15 minutes on a 2-core laptop (measured there: ~7 head steps/s and
    # ~190 torso steps/s at 128x128, so about 5 minutes of training)
    train_overrides: list[str] = field(default_factory=lambda: [
        "train.head_iters=2000", "train.lips_iters=200", "train.torso_iters=2500"])
    speech_seconds: float = 8.0  # length of the new speech the demo renders
    speech_seed: int = 7  # seed of the new speech (differs from the training speech)

    @classmethod
    def quick(cls) -> DemoConfig:
        """The reduced setting for CI: a short clip, small frames, a few hundred iterations."""
        return cls(
            video=DemoVideoConfig(duration=8.0, size=256, crop=(32, 0, 384, 384)),
            preprocess_size=128,
            train_overrides=["train.num_rays=1024", "train.head_iters=100", "train.lips_iters=10",
                             "train.torso_iters=20", "train.ckpt_every=100", "train.preview_every=1000",
                             "train.downscale=1", "train.val_frames=1"],
            speech_seconds=1.0,
        )


@dataclass
class DemoResult:
    """Where the demo wrote its outputs and how long each step took."""

    video: Path  # the rendered talking-head video
    source: Path  # the source video the subject was made from
    timings: dict[str, float]  # seconds per step (0 for a skipped step)


def _run_step(name: str, args: list[str], workspace: Path) -> float:
    """Run ``radnerf ARGS`` as a child process; RadNerfError when it fails. Returns seconds taken."""
    from radnerf_cli.console import console, mode

    args = [*args, *(["-q"] if mode.quiet else []), *(["-v"] if mode.verbose else [])]
    cmd = [sys.executable, "-m", "radnerf_cli", *args]
    console.print(f"[bold cyan]demo[/bold cyan] {name}: radnerf {' '.join(args)}")
    env = dict(os.environ)
    env["RADNERF_WORKSPACE"] = str(workspace)
    t0 = time.perf_counter()
    # under --json the steps' own summaries go to stderr: stdout holds only the demo's JSON
    proc = subprocess.run(cmd, env=env, stdout=2 if mode.json else None)
    if proc.returncode != 0:
        raise RadNerfError(f"demo step '{name}' failed (radnerf {' '.join(args)} exited with code {proc.returncode})",
                           hint="its error is printed above; re-run `radnerf demo` to resume from this step")
    return time.perf_counter() - t0


def run_demo(workspace: Path, cfg: DemoConfig | None = None) -> DemoResult:
    """Build the demo subject and take it through preprocess, train and render. Resumable."""
    from radnerf_cli import fsutil, media
    from radnerf_cli.console import console
    from radnerf_cli.demo.source import build_demo_video
    from radnerf_cli.demo.speech import SpeechConfig, synthesize_speech
    from radnerf_cli.workspace import Workspace

    cfg = cfg or DemoConfig()
    ws = Workspace(workspace)
    demo_dir = ws.root / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    source = demo_dir / f"{cfg.subject}.mp4"
    stamp = demo_dir / f"{cfg.subject}.json"
    timings: dict[str, float] = {}

    # 1. The source video; rebuilt only when the settings changed.
    settings = json.dumps(asdict(cfg.video), sort_keys=True, default=list)
    t0 = time.perf_counter()
    rebuilt = not (source.is_file() and stamp.is_file() and stamp.read_text() == settings)
    if rebuilt:
        console.print(f"[bold cyan]demo[/bold cyan] source video: {source}")
        build_demo_video(source, cfg.video)
        fsutil.write_text(stamp, settings)
    timings["source"] = time.perf_counter() - t0

    # 2. Preprocess, 3. train: the real commands (each resumes by itself). A rebuilt source video
    # replaces the subject made from the previous one (--force: its old training run is moved aside).
    pre_args = ["preprocess", str(source), "--subject", cfg.subject, "--size", str(cfg.preprocess_size)]
    timings["preprocess"] = _run_step("preprocess", pre_args + (["--force"] if rebuilt else []), ws.root)
    train_args = ["train", "--subject", cfg.subject, "--preset", cfg.preset, *cfg.train_overrides]
    timings["train"] = _run_step("train", train_args, ws.root)

    # 4. New speech, 5. render it.
    speech = demo_dir / "speech.wav"
    audio, _ = synthesize_speech(SpeechConfig(duration=cfg.speech_seconds, seed=cfg.speech_seed))
    media.write_wav(speech, audio)
    out = demo_dir / f"{cfg.subject}_talk.mp4"
    timings["render"] = _run_step("render", ["render", "--subject", cfg.subject, "--audio", str(speech),
                                             "--out", str(out), "--force"], ws.root)
    return DemoResult(video=out, source=source, timings=timings)

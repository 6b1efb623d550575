"""Fault replay: bad input, interrupts, killed runs, corrupt files and concurrent runs, through the CLI.

Every refusal must exit 1 with one line on stderr naming the file (or option) at fault and no
traceback, and the subject must still render afterwards. One small trained subject is shared by
the whole module; each case that damages it restores it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from radnerf_cli import fsutil, media

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(HERE))


# ----------------------------------------------------------------------------------------------
# the shared subject and helpers


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace with the trained synthetic subject 'syn' (64x64, mel features, head + torso)."""
    from test_render import trained_workspace

    dst = tmp_path_factory.mktemp("faults") / "ws"
    shutil.copytree(trained_workspace(), dst)
    return dst


@pytest.fixture(scope="module")
def files(tmp_path_factory, ws) -> dict[str, Path]:
    """Inputs: speech, a long speech, a video without a face, a text file named .npy, a bundle."""
    from radnerf_cli.engine.export import save_bundle
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.workspace import Workspace

    d = tmp_path_factory.mktemp("inputs")
    t = np.arange(int(1.2 * 16000)) / 16000
    media.write_wav(d / "speech.wav", (0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    t = np.arange(int(20 * 16000)) / 16000
    media.write_wav(d / "long.wav", (0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000", "-t", "6", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", str(d / "noface.mp4")], check=True)
    (d / "text.npy").write_text("these are not audio features\n")
    head = TalkingHead.from_subject(Workspace(ws).subject("syn"), device="cpu")
    save_bundle(head, d / "syn.radnerf", subject="syn")
    return {p.stem: p for p in d.iterdir()} | {"dir": d}


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """The real entry point (radnerf_cli.cli.main) in this process: (exit code, stdout, stderr)."""
    from radnerf_cli.cli import main

    old = sys.argv
    sys.argv = ["radnerf", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *args, names: str) -> str:
    """Run a command that must be refused; returns its one error line."""
    code, out, err = run_cli(capsys, *args)
    text = out + err
    assert code == 1, text
    assert "Traceback" not in text
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("error:") and names in lines[0], lines[0]
    return lines[0]


def still_renders(ws: Path) -> None:
    """The subject's dataset, run config and weights are whole: it loads, resumes and renders a frame."""
    from radnerf_cli.engine.inference import TalkingHead
    from radnerf_cli.engine.resume import check_compatible
    from radnerf_cli.model.config import load_run_config
    from radnerf_cli.workspace import Workspace

    sub = Workspace(ws).find_subject("syn")
    assert sub.has_dataset() and (sub.root / "transforms_val.json").is_file()
    check_compatible(sub, load_run_config("full", sub.run_dir / "config.yaml"))
    head = TalkingHead.from_subject(sub, device="cpu")
    img = head.render_frame(head.pose_track[0], torch.zeros(8, 16, head.feature_dim), None)
    assert img.shape == (head.H, head.W, 3) and img.std() > 1


def snapshot(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` (relative path -> size), to compare before and after."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def subprocess_cli(*args, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(SRC), COLUMNS="200")
    return subprocess.Popen([sys.executable, "-m", "radnerf_cli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture
def subject(ws) -> Path:
    return ws / "subjects" / "syn"


# ----------------------------------------------------------------------------------------------
# data loss


def test_failed_preprocess_leaves_the_trained_subject_whole(capsys, ws, files, subject):
    before = snapshot(subject)
    refused(capsys, "preprocess", files["noface"], "-s", "syn", "-w", ws, names=str(files["noface"]))
    assert snapshot(subject) == before
    assert not (ws / "subjects" / ".syn.staging").exists()
    still_renders(ws)


def test_rejected_override_does_not_touch_the_run(capsys, ws, subject):
    config = (subject / "run" / "config.yaml").read_bytes()
    line = refused(capsys, "train", "-s", "syn", "-w", ws, "--stage", "head", "--iters", "30", "model.hidden_dim=32",
                   names="head.safetensors")
    assert "model.hidden_dim" in line
    assert (subject / "run" / "config.yaml").read_bytes() == config
    code, out, err = run_cli(capsys, "train", "-s", "syn", "-w", ws)  # a plain resume still works
    assert code == 0, out + err
    still_renders(ws)


def test_second_run_on_a_subject_is_refused_and_a_stale_lock_taken_over(capsys, ws, subject):
    from radnerf_cli.locks import lock_path
    from radnerf_cli.workspace import Workspace

    sub = Workspace(ws).subject("syn")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from radnerf_cli.locks import subject_lock; "
         "from radnerf_cli.workspace import Workspace; s = Workspace(sys.argv[1]).subject('syn'); "
         "cm = subject_lock(s); cm.__enter__(); print('held', flush=True); time.sleep(60)", str(ws)],
        env=dict(os.environ, PYTHONPATH=str(SRC)), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for args in (("train", "-s", "syn", "-w", ws),
                     ("preprocess", HERE / "missing.mp4", "-s", "syn", "-w", ws),
                     ("export", "-s", "syn", "-w", ws)):
            line = refused(capsys, *args, names=f"pid {holder.pid}")
            assert "subject 'syn' is in use" in line
    finally:
        holder.kill()
        holder.wait()
    # the killed holder's record is still in the lock file: the next run takes it over
    assert json.loads(lock_path(sub).read_text())["pid"] == holder.pid
    code, out, err = run_cli(capsys, "train", "-s", "syn", "-w", ws)
    assert code == 0, out + err
    assert f"left by pid {holder.pid}" in err
    assert not lock_path(sub).exists()
    still_renders(ws)


def test_sigterm_saves_a_checkpoint(ws, tmp_path):
    from radnerf_cli.engine import checkpoint

    local = tmp_path / "ws"
    shutil.copytree(ws, local)
    ck = local / "subjects" / "syn" / "run" / "checkpoints" / "head.safetensors"
    step0 = checkpoint.read_meta(ck)["step"]
    proc = subprocess_cli("train", "-s", "syn", "-w", local, "--stage", "head", "--iters", "100000")
    try:
        import select

        seen, deadline = "", time.monotonic() + 600
        while "resuming from step" not in seen:  # logs go to stderr: the line that says training resumed
            assert time.monotonic() < deadline and proc.poll() is None, seen
            if select.select([proc.stderr], [], [], 1.0)[0]:
                seen += proc.stderr.readline()
        time.sleep(4)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, out + err
    assert "Traceback" not in out + err
    step = checkpoint.read_meta(ck)["step"]
    assert step > step0
    still_renders(local)


def test_sigterm_is_deferred_like_ctrl_c():
    from radnerf_cli.engine import interrupt

    with interrupt.DeferredInterrupt() as intr:
        os.kill(os.getpid(), signal.SIGTERM)  # handled at the end of the step, not here
        assert intr.requested
        with pytest.raises(KeyboardInterrupt):  # a second request stops at once
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) != intr._handler  # the previous handler is back
    assert interrupt.exit_code() == 130
    interrupt.last_signal = signal.SIGTERM
    assert interrupt.exit_code() == 143
    interrupt.last_signal = None


def test_temps_of_killed_runs_are_removed_live_ones_kept(capsys, ws, files, subject, tmp_path):
    dead = 2**22 + 12345  # above the kernel's default pid_max: no such process
    stale = [subject / "run" / "checkpoints" / f".head.{dead}.a1b2c3d4.tmp.safetensors",
             subject / ".radnerf" / f".person.{dead}.e5f6g7h8.tmp.u8",
             files["dir"] / f".talk.{dead}.i9j0k1l2.tmp.mp4"]
    live = subject / "run" / "checkpoints" / f".head.{os.getpid()}.m3n4o5p6.tmp.safetensors"
    for p in [*stale, live]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"\0" * 1024)
    code, out, err = run_cli(capsys, "train", "-s", "syn", "-w", ws)
    assert code == 0, out + err
    assert not stale[0].exists() and not stale[1].exists() and live.exists()
    code, out, err = run_cli(capsys, "render", "-s", "syn", "-w", ws, "--audio", files["speech"],
                             "-o", files["dir"] / "talk.mp4", "--duration", "0.2")
    assert code == 0, out + err
    assert not stale[2].exists() and (files["dir"] / "talk.mp4").is_file()
    live.unlink()
    still_renders(ws)


def test_killed_render_leaves_a_temp_that_the_next_render_removes(capsys, ws, files, tmp_path):
    out = tmp_path / "long.mp4"
    proc = subprocess_cli("render", "-s", "syn", "-w", ws, "--audio", files["long"], "-o", out)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(tmp_path.glob(".long.*.tmp.mp4")):
            time.sleep(0.2)
        temps = list(tmp_path.glob(".long.*.tmp.mp4"))
        assert temps, "the render never started writing"
        time.sleep(0.5)
        proc.kill()  # SIGKILL: nothing can clean up
        proc.wait()
    finally:
        proc.kill()
    assert temps[0].exists()
    code, o, e = run_cli(capsys, "render", "-s", "syn", "-w", ws, "--audio", files["speech"], "-o", out,
                         "--duration", "0.2")
    assert code == 0, o + e
    assert not temps[0].exists() and out.is_file()


def test_atomic_writes_reach_the_disk_before_the_rename(monkeypatch, tmp_path):
    from radnerf_cli.engine import checkpoint

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(fsutil.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(fsutil.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    checkpoint.save(tmp_path / "head.safetensors", {"w": torch.ones(3)}, {"step": 1})
    assert events == ["fsync", "replace", "fsync"]  # the file, the rename, its folder
    events.clear()
    with fsutil.batched():  # bulk writers flush once with fsutil.sync() instead
        fsutil.write_text(tmp_path / "a.txt", "x")
    assert events == ["replace"]


def test_swap_is_finished_or_undone_after_a_crash(tmp_path):
    from radnerf_cli import staging
    from radnerf_cli.workspace import Workspace

    sub = Workspace(tmp_path).subject("s")
    (sub.root / "run").mkdir(parents=True)
    (sub.root / "run" / "w.txt").write_text("weights")
    (sub.root / "transforms_train.json").write_text("old")
    with staging.rebuild(sub) as root:  # a complete rebuild is swapped in, keeping run/
        assert (root / "transforms_train.json").read_text() == "old"  # seeded from the old dataset
        (root / "transforms_train.json").unlink()
        (root / "transforms_train.json").write_text("new")
        assert (sub.root / "transforms_train.json").read_text() == "old"
    assert (sub.root / "transforms_train.json").read_text() == "new" and (sub.root / "run" / "w.txt").is_file()
    assert not staging.staging_dir(sub).exists() and not staging.previous_dir(sub).exists()
    # killed after NAME -> .NAME.previous with a complete staging: recover() finishes the swap
    stage = staging.staging_dir(sub)
    stage.mkdir()
    (stage / "transforms_train.json").write_text("newer")
    (stage / staging.COMPLETE).write_text("")
    os.replace(sub.root, staging.previous_dir(sub))
    staging.recover(sub)
    assert (sub.root / "transforms_train.json").read_text() == "newer" and (sub.root / "run" / "w.txt").is_file()
    # killed while building: the old folder is back in place and the unfinished staging is kept
    stage.mkdir()
    os.replace(sub.root, staging.previous_dir(sub))
    staging.recover(sub)
    assert (sub.root / "transforms_train.json").read_text() == "newer" and stage.is_dir()


# ----------------------------------------------------------------------------------------------
# one line instead of a traceback


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("command", ["render", "export", "evaluate"])
def test_device_cuda_without_a_gpu(capsys, ws, files, command):
    extra = ["--audio", files["speech"], "-o", files["dir"] / "x.mp4"] if command == "render" else []
    refused(capsys, command, "-s", "syn", "-w", ws, "--device", "cuda", *extra, names="--device cuda")
    still_renders(ws)


@pytest.mark.parametrize("option", ["--start", "--duration"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_start_and_duration_must_be_finite(capsys, ws, files, option, value):
    refused(capsys, "render", "-s", "syn", "-w", ws, "--audio", files["speech"], "-o", files["dir"] / "x.mp4",
            option, value, names=f"{option} {value}")
    assert not (files["dir"] / "x.mp4").exists()


def _swap_in(path: Path, tensors: dict, metadata: dict | None) -> bytes:
    from safetensors.torch import save_file

    original = path.read_bytes()
    save_file(tensors, str(path), metadata=metadata)
    return original


def _commands(ws, files):
    return {"render": ("render", "-s", "syn", "-w", ws, "--audio", files["speech"], "-o", files["dir"] / "x.mp4"),
            "export": ("export", "-s", "syn", "-w", ws, "-o", files["dir"] / "x.radnerf"),
            "evaluate": ("evaluate", "-s", "syn", "-w", ws, "--no-lmd", "--no-video"),
            "train": ("train", "-s", "syn", "-w", ws)}


@pytest.mark.parametrize("damage", ["foreign", "missing_tensor", "wrong_shape"])
def test_damaged_checkpoint(capsys, ws, files, subject, damage):
    from safetensors import safe_open
    from safetensors.torch import load_file

    ck = subject / "run" / "checkpoints" / "torso.safetensors"
    tensors = load_file(str(ck))
    with safe_open(str(ck), framework="pt") as f:
        meta = f.metadata()
    if damage == "foreign":
        tensors, meta = {"weight": torch.zeros(4, 4)}, {"format": "pt"}
    elif damage == "missing_tensor":  # a weight with no EMA copy to stand in for it
        tensors.pop(next(k for k in tensors if k.startswith("model/") and "ema/" + k[6:] not in tensors))
    else:
        k = next(k for k in tensors if k.startswith("ema/") and tensors[k].numel() > 4)
        tensors[k] = tensors[k].reshape(-1)[:-1].clone()
    original = _swap_in(ck, tensors, meta)
    try:
        cmds = _commands(ws, files)
        for name in ("render", "export", "evaluate") + (("train",) if damage == "foreign" else ()):
            refused(capsys, *cmds[name], names=str(ck))
    finally:
        ck.write_bytes(original)
    still_renders(ws)


@pytest.mark.parametrize("damage", ["missing_tensor", "wrong_shape"])
def test_damaged_bundle(capsys, ws, files, tmp_path, damage):
    from safetensors import safe_open
    from safetensors.torch import load_file

    bundle = tmp_path / "b.radnerf"
    shutil.copy(files["syn"], bundle)
    tensors = load_file(str(bundle))
    with safe_open(str(bundle), framework="pt") as f:
        meta = f.metadata()
    if damage == "missing_tensor":
        tensors.pop("data/background")
    else:
        k = next(k for k in tensors if k.startswith("model/") and tensors[k].ndim == 2)
        tensors[k] = tensors[k][:, :-1].clone()
    _swap_in(bundle, tensors, meta)
    refused(capsys, "render", "--model", bundle, "--audio", files["speech"], "-o", tmp_path / "x.mp4", names=str(bundle))


@pytest.mark.parametrize("command", ["render", "train", "preprocess", "export"])
def test_workspace_that_is_a_file(capsys, files, tmp_path, command):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    args = {"render": ("render", "-s", "syn", "--audio", files["speech"], "-o", tmp_path / "x.mp4"),
            "train": ("train", "-s", "syn"), "preprocess": ("preprocess", files["noface"], "-s", "syn"),
            "export": ("export", "-s", "syn")}[command]
    refused(capsys, *args, "-w", blocker, names=str(blocker))


@pytest.mark.parametrize("command", ["render", "export"])
def test_output_where_nothing_can_be_written(capsys, ws, files, command):
    out = Path("/proc/x.mp4" if command == "render" else "/proc/x.radnerf")
    args = ("--audio", files["speech"]) if command == "render" else ()
    refused(capsys, command, "-s", "syn", "-w", ws, *args, "-o", out, names=str(out))
    still_renders(ws)


# ----------------------------------------------------------------------------------------------
# bad input that used to be accepted


@pytest.mark.parametrize("override", ["train.num_rays=0", "train.lr=nan", "render.grid_size=48",
                                      "train.downscale=0", "infer.T_thresh=0"])
def test_config_values_out_of_range(capsys, ws, subject, override):
    config = (subject / "run" / "config.yaml").read_bytes()
    refused(capsys, "train", "-s", "syn", "-w", ws, override, names=override.split("=")[0])
    assert (subject / "run" / "config.yaml").read_bytes() == config
    still_renders(ws)


@pytest.mark.parametrize("value", ["nan", "99", "-1"])
def test_fix_eye_range(capsys, ws, files, value):
    refused(capsys, "render", "-s", "syn", "-w", ws, "--audio", files["speech"], "-o", files["dir"] / "x.mp4",
            "--fix-eye", value, names=f"--fix-eye {value}")


def test_text_file_named_npy(capsys, ws, files):
    line = refused(capsys, "render", "-s", "syn", "-w", ws, "--audio", files["text"], "-o", files["dir"] / "x.mp4",
                   names=str(files["text"]))
    assert "not an audio feature file" in line and "pickle" not in line


@pytest.mark.parametrize("bad", [("--bg", "no-such-colour"), ("--pose", "missing.json"), ("--start", "999")])
def test_render_inputs_checked_before_any_heavy_work(capsys, monkeypatch, ws, files, bad):
    from radnerf_cli.engine import inference, render_video

    def heavy(*a, **k):
        raise AssertionError("loaded a model or computed features before checking the inputs")

    monkeypatch.setattr(inference.TalkingHead, "from_subject", heavy)
    monkeypatch.setattr(render_video, "audio_features", heavy)
    opt, value = bad
    if opt == "--pose":
        value = str(files["dir"] / value)
    refused(capsys, "render", "-s", "syn", "-w", ws, "--audio", files["speech"], "-o", files["dir"] / "x.mp4",
            opt, value, names=value if opt != "--start" else "--start 999")


@pytest.fixture(scope="module")
def clips(shared_data, tmp_path_factory) -> dict[str, Path]:
    """8 s of the shared clip as a 64x64 video and as a 9:16 portrait with black bars above and below."""
    d = tmp_path_factory.mktemp("clips")
    src = shared_data / "anchor_cnn_25fps.mp4"
    out = {"small": d / "small.mp4", "portrait": d / "portrait.mp4"}
    for name, vf in (("small", "scale=64:64"), ("portrait", "scale=288:288,pad=288:512:0:112:black")):
        subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-t", "8", "-vf", vf,
                        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(out[name])], check=True)
    return out


def test_small_source_is_preprocessed_with_a_warning(capsys, clips, tmp_path):
    code, out, err = run_cli(capsys, "preprocess", clips["small"], "-s", "small", "-w", tmp_path,
                             "--audio-features", "mel")
    assert code == 0, out + err
    assert "Traceback" not in out + err
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and str(clips["small"]) in warning[0] and "enlarged 8.0x" in warning[0], err


def test_portrait_with_bars_keeps_the_head_and_leaves_the_bars_out(capsys, clips, tmp_path):
    import cv2

    code, out, err = run_cli(capsys, "preprocess", clips["portrait"], "-s", "p", "-w", tmp_path,
                             "--audio-features", "mel")
    assert code == 0, out + err
    info = json.loads((tmp_path / "subjects" / "p" / ".radnerf" / "video_info.json").read_text())
    x, y, side, _ = info["crop"]
    assert 112 <= y and y + side <= 400, info  # inside the picture: no bar rows
    frame = cv2.imread(str(tmp_path / "subjects" / "p" / "ori_imgs" / "0.jpg"))
    assert frame[:8].mean() > 20 and frame[-8:].mean() > 20  # no black band at the top or bottom


def test_crop_geometry():
    from radnerf_cli.preprocess import video
    from radnerf_cli.preprocess.config import PreprocessConfig

    cfg = PreprocessConfig()
    src = video.SourceInfo(Path("p.mp4"), 288, 512, 25.0, 8.0)
    rows = np.zeros(512, np.uint8)
    rows[112:400] = 200
    canvas = video.picture_box(rows, np.full(288, 200, np.uint8), src)
    assert canvas[0] == 0 and canvas[2] == 288 and 112 <= canvas[1] <= 116 and 396 <= canvas[1] + canvas[3] <= 400
    # a face near the top of the picture: the crop starts at the picture's top, not in the bar above it
    track = np.array([[90.0, 140.0, 200.0, 250.0]] * 5)
    x, y, side, _ = video.choose_crop(src, track, cfg, canvas)
    assert y == canvas[1] and y + side <= canvas[1] + canvas[3]
    # a face too large for the frame's width: the crop reaches past the frame instead of cutting it
    track = np.array([[-10.0, 150.0, 298.0, 420.0]] * 5)
    x, y, side, _ = video.choose_crop(src, track, cfg, (0, 0, 288, 512))
    assert side >= 308 and x < 0 and x + side > 288
    filters = media.crop_filters((-10, 100, 308, 308), (0, 0, 288, 512), (288, 512))
    assert filters[0].startswith("format=") and "fillborders=left=10:right=10" in filters[2]
    assert filters[-1] == "crop=308:308:0:100"


# ----------------------------------------------------------------------------------------------
# outputs that would destroy something


def test_outputs_that_would_overwrite_inputs_weights_or_files(capsys, ws, files, subject):
    ck = subject / "run" / "checkpoints" / "head.safetensors"
    weights = ck.read_bytes()
    refused(capsys, "render", "-s", "syn", "-w", ws, "--audio", files["speech"], "-o", files["speech"],
            names=str(files["speech"]))
    refused(capsys, "export", "-s", "syn", "-w", ws, "-o", ck, "--force", names=str(ck))
    existing = files["dir"] / "existing.mp4"
    existing.write_bytes(b"keep me")
    refused(capsys, "render", "-s", "syn", "-w", ws, "--audio", files["speech"], "-o", existing, names=str(existing))
    assert existing.read_bytes() == b"keep me" and ck.read_bytes() == weights
    still_renders(ws)

"""`radnerf serve`: the API behind the page, its limits, and how it binds (the page itself: test_serve_browser)."""

from __future__ import annotations

import functools
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from radnerf_cli import media

REPO = Path(__file__).resolve().parents[1]
fastapi = pytest.importorskip("fastapi", reason="radnerf serve needs fastapi (pip install -e '.[test]')")


@functools.lru_cache(maxsize=1)
def serve_workspace() -> Path:
    """The trained test workspace plus a half-size bundle of its subject (quick to render)."""
    from test_live_stream import small_bundle
    from test_render import trained_workspace

    root = Path(tempfile.mkdtemp(prefix="radnerf-serve-test-")) / "ws"
    shutil.copytree(trained_workspace(), root)
    exports = root / "subjects" / "syn" / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    shutil.copy(small_bundle(), exports / "small.radnerf")
    return root


def tone_wav(path: Path, seconds: float = 0.4) -> Path:
    t = np.arange(int(seconds * 16000)) / 16000
    media.write_wav(path, (0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32))
    return path


def stop(proc: subprocess.Popen) -> None:
    """Stop a `radnerf serve` process: SIGTERM, then SIGKILL if it has not exited within two minutes."""
    proc.terminate()
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    from radnerf_cli.web.app import create_app

    with TestClient(create_app(serve_workspace(), max_upload_mb=1)) as c:
        yield c


# ----------------------------------------------------------------------------------------------
# binding


def test_serve_refuses_a_non_local_bind_unless_given_with_host():
    from radnerf_cli.commands.serve import is_local, resolve_host
    from radnerf_cli.errors import InputError

    assert is_local("127.0.0.1") and is_local("::1") and is_local("localhost") and is_local("127.1.2.3")
    assert not is_local("0.0.0.0") and not is_local("192.168.1.5") and not is_local("example.org")
    os.environ.pop("RADNERF_SERVE_HOST", None)
    assert resolve_host(None) == ("127.0.0.1", False)
    assert resolve_host("0.0.0.0") == ("0.0.0.0", True)  # explicit: allowed, with a warning
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), RADNERF_SERVE_HOST="0.0.0.0")
    r = subprocess.run([sys.executable, "-m", "radnerf_cli", "serve", "--port", "7999"], capture_output=True,
                       env=env, timeout=600)
    assert r.returncode == 1
    assert "refusing to listen on 0.0.0.0" in r.stderr.decode() and "--host 0.0.0.0" in r.stderr.decode()
    with pytest.raises(InputError):
        os.environ["RADNERF_SERVE_HOST"] = "10.0.0.1"
        try:
            resolve_host(None)
        finally:
            os.environ.pop("RADNERF_SERVE_HOST")


def test_serve_with_an_explicit_public_host_warns(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "radnerf_cli", "serve", "--host", "0.0.0.0", "--port", str(port),
                             "-w", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.time() + 600
        err = b""
        while b"warning" not in err and time.time() < deadline and proc.poll() is None:
            err += proc.stderr.readline()
        assert b"warning" in err and b"listening on 0.0.0.0" in err, err
    finally:
        stop(proc)


# ----------------------------------------------------------------------------------------------
# the API


@pytest.mark.slow
def test_subjects_list_and_preview(client):
    data = client.get("/api/subjects").json()
    ids = [m["id"] for m in data["models"]]
    assert ids == ["syn", "syn/small.radnerf"]
    assert data["models"][1]["size"] == "32x32"
    r = client.get("/api/preview/syn/small.radnerf")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    from PIL import Image

    assert Image.open(io.BytesIO(r.content)).size == (32, 32)
    assert client.get("/api/preview/nobody").status_code == 404
    page = client.get("/")
    assert page.status_code == 200 and "radnerf" in page.text


@pytest.mark.slow
def test_uploads_are_size_limited_and_type_checked(client, tmp_path):
    big = b"RIFF" + b"\x00" * 4 + b"WAVE" + os.urandom(2 * 1024 * 1024)
    r = client.post("/api/render", data={"model": "syn/small.radnerf"}, files={"file": ("big.wav", big, "audio/wav")})
    assert r.status_code == 413 and r.json()["error"] == "big.wav: larger than the 1 MB upload limit"
    r = client.post("/api/render", data={"model": "syn/small.radnerf"},
                    files={"file": ("notes.txt", b"hello, this is text", "text/plain")})
    assert r.status_code == 415
    assert r.json()["error"] == "notes.txt: not an audio file (wav, flac, mp3, ogg, webm or m4a expected)"
    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (4, 4)).save(png, format="PNG")
    r = client.post("/api/render", data={"model": "syn/small.radnerf"}, files={"file": ("x.wav", png.getvalue())})
    assert r.status_code == 415
    broken = b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk"
    r = client.post("/api/render", data={"model": "syn/small.radnerf"}, files={"file": ("broken.wav", broken)})
    assert r.status_code == 422 and r.json()["error"].startswith("broken.wav: ")
    r = client.post("/api/render", data={"model": "nobody"}, files={"file": ("a.wav", tone_wav(tmp_path / "a.wav").read_bytes())})
    assert r.status_code == 404 and "no trained subject or bundle 'nobody'" in r.json()["error"]


@pytest.mark.slow
def test_render_jobs_queue_per_model_and_finish(client, tmp_path):
    wav = tone_wav(tmp_path / "speech.wav", 0.24).read_bytes()
    jobs = [client.post("/api/render", data={"model": "syn/small.radnerf"}, files={"file": ("s.wav", wav)}).json()
            for _ in range(2)]
    assert jobs[0]["position"] == 0 and jobs[1]["position"] == 1  # one at a time: the second waits
    seen_running = set()
    for _ in range(600):
        states = [client.get(f"/api/jobs/{j['id']}").json() for j in jobs]
        seen_running.add(sum(s["status"] == "running" for s in states))
        if all(s["status"] in ("done", "error") for s in states):
            break
        time.sleep(0.5)
    assert [s["status"] for s in states] == ["done", "done"], states
    assert max(seen_running) == 1
    r = client.get(states[0]["video"])
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    out = tmp_path / "got.mp4"
    out.write_bytes(r.content)
    from test_live_stream import video_frames

    assert video_frames(out) == 6  # 0.24 s at 25 fps
    d = client.get(states[0]["video"] + "?download=1")
    assert "attachment" in d.headers["content-disposition"]


def _chunk(t_ms: float, samples: np.ndarray) -> bytes:
    return struct.pack("<d", t_ms) + (samples * 32767).astype("<i2").tobytes()


@pytest.mark.slow
def test_live_socket_sends_frames_and_survives_a_page_leaving_mid_stream(client):
    t = np.arange(480) / 16000
    speech = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    with client.websocket_connect("/ws/live?model=syn/small.radnerf") as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["width"] == 32
        for k in range(40):  # 1.2 s of audio, then the page goes away without a word
            ws.send_bytes(_chunk(1000.0 + 30 * k, speech))
        got = ws.receive_bytes()
        n = struct.unpack("<I", got[:4])[0]
        import json

        header = json.loads(got[4 : 4 + n])
        assert header["i"] == 0 and header["sent"] == 1000.0 and header["audio"] == 640
    # the server carries on: the API answers and a new session works to the end
    assert client.get("/api/subjects").status_code == 200
    with client.websocket_connect("/ws/live?model=syn/small.radnerf") as ws:
        assert ws.receive_json()["type"] == "ready"
        for k in range(10):  # 0.3 s
            ws.send_bytes(_chunk(30.0 * k, speech))
        ws.send_text("end")
        frames = []
        while True:
            try:
                m = ws.receive()
            except Exception:
                break
            if m["type"] == "websocket.close":
                break
            if m.get("bytes"):
                frames.append(m["bytes"])
        assert len(frames) == 8  # round(0.3 s * 25) frames, every one owed
    with client.websocket_connect("/ws/live?model=nobody") as ws:
        msg = ws.receive_json()
        assert msg["type"] == "error" and "nobody" in msg["message"]


def test_live_session_post_after_the_connection_closed_is_dropped():
    """The render thread may finish after the page's event loop has closed: its last posts are dropped
    quietly instead of raising in the thread."""
    import asyncio

    from radnerf_cli.web.live_ws import LiveSession

    loop = asyncio.new_event_loop()
    session = LiveSession(None, None, None, loop)
    loop.close()
    session._post(None)  # no RuntimeError
    open_loop = asyncio.new_event_loop()
    try:
        live = LiveSession(None, None, None, open_loop)
        live._post(("json", {}))
        open_loop.run_until_complete(asyncio.sleep(0))
        assert live.outbox.qsize() == 1
    finally:
        open_loop.close()

"""The page of `radnerf serve` in a real headless Chromium (playwright driving the system browser).

Skipped when /usr/bin/chromium or the playwright package is missing (.ci/run installs both).
RADNERF_SCREENSHOTS=DIR also saves a screenshot of each view there (the README's docs/*.png).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from radnerf_cli import media

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("RADNERF_CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install playwright)")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from test_serve import serve_workspace, stop

    ws = serve_workspace()
    port = _port()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "radnerf_cli", "serve", "--port", str(port), "-w", str(ws)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while True:
        try:
            urllib.request.urlopen(url + "api/subjects", timeout=5).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise AssertionError(f"serve did not start: {proc.stderr.read().decode()}") from None
            time.sleep(0.5)
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    from radnerf_cli.demo.speech import SpeechConfig, synthesize_speech

    audio, _ = synthesize_speech(SpeechConfig(duration=1.0, seed=3))
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    media.write_wav(path, np.asarray(audio, np.float32))
    return path


@pytest.fixture(scope="module")
def page(speech):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={speech}", "--autoplay-policy=no-user-gesture-required"])
        pg = browser.new_page(viewport={"width": 900, "height": 520})
        yield pg
        browser.close()


def _shot(pg, name: str) -> None:
    d = os.environ.get("RADNERF_SCREENSHOTS")
    if d:
        pg.screenshot(path=str(Path(d) / f"serve-{name}.png"))


def test_page_lists_subjects_with_previews(server, page):
    page.goto(server)
    card = page.locator(".card[data-model='syn/small.radnerf']")
    card.wait_for(timeout=120_000)
    assert page.locator(".card").count() == 2
    page.wait_for_function("[...document.querySelectorAll('.card img')].every(i => i.complete && i.naturalWidth > 0)",
                           timeout=180_000)
    assert "syn" in page.locator("#subjects").inner_text()
    _shot(page, "subjects")


def test_render_an_uploaded_file_and_play_it(server, page, speech, tmp_path):
    short = tmp_path / "short.wav"
    media.write_wav(short, media.load_audio(speech)[: int(0.4 * 16000)])
    page.click("nav button[data-view=render]")
    page.select_option("#render-form select", "syn/small.radnerf")
    page.set_input_files("#render-file", str(short))
    page.click("#render-go")
    page.locator("#render-result").wait_for(state="visible", timeout=300_000)
    page.wait_for_function("document.querySelector('#render-video').readyState >= 1", timeout=60_000)
    duration = page.evaluate("document.querySelector('#render-video').duration")
    assert abs(duration - 0.4) < 0.1, duration  # 10 frames at 25 fps, with the audio
    page.evaluate("const v = document.querySelector('#render-video'); v.muted = true; v.play()")
    page.wait_for_function("document.querySelector('#render-video').currentTime > 0", timeout=30_000)
    assert "done: 10 frames" in page.locator("#render-status").inner_text()
    _shot(page, "render")


def test_live_mode_receives_frames_for_audio_played_into_the_microphone(server, page):
    page.click("nav button[data-view=live]")
    page.select_option("#live-model", "syn/small.radnerf")
    page.click("#live-start")
    page.wait_for_function("Number(document.body.dataset.liveFrames || 0) >= 25", timeout=180_000)
    text = page.locator("#live-latency").inner_text()
    assert text.startswith("median ") and "p95" in text, text
    assert "NaN" not in text
    _shot(page, "live")
    page.click("#live-stop")

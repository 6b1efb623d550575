"""The CLI skeleton: version, help, and one-line errors."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from radnerf_cli import __version__
from radnerf_cli.cli import app

runner = CliRunner()


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0
    assert __version__ in r.output


def test_error_is_one_line_and_exit_1(tmp_path):
    # A real process, so main()'s error handling is what is tested.
    code = (
        "from radnerf_cli.cli import main, app\n"
        "from radnerf_cli.errors import InputError\n"
        "@app.command('boom')\n"
        "def boom():\n"
        "    raise InputError('video.mp4: has no audio track', hint='use a video with sound')\n"
        "import sys; sys.argv=['radnerf','boom']; main()\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 1
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert "video.mp4: has no audio track" in lines[0]

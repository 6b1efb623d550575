"""`radnerf serve`: a local web page to see the workspace's subjects, render audio and talk to one live."""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated

import typer

from radnerf_cli.commands.choices import Backend, Device
from radnerf_cli.commands.common import BackendOpt, DeviceOpt, WorkspaceOpt, device_arg

ENV_HOST = "RADNERF_SERVE_HOST"
LOCAL_HOSTS = ("localhost",)


def is_local(host: str) -> bool:
    """True for loopback addresses (127.0.0.0/8, ::1) and ``localhost``."""
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_host(cli_host: str | None) -> tuple[str, bool]:
    """(host, warn): ``--host`` if given, else $RADNERF_SERVE_HOST, else 127.0.0.1.

    A non-local address is only accepted from ``--host`` itself (then with a warning): an
    environment variable or a default never opens the page to the network.
    """
    from radnerf_cli.errors import InputError

    if cli_host is not None:
        return cli_host, not is_local(cli_host)
    host = os.environ.get(ENV_HOST) or "127.0.0.1"
    if not is_local(host):
        raise InputError(f"refusing to listen on {host} (from ${ENV_HOST}): the page would be reachable from the network",
                         hint=f"pass --host {host} on the command line to mean it")
    return host, False


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1; anything else is reachable from the network).", show_default=False)] = None,
    port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)] = 7860,
    workspace: WorkspaceOpt = None,
    max_upload_mb: Annotated[int, typer.Option("--max-upload-mb", help="Largest audio upload accepted, in MB.", min=1)] = 50,
    device: DeviceOpt = Device.auto,
    backend: BackendOpt = Backend.auto,
) -> None:
    """Serve a local web page: subjects with previews, renders of uploaded or recorded audio, and live talk."""
    from radnerf_cli.console import console, err_console
    from radnerf_cli.errors import InputError
    from radnerf_cli.kernels import set_backend

    bind, warn = resolve_host(host)
    set_backend(backend.value)
    try:
        import uvicorn

        from radnerf_cli.web.app import create_app
    except ImportError as e:
        raise InputError(f"radnerf serve needs {e.name}", hint="reinstall radnerf: pip install -e .") from None
    app = create_app(workspace, max_upload_mb, device_arg(device))
    if warn:
        err_console.print(f"[bold yellow]warning:[/bold yellow] listening on {bind}: anyone who can reach this "
                          "machine can use the page (there is no login)")
    shown = f"[{bind}]" if ":" in bind else bind
    console.print(f"radnerf serve: http://{shown}:{port}/  (workspace {app.state.catalog.ws.root}; Ctrl-C stops)")
    try:
        uvicorn.run(app, host=bind, port=port, log_level="warning", ws_max_size=1 << 20)
    except OSError as e:
        raise InputError(f"cannot listen on {bind}:{port} ({e.strerror or e})") from None


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)

"""The ``radnerf`` command line: parse, load config, call the engine, turn errors into exit codes.

Exit codes: 0 done, 1 a RadNerfError (bad input, missing subject, failed build: one line on stderr),
2 a usage error (unknown option, a value outside an option's choices), 130 interrupted (Ctrl-C).
Results go to stdout, progress and logs to stderr.

Heavy modules (torch, mediapipe) are imported inside commands, so ``radnerf --help`` is instant.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from radnerf_cli import __version__
from radnerf_cli.commands import demo, evaluate, export, kernels, preprocess, render, serve, stream, train
from radnerf_cli.errors import RadNerfError

app = typer.Typer(
    name="radnerf",
    help="Personal 3D talking heads: preprocess a video, train a model, render it speaking new audio.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        import platform

        typer.echo(f"radnerf {__version__} (python {platform.python_version()})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    """radnerf: audio-driven neural talking heads (RAD-NeRF), with no hand-downloaded weights.

    Exit codes: 0 done, 1 error (one line on stderr), 2 usage error, 130 interrupted.
    """


for _mod in (preprocess, train, evaluate, render, export, kernels, demo, serve, stream):
    _mod.register(app)


def report_error(e: RadNerfError) -> None:
    from radnerf_cli.console import err_console

    line = f"[bold red]error:[/bold red] {e.message}"
    if e.hint:
        line += f" [dim]({e.hint})[/dim]"
    err_console.print(line, soft_wrap=True)


EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def main() -> None:
    from radnerf_cli.engine import interrupt

    interrupt.stop_cleanly_on_sigterm()
    try:
        app()
    except RadNerfError as e:
        report_error(e)
        sys.exit(EXIT_ERROR)
    except OSError as e:
        from radnerf_cli.fsutil import STORAGE_ERRNOS

        if e.errno not in STORAGE_ERRNOS:
            raise
        report_error(RadNerfError(f"{e.filename or 'a file'}: {e.strerror}"))
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        from radnerf_cli.console import err_console

        err_console.print("[yellow]interrupted[/yellow]")
        sys.exit(interrupt.exit_code())  # EXIT_INTERRUPTED after Ctrl-C, 143 after SIGTERM
    except SystemExit as e:  # the command line framework turns an interrupt into exit 130 itself
        if e.code == EXIT_INTERRUPTED:
            sys.exit(interrupt.exit_code())
        raise


if __name__ == "__main__":
    main()

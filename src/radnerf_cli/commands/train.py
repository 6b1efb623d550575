"""`radnerf train`: train a subject's model (head, lips fine-tune, torso), resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radnerf_cli.commands.choices import Backend, Preset, TrainStage, value
from radnerf_cli.commands.common import BackendOpt, JsonOpt, QuietOpt, SubjectOpt, VerboseOpt, WorkspaceOpt

EPILOG = """\
Examples:

  radnerf train                                    # the only subject, every stage, resumable

  radnerf train -s alice --stage head --iters 2000

  radnerf train -s alice train.num_rays=4096 model.log2_hashmap_size=14

  radnerf train -s alice --show-config             # every config key, its value and what it does

  radnerf train -s alice --json -q > report.json
"""


def register(app: typer.Typer) -> None:
    @app.command("train", epilog=EPILOG)
    def train(
        overrides: Annotated[
            list[str] | None,
            typer.Argument(
                help="Config overrides as key=value, e.g. train.num_rays=4096 model.log2_hashmap_size=14 "
                "(sections model, render, train; `--show-config` lists every key).",
                show_default=False,
            ),
        ] = None,
        subject: SubjectOpt = None,
        workspace: WorkspaceOpt = None,
        stage: Annotated[TrainStage, typer.Option("--stage", help="Stage to train (all: head, lips, torso in that order).")] = TrainStage.all,
        iters: Annotated[
            int | None,
            typer.Option("--iters", help="Iterations of each selected stage (overrides the preset).", min=1, show_default=False),
        ] = None,
        preset: Annotated[
            Preset | None,
            typer.Option(
                "--preset",
                help="fast (minutes on a laptop CPU) or full (the original settings, for a GPU). "
                "Default: the run's saved config when resuming, else full on CUDA and fast on CPU.",
                show_default=False,
            ),
        ] = None,
        config: Annotated[
            Path | None, typer.Option("--config", help="YAML config file applied over the preset.", show_default=False)
        ] = None,
        show_config: Annotated[
            bool, typer.Option("--show-config", help="Print the resolved config (each key, its value and its meaning) and exit.")
        ] = False,
        backend: BackendOpt = Backend.auto,
        json_out: JsonOpt = False,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        """Train the subject's model; re-running resumes from the last checkpoint."""
        import torch

        from radnerf_cli import validate
        from radnerf_cli.console import configure, console, emit_json, results
        from radnerf_cli.engine.resume import check_compatible
        from radnerf_cli.errors import KernelError
        from radnerf_cli.kernels import set_backend
        from radnerf_cli.locks import claim_subject
        from radnerf_cli.model.config import STAGES, load_run_config
        from radnerf_cli.workspace import Workspace

        configure(quiet, verbose, json_out)
        set_backend(backend.value)
        if backend == Backend.cuda and not torch.cuda.is_available():
            raise KernelError("--backend cuda needs a CUDA GPU (torch.cuda.is_available() is False)")
        device = "cuda" if backend in (Backend.auto, Backend.cuda, Backend.torch) and torch.cuda.is_available() else "cpu"

        sub = Workspace(workspace).find_subject(subject)
        stages = list(STAGES) if stage == TrainStage.all else [stage.value]
        over = list(overrides or [])
        if iters is not None:
            over += [f"train.{s}_iters={iters}" for s in stages]
        saved = sub.run_dir / "config.yaml"
        yaml_path = config
        preset_name = value(preset)
        if preset_name is None and config is None and saved.is_file():
            preset_name, yaml_path = "full", saved  # resume with the run's own (complete) settings
            source = f"the run's config {saved}"
        else:
            preset_name = preset_name or ("full" if device == "cuda" else "fast")
            source = f"preset {preset_name}" + (f" + {config}" if config else "")
        cfg = load_run_config(preset_name, yaml_path, over)
        validate.run_config(cfg)

        if show_config:
            _show_config(cfg, sub.name, source, json_out)
            return
        if "lips" in stages:
            from radnerf_cli.metrics.lpips import preflight

            preflight()  # the lips stage needs LPIPS: fail now, not after the head stage has trained

        from radnerf_cli.engine.trainer import Trainer

        with claim_subject(sub):
            check_compatible(sub, cfg)  # before the run's config is rewritten
            console.print(f"training [bold]{sub.name}[/bold] ({', '.join(stages)}) on {device}, {source}")
            reports = Trainer(sub, cfg, device).run(stages)

        from rich.table import Table

        table = Table(title=f"{sub.name}: training", show_edge=False)
        for col in ("stage", "step", "it/s", "rays/s", "train PSNR", "val PSNR"):
            table.add_column(col, justify="right")
        for r in reports:
            val = "-" if r.val_psnr is None else f"{r.val_psnr:.2f}"
            if r.skipped:
                table.add_row(r.stage, f"{r.step}/{r.iters}", "done", "", "", val)
            else:
                table.add_row(r.stage, f"{r.step}/{r.iters}", f"{r.it_per_s:.2f}", f"{r.rays_per_s:,.0f}", f"{r.psnr:.2f}", val)
        results.print(table)
        results.print(f"run folder: {sub.run_dir} (config.yaml, checkpoints/, previews/, curves.png, metrics.json)")
        import dataclasses

        emit_json({"subject": sub.name, "device": device, "config": source, "run_dir": str(sub.run_dir),
                   "stages": [dataclasses.asdict(r) for r in reports]})


def _show_config(cfg, name: str, source: str, json_out: bool) -> None:
    """The resolved config, one key per line with its value and one-line doc."""
    from rich.markup import escape
    from rich.table import Table

    from radnerf_cli.config import describe
    from radnerf_cli.console import emit_json, results
    from radnerf_cli.model.config import RunConfig

    rows = describe(cfg, RunConfig)
    table = Table(title=f"{name}: config ({source}); override any key as key=value", show_edge=False)
    for col in ("key", "value", "meaning"):
        table.add_column(col)
    for key, v, doc in rows:
        table.add_row(key, escape(repr(v) if isinstance(v, str) else str(v)), escape(doc))
    results.print(table)
    emit_json({"subject": name, "config": source, "keys": {k: {"value": v, "doc": d} for k, v, d in rows}})

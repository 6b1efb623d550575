"""`radnerf train`: train a subject's model (head, lips fine-tune, torso), resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radnerf_cli.commands.common import BackendOpt, SubjectOpt, WorkspaceOpt

STAGE_CHOICES = ("head", "lips", "torso", "all")


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        overrides: Annotated[
            list[str] | None,
            typer.Argument(
                help="Config overrides as key=value, e.g. train.num_rays=4096 model.log2_hashmap_size=14 "
                "(sections model, render, train; every key is listed in a run's run/config.yaml).",
                show_default=False,
            ),
        ] = None,
        subject: SubjectOpt = None,
        workspace: WorkspaceOpt = None,
        stage: Annotated[str, typer.Option("--stage", help="Stage to train: head, lips, torso or all (in that order).")] = "all",
        iters: Annotated[
            int | None, typer.Option("--iters", help="Iterations of each selected stage (overrides the preset).", show_default=False)
        ] = None,
        preset: Annotated[
            str | None,
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
        backend: BackendOpt = "auto",
    ) -> None:
        """Train the subject's model; re-running resumes from the last checkpoint."""
        import torch

        from radnerf_cli.console import console
        from radnerf_cli.engine.trainer import Trainer
        from radnerf_cli.errors import InputError, KernelError
        from radnerf_cli.kernels import set_backend
        from radnerf_cli.model.config import STAGES, load_run_config
        from radnerf_cli.workspace import Workspace

        if stage not in STAGE_CHOICES:
            raise InputError(f"unknown stage '{stage}'", hint=f"use one of {', '.join(STAGE_CHOICES)}")
        if iters is not None and iters < 1:
            raise InputError(f"--iters must be at least 1, got {iters}")
        set_backend(backend)
        if backend == "cuda" and not torch.cuda.is_available():
            raise KernelError("--backend cuda needs a CUDA GPU (torch.cuda.is_available() is False)")
        device = "cuda" if backend in ("auto", "cuda", "torch") and torch.cuda.is_available() else "cpu"

        sub = Workspace(workspace).find_subject(subject)
        stages = list(STAGES) if stage == "all" else [stage]
        over = list(overrides or [])
        if iters is not None:
            over += [f"train.{s}_iters={iters}" for s in stages]
        saved = sub.run_dir / "config.yaml"
        yaml_path = config
        if preset is None and config is None and saved.is_file():
            preset, yaml_path = "full", saved  # resume with the run's own (complete) settings
            source = f"the run's config {saved}"
        else:
            preset = preset or ("full" if device == "cuda" else "fast")
            source = f"preset {preset}" + (f" + {config}" if config else "")
        cfg = load_run_config(preset, yaml_path, over)

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
        console.print(table)
        console.print(f"run folder: {sub.run_dir} (config.yaml, checkpoints/, previews/, curves.png, metrics.json)")

"""Training a subject's model in three stages: head, lips fine-tune, torso (RAD-NeRF's schedule).

    head   the head's loss (engine.losses); the occupancy grid is refreshed every 16 steps
    lips   as head, alternating steps render the whole mouth rectangle and add LPIPS on it;
           occupancy updates frozen
    torso  head frozen; the 2D torso layer over the background

The :class:`Trainer` sets a stage up (fresh, resumed, or from the previous stage's checkpoint), runs
the loop and the optimisation step, and writes checkpoints. Which rays a step uses is
``engine.sampling``; the losses ``engine.losses``; the weight average ``engine.ema``; previews,
validation, curves and metrics.json ``engine.run_outputs``.

Every random draw (frame, rays, noise, grid jitter) comes from one seeded generator whose state is
checkpointed, so an interrupted run resumed from its checkpoint continues exactly as if it had not
stopped. Ctrl-C saves a checkpoint at the end of the current step, then stops.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from radnerf_cli.config import save_config, to_dict
from radnerf_cli.console import console, progress
from radnerf_cli.engine import checkpoint, losses, run_outputs, sampling, visuals
from radnerf_cli.engine.ema import WeightEMA
from radnerf_cli.engine.inference import inference_state, stage_checkpoint
from radnerf_cli.engine.interrupt import DeferredInterrupt
from radnerf_cli.engine.run_outputs import StageReport
from radnerf_cli.errors import ConfigError, TrainingError, WorkspaceError
from radnerf_cli.model.config import STAGES, RunConfig, stage_iters
from radnerf_cli.workspace import Subject


class Trainer:
    """Trains the stages of one subject; checkpoints, previews and metrics go to ``subject.run_dir``."""

    def __init__(self, subject: Subject, cfg: RunConfig, device: str | torch.device | None = None, quiet: bool = False):
        self.subject = subject
        self.cfg = cfg
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu"
        )
        self.quiet = quiet
        self.fp16 = bool(cfg.train.fp16) and self.device.type == "cuda"
        self._data = None
        self._val = None

    # ------------------------------------------------------------------ data
    @property
    def data(self):
        if self._data is None:
            from radnerf_cli.data import SubjectData

            r = self.cfg.data
            self._data = SubjectData(
                self.subject.dataset, "train", feature=self.cfg.train.feature, downscale=self.cfg.train.downscale,
                scale=r.scale, offset=tuple(r.offset), show_progress=not self.quiet,
            )
            if len(self._data) >= self.cfg.model.ind_num:
                raise ConfigError(
                    f"{len(self._data)} training frames but model.ind_num is {self.cfg.model.ind_num}",
                    hint=f"set model.ind_num={len(self._data) + 1} or more",
                )
        return self._data

    @property
    def val(self):
        """The validation split (the training split when there is none)."""
        if self._val is None:
            from radnerf_cli.data import SubjectData

            r = self.cfg.data
            try:
                self._val = SubjectData(
                    self.subject.dataset, "val", feature=self.cfg.train.feature, downscale=self.cfg.train.downscale,
                    scale=r.scale, offset=tuple(r.offset), show_progress=False,
                )
                if len(self._val) == 0:
                    self._val = self.data
            except (WorkspaceError, FileNotFoundError, ValueError):
                self._val = self.data
        return self._val

    # ------------------------------------------------------------------ public
    def run(self, stages: list[str], max_steps: int | None = None) -> list[StageReport]:
        """Train ``stages`` in order; ``max_steps`` caps the steps of this run per stage (then checkpoint)."""
        self.subject.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        return [self.train_stage(s, max_steps) for s in stages]

    # ------------------------------------------------------------------ setup
    def _build(self, stage: str):
        from radnerf_cli.model.network import TalkingHeadModel
        from radnerf_cli.render.renderer import Renderer, pixel_coords

        torch.manual_seed(self.cfg.train.seed)
        model = TalkingHeadModel(self.cfg.model, self.cfg.render, self.data.feature_dim).to(self.device)
        self.model, self.renderer = model, Renderer(
            model, self.cfg.render, T_thresh_train=self.cfg.train.T_thresh, T_thresh_test=self.cfg.infer.T_thresh
        )
        self.coords = pixel_coords(self.data.H, self.data.W)
        self.gen = torch.Generator().manual_seed(self.cfg.train.seed + STAGES.index(stage))

    def _load_model_state(self, state: dict[str, Tensor], path: Path) -> None:
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ConfigError(
                f"{path}: was trained with different model settings ({str(e).splitlines()[1].strip()[:120]})",
                hint="use the config it was trained with (run/config.yaml) or delete run/checkpoints to start over",
            ) from None

    def _previous(self, stage: str) -> tuple[str, Path]:
        options = {"lips": ["head"], "torso": ["lips", "head"]}[stage]
        for prev in options:
            p = stage_checkpoint(self.subject, prev)
            if p.is_file():
                return prev, p
        raise WorkspaceError(
            f"subject '{self.subject.name}' has no {' or '.join(options)} checkpoint to start the {stage} stage from",
            hint=f"run `radnerf train --subject {self.subject.name} --stage head` first",
        )

    def _trainable(self, stage: str) -> list[tuple[str, torch.nn.Parameter]]:
        groups = self.model.param_groups(stage, 1.0, 1.0, 1.0)
        ids = {id(p) for g in groups for p in g["params"]}
        named = [(n, p) for n, p in self.model.named_parameters() if id(p) in ids]
        for _, p in self.model.named_parameters():
            p.requires_grad_(id(p) in ids)
        return named

    # ------------------------------------------------------------------ stage
    def train_stage(self, stage: str, max_steps: int | None = None) -> StageReport:
        cfg, tc = self.cfg, self.cfg.train
        iters = stage_iters(cfg, stage)
        path = stage_checkpoint(self.subject, stage)
        self._build(stage)
        data = self.data
        self.named = self._trainable(stage)
        groups = self.model.param_groups(stage, tc.lr, tc.lr_net, tc.lr_att_mult)
        for g in groups:
            g["initial_lr"] = g["lr"]
        self.opt = torch.optim.Adam(groups, betas=(0.9, 0.99), eps=1e-15)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.fp16)
        self.ema = WeightEMA(self.named, tc.ema_decay)
        self.history: dict[str, list[float]] = {"step": [], "loss": [], "psnr": []}
        step = 0
        prev_stages: list[str] = []
        if path.is_file():
            tensors, meta = checkpoint.load(path)
            self._load_model_state(checkpoint.prefixed(tensors, "model"), path)
            self.ema.load(checkpoint.prefixed(tensors, "ema"), self.device)
            checkpoint.load_optimizer(self.opt, tensors, meta["optimizer"])
            checkpoint.restore_rng(self.gen, tensors, meta["rng"])
            step = int(meta["step"])
            self.history = meta.get("history", self.history)
            prev_stages = [s for s in meta["model_meta"]["stages"] if s != stage]
            if step >= iters:
                self._say(f"[green]{stage}[/green]: already trained ({step}/{iters} steps), skipping")
                if stage == "lips" and not stage_checkpoint(self.subject, "torso").is_file():
                    self._render_gain(path)  # stopped between the last step and the measurement
                return StageReport(stage, step, step, iters, 0.0, 0.0, 0.0, 0.0, math.nan, math.nan, None, str(path), True)
            self._say(f"[bold]{stage}[/bold]: resuming from step {step} ({path})")
        elif stage == "head":
            n_unseen = self.model.occupancy.mark_unseen(data.poses, data.intrinsics)
            self._say(
                f"[bold]head[/bold]: {self.model.num_params(torso=False) / 1e6:.2f} M parameters, "
                f"{len(data)} frames of {data.H}x{data.W}, {n_unseen} of {self.model.occupancy.grid_size ** 3} "
                "grid cells unseen by the cameras"
            )
        else:
            prev, ppath = self._previous(stage)
            tensors, meta = checkpoint.load(ppath)
            prev_stages = list(meta["model_meta"]["stages"])
            if stage == "lips":  # continue the head's training state (raw weights and their EMA)
                self._load_model_state(checkpoint.prefixed(tensors, "model"), ppath)
                self.ema.load(checkpoint.prefixed(tensors, "ema"), self.device, known_only=True)
                if tc.lips_schedule == "continue" and prev == "head":  # and Adam's moments, as RAD-NeRF
                    checkpoint.load_optimizer(self.opt, tensors, meta["optimizer"])
            else:  # torso: the head's final (EMA) weights, frozen; the torso starts from its own init,
                # so its settings (table, resolution, code) may differ from the head run's
                own = self.model.state_dict()
                state = {k: v for k, v in inference_state(tensors).items() if not _is_torso(k)}
                state.update({k: v for k, v in own.items() if _is_torso(k)})
                self._load_model_state(state, ppath)
                if self.model.torso.body_dim:
                    self.model.torso.fit_body(data.body_pose())
                self.ema = WeightEMA(self.named, tc.ema_decay)
            self._say(f"[bold]{stage}[/bold]: starting from the {prev} checkpoint ({ppath})")
        self.stages_done = [s for s in prev_stages if s != stage] + [stage]
        if stage == "torso" and self.model.torso.body_dim:
            self.body = data.body_pose().to(self.device)  # [N, BODY_DIM]
        # only once the checkpoints fit these settings: a refused resume leaves the run's config as it was
        save_config(self.cfg, self.subject.run_dir / "config.yaml")
        if stage != "torso" and cfg.model.audio_path == "mouth":
            self._mouth_setup(fit=stage == "head" and step == 0 and not path.is_file())
        rep = self._loop(stage, step, iters, path, max_steps)
        if stage == "lips" and rep.step >= iters:
            self._render_gain(path)
        return rep

    def _mouth_setup(self, fit: bool) -> None:
        """Tracked mouth codes of the training frames; on a fresh head stage, fit the audio -> code predictor."""
        from radnerf_cli.engine import mouth_train

        self.codes = mouth_train.tracked_codes(self.data, self.cfg.model.mouth_dim).to(self.device)
        if fit:
            rep = mouth_train.fit(self.model.audio.predictor, self.data, self.codes.cpu(), self.cfg, quiet=self.quiet)
            run_outputs.write_metrics_entry(self.subject.run_dir, "mouth_fit", rep)

    def _render_gain(self, path: Path) -> None:
        """After the lips stage: measure how wide the field opens the mouth, store the render gain
        (:mod:`radnerf_cli.engine.mouth_calibrate`) in the lips checkpoint, once."""
        from radnerf_cli.engine import mouth_calibrate, mouth_train

        tc = self.cfg.train
        if not tc.mouth_render_gain or self.cfg.model.audio_path != "mouth":
            return
        codes = None if tc.mouth_render_gain_drive == "predicted" else mouth_train.tracked_codes(
            self.data, self.cfg.model.mouth_dim)
        rep = mouth_calibrate.calibrate_checkpoint(path, self.data, codes, tc.mouth_render_gain_frames,
                                                   tc.mouth_render_gain_max, self.device,
                                                   mouth_train.scaled_component(self.data, self.cfg))
        if rep is None:  # measured before
            return
        run_outputs.write_metrics_entry(self.subject.run_dir, "mouth_render_gain", rep)
        self._say(
            f"mouth render gain: on {rep['frames']} training frames the field opens the mouth {rep['ratio']:.2f}x "
            f"as wide as the person (r {rep['opening_corr'] or 0:+.2f}); gain {rep['gain']:.2f} "
            f"({rep['seconds']:.0f} s)"
        )

    # ------------------------------------------------------------------ loop
    def _loop(self, stage: str, start: int, iters: int, path: Path, max_steps: int | None) -> StageReport:
        tc = self.cfg.train
        end = iters if max_steps is None else min(iters, start + max_steps)
        step = start
        win_loss, win_mse, win_n = 0.0, 0.0, 0
        n_rays = n_samples = 0
        last_loss, last_psnr = math.nan, math.nan
        t0 = time.perf_counter()
        consistent = True
        extra = "loss {task.fields[loss]:.4f}  psnr {task.fields[psnr]:.2f}"
        bar = progress("it", extra=extra) if not self.quiet else None
        try:
            with DeferredInterrupt() as intr, (bar if bar is not None else nullcontext()):
                task = bar.add_task(stage, total=iters, completed=step, loss=math.nan, psnr=math.nan) if bar else None
                while step < end:
                    consistent = False
                    loss, mse, rays, samples = self._step(stage, step, iters)
                    step += 1
                    self._ema_update(step)
                    consistent = True
                    win_loss += loss
                    win_mse += mse
                    win_n += 1
                    n_rays += rays
                    n_samples += samples
                    if step % tc.log_every == 0 or step == end:
                        last_loss, last_psnr = win_loss / win_n, visuals.psnr(win_mse / win_n)
                        self.history["step"].append(step)
                        self.history["loss"].append(last_loss)
                        self.history["psnr"].append(last_psnr)
                        win_loss, win_mse, win_n = 0.0, 0.0, 0
                        if bar:
                            bar.update(task, completed=step, loss=last_loss, psnr=last_psnr)
                    if step % tc.ckpt_every == 0 and step < end:
                        self._save(stage, step, iters, path)
                    if step % tc.preview_every == 0 and step < end:
                        self._preview(stage, step)
                    if intr.requested:
                        raise KeyboardInterrupt
        except KeyboardInterrupt:
            if consistent:
                self._save(stage, step, iters, path)
                self._say(f"[yellow]interrupted[/yellow]: saved {stage} at step {step} to {path}; re-run to resume")
            raise
        seconds = time.perf_counter() - t0
        self._save(stage, step, iters, path)
        self._preview(stage, step)
        val = self._validate(stage) if step >= iters else None
        done = step - start
        rep = StageReport(
            stage, start, step, iters, seconds, done / max(seconds, 1e-9), n_rays / max(seconds, 1e-9),
            n_samples / max(seconds, 1e-9), last_loss, last_psnr, val, str(path),
        )
        run_outputs.write_metrics(self.subject.run_dir, rep, self.history, self.device)
        msg = f"[green]{stage}[/green]: step {step}/{iters}, {rep.it_per_s:.2f} it/s, PSNR {last_psnr:.2f}"
        self._say(msg + (f", validation PSNR {val:.2f}" if val is not None else ""))
        return rep

    def _lr_factor(self, stage: str, step: int, iters: int) -> float:
        tc = self.cfg.train
        if stage == "lips" and tc.lips_schedule == "continue":  # the head's decay goes on past its end
            return tc.lr_final ** ((tc.head_iters + step) / max(tc.head_iters, 1))
        final = tc.lips_lr_final if stage == "lips" else tc.lr_final
        return final ** (step / max(iters, 1))

    def _step(self, stage: str, step: int, iters: int) -> tuple[float, float, int, int]:
        """One optimisation step; returns (loss, mse, rays, samples)."""
        f = self._lr_factor(stage, step, iters)
        for g in self.opt.param_groups:
            g["lr"] = g["initial_lr"] * f
        if stage == "torso":
            if step % self.cfg.train.grid_update_interval == 0:
                self._update_torso_grid()
            loss, mse, rays, samples = self._torso_loss()
        else:
            if stage == "head" and step % self.cfg.train.grid_update_interval == 0:
                self._update_grid()
            loss, mse, rays, samples = self._head_loss(stage, step, iters)
        if not torch.isfinite(loss):
            ck = stage_checkpoint(self.subject, stage)
            kept = f"the last good checkpoint is kept at {ck}" if ck.is_file() else "no checkpoint was written"
            raise TrainingError(
                f"the {stage} loss became {float(loss.detach())} at step {step + 1}; {kept}",
                hint="lower train.lr and train.lr_net, then re-run to resume",
            )
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        return float(loss.detach()), float(mse), rays, samples

    # ------------------------------------------------------------------ losses
    def _head_loss(self, stage: str, step: int, iters: int) -> tuple[Tensor, Tensor, int, int]:
        tc, dev = self.cfg.train, self.device
        b = sampling.head_batch(self.data, self.gen, tc.num_rays, stage == "lips" and step % 2 == 0, dev,
                                tc.mouth_rays, tc.mouth_rect)
        fr = b.frame
        eye = fr["eye"].view(1, 1).to(dev) if fr["eye"] is not None else None
        with self._autocast():
            if self.cfg.model.audio_path == "mouth":  # the field learns from the tracked mouth shape
                code = self.codes[b.index : b.index + 1]
                noise = torch.randn(code.shape, generator=self.gen).to(dev) * tc.mouth_code_noise
                enc_a = self.model.audio.embed(code + noise)
            else:
                enc_a = self.model.audio(fr["aud"].to(dev))
        out = self.renderer.head_train(
            b.rays_o, b.rays_d, enc_a, self.model.ind_code(b.index), eye, b.noises, fp16=self.fp16,
        )
        loss, mse, pred = losses.head_loss(tc, out, b.gt, b.bg, b.outside, losses.ambient_ramp(stage, step, iters))
        if b.patch is not None:
            loss = loss + tc.lambda_lpips * losses.mouth_lpips(self._lpips(), pred, b.gt, b.patch, tc.lips_min_patch)
        return loss, mse.detach(), b.n, int(out["num_samples"])

    def _torso_loss(self) -> tuple[Tensor, Tensor, int, int]:
        tc, dev = self.cfg.train, self.device
        b = sampling.torso_batch(self.data, self.gen, tc.torso_rays or tc.num_rays, dev, tc.torso_focus)
        cond = self.model.torso.condition(b.frame["pose"][None].to(dev), self._body(b.index))
        alpha, rgb = self.renderer.torso(
            self.coords[b.inds].to(dev), cond, self.model.torso_code(b.index), use_grid=True, fp16=self.fp16
        )
        loss, mse = losses.torso_loss(tc, alpha, rgb, b.bg, b.target)
        return loss, mse.detach(), int(b.inds.shape[0]), 0

    def _body(self, i: int) -> Tensor | None:
        """[1, BODY_DIM] body pose of training frame ``i`` (None when the torso does not use it)."""
        return self.body[i : i + 1] if self.model.torso.body_dim else None

    def _lpips(self):
        if not hasattr(self, "_lpips_fn"):
            self._lpips_fn = losses.load_lpips(self.device)
        return self._lpips_fn

    # ------------------------------------------------------------------ grids
    def _autocast(self):
        return torch.autocast(device_type="cuda", dtype=torch.float16, enabled=self.fp16)

    @torch.no_grad()
    def _update_grid(self) -> None:
        from radnerf_cli.data import audio_window

        data, dev = self.data, self.device
        r = sampling.random_frame(data, self.gen)
        if self.cfg.model.audio_path == "mouth":
            enc_a = self.model.audio.embed(self.codes[r : r + 1])
        else:
            enc_a = self.model.audio(audio_window(data.auds, int(data.aud_ids[r])).to(dev))
        eye = data.eye[r : r + 1].view(1, 1).to(dev) if data.eye is not None else None

        def density(x: Tensor) -> Tensor:
            with self._autocast():
                return self.model.head.density(x, enc_a, eye)

        self.model.occupancy.update(density, self.gen, self.cfg.train.grid_decay, self.cfg.render.density_thresh)

    @torch.no_grad()
    def _update_torso_grid(self) -> None:
        r = sampling.random_frame(self.data, self.gen)
        cond = self.model.torso.condition(self.data.poses[r : r + 1].to(self.device), self._body(r))
        code = self.model.torso_code(r)

        def alpha(xy: Tensor) -> Tensor:
            with self._autocast():
                return self.model.torso(xy.to(self.device), cond, code)[0]

        self.model.torso_occupancy.update(alpha, self.gen, self.cfg.train.grid_decay)

    def _ema_update(self, n: int) -> None:
        self.ema.update(n)

    # ------------------------------------------------------------------ outputs
    def _model_meta(self, stage: str) -> dict[str, Any]:
        d = self.data
        return {
            "config": to_dict(self.cfg),
            "feature_kind": d.feature_kind,
            "feature_dim": d.feature_dim,
            "H": d.H,
            "W": d.W,
            "intrinsics": [float(v) for v in d.intrinsics],
            "scale": float(self.cfg.data.scale),
            "offset": [float(v) for v in self.cfg.data.offset],
            "stages": self.stages_done,
            "stage": stage,
        }

    def _save(self, stage: str, step: int, iters: int, path: Path) -> None:
        d = self.data
        tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"ema/{k}": v for k, v in self.ema.shadow.items()})
        opt_t, groups = checkpoint.optimizer_tensors(self.opt)
        tensors.update(opt_t)
        rng_t, rng_js = checkpoint.rng_state(self.gen)
        tensors.update(rng_t)
        tensors["data/background"] = (d.bg * 255).round().clamp(0, 255).to(torch.uint8)
        tensors["data/pose_track"] = torch.from_numpy(np.asarray(d.poses_raw, dtype=np.float32))
        if d.eye is not None:
            tensors["data/eye_track"] = d.eye.float()
        if stage == "torso" and self.model.torso.body_dim:
            tensors["data/body_track"] = self.body.float().cpu()
        meta = {
            "stage": stage,
            "step": step,
            "iters": iters,
            "optimizer": groups,
            "rng": rng_js,
            "history": self.history,
            "model_meta": self._model_meta(stage),
        }
        checkpoint.save(path, tensors, meta)

    def _render_eval(self, data, i: int, stage: str) -> tuple[np.ndarray, np.ndarray]:
        """Render frame ``i`` of ``data`` (EMA weights, code 0): ([H, W, 3] float, [H, W] depth)."""
        return run_outputs.render_eval(
            self.model, self.renderer, self.ema, self.coords, data, i, stage, self.device, self.fp16
        )

    def _preview(self, stage: str, step: int) -> None:
        data = self.val
        img, depth = self._render_eval(data, 0, stage)
        run_outputs.save_preview(self.subject.run_dir, stage, step, img, data.frame(0)["image"].numpy(), depth)
        run_outputs.save_curves(self.subject, self.stages_done[-1], self.history)

    def _validate(self, stage: str) -> float:
        return run_outputs.validate(lambda d, i: self._render_eval(d, i, stage), self.val, self.cfg.train.val_frames)

    def _say(self, msg: str) -> None:
        if not self.quiet:
            console.print(msg)



def _is_torso(key: str) -> bool:
    """A model-state key of the torso layer (its field, per-frame codes or occupancy)."""
    return key.startswith(("torso.", "torso_occupancy.", "individual_codes_torso"))

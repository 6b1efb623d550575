"""Training a subject's model in three stages: head, lips fine-tune, torso (RAD-NeRF's schedule).

    head   MSE + 1e-4 entropy(weights_sum) + lambda_amb (ramped) |ambient| outside the face;
           the occupancy grid is refreshed every 16 steps
    lips   as head, alternating steps render the whole mouth rectangle and add 0.01 LPIPS on it;
           occupancy updates frozen
    torso  head frozen; the 2D torso layer over the background, MSE + 1e-4 entropy(alpha)

Every random draw (frame, rays, noise, grid jitter) comes from one seeded generator whose state is
checkpointed, so an interrupted run resumed from its checkpoint continues exactly as if it had not
stopped. Ctrl-C saves a checkpoint at the end of the current step, then stops.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from radnerf_cli import fsutil
from radnerf_cli.config import save_config, to_dict
from radnerf_cli.console import console, progress
from radnerf_cli.engine import checkpoint, visuals
from radnerf_cli.engine.inference import inference_state, stage_checkpoint
from radnerf_cli.errors import ConfigError, TrainingError, WorkspaceError
from radnerf_cli.model.config import STAGES, RunConfig, stage_iters
from radnerf_cli.workspace import Subject


@dataclass
class StageReport:
    """What one stage did in this run."""

    stage: str
    start_step: int  # step the run started from (> 0 when resumed)
    step: int  # step reached
    iters: int  # iterations of the stage
    seconds: float  # wall time of this run's steps
    it_per_s: float  # iterations per second
    rays_per_s: float  # training rays per second
    samples_per_s: float  # network samples per second (head and lips)
    loss: float  # mean loss of the last logging window
    psnr: float  # training PSNR of the last logging window
    val_psnr: float | None  # PSNR on validation frames at the end of the stage
    checkpoint: str  # checkpoint path
    skipped: bool = False  # the stage was already complete


def _entropy(x: Tensor) -> Tensor:
    x = x.clamp(1e-5, 1 - 1e-5)
    return (-x * torch.log2(x) - (1 - x) * torch.log2(1 - x)).mean()


class _Interrupt:
    """Defers Ctrl-C to the end of the current step (so the checkpoint is consistent)."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


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

            r = self.cfg.render
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

            r = self.cfg.render
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
        save_config(self.cfg, self.subject.run_dir / "config.yaml")
        return [self.train_stage(s, max_steps) for s in stages]

    # ------------------------------------------------------------------ setup
    def _build(self, stage: str):
        from radnerf_cli.model.network import TalkingHeadModel
        from radnerf_cli.render.renderer import Renderer, pixel_coords

        torch.manual_seed(self.cfg.train.seed)
        model = TalkingHeadModel(self.cfg.model, self.cfg.render, self.data.feature_dim).to(self.device)
        self.model, self.renderer = model, Renderer(model, self.cfg.render)
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
        self.ema = {n: p.detach().clone() for n, p in self.named}
        self.history: dict[str, list[float]] = {"step": [], "loss": [], "psnr": []}
        step = 0
        prev_stages: list[str] = []
        if path.is_file():
            tensors, meta = checkpoint.load(path)
            self._load_model_state(checkpoint.prefixed(tensors, "model"), path)
            self.ema.update({k: v.to(self.device) for k, v in checkpoint.prefixed(tensors, "ema").items()})
            checkpoint.load_optimizer(self.opt, tensors, meta["optimizer"])
            checkpoint.restore_rng(self.gen, tensors, meta["rng"])
            step = int(meta["step"])
            self.history = meta.get("history", self.history)
            prev_stages = [s for s in meta["model_meta"]["stages"] if s != stage]
            if step >= iters:
                self._say(f"[green]{stage}[/green]: already trained ({step}/{iters} steps), skipping")
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
                self.ema.update({k: v.to(self.device) for k, v in checkpoint.prefixed(tensors, "ema").items() if k in self.ema})
            else:  # torso: the head's final (EMA) weights, frozen
                self._load_model_state(inference_state(tensors), ppath)
                self.ema = {n: p.detach().clone() for n, p in self.named}
            self._say(f"[bold]{stage}[/bold]: starting from the {prev} checkpoint ({ppath})")
        self.stages_done = [s for s in prev_stages if s != stage] + [stage]
        return self._loop(stage, step, iters, path, max_steps)

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
            with _Interrupt() as intr, (bar if bar is not None else _null()):
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
        self._write_metrics(rep)
        msg = f"[green]{stage}[/green]: step {step}/{iters}, {rep.it_per_s:.2f} it/s, PSNR {last_psnr:.2f}"
        self._say(msg + (f", validation PSNR {val:.2f}" if val is not None else ""))
        return rep

    def _lr_factor(self, stage: str, step: int, iters: int) -> float:
        final = self.cfg.train.lips_lr_final if stage == "lips" else self.cfg.train.lr_final
        return final ** (step / max(iters, 1))

    def _step(self, stage: str, step: int, iters: int) -> tuple[float, float, int, int]:
        """One optimisation step; returns (loss, mse, rays, samples)."""
        f = self._lr_factor(stage, step, iters)
        for g in self.opt.param_groups:
            g["lr"] = g["initial_lr"] * f
        if stage == "torso":
            if step % self.cfg.render.update_interval == 0:
                self._update_torso_grid()
            loss, mse, rays, samples = self._torso_loss()
        else:
            if stage == "head" and step % self.cfg.render.update_interval == 0:
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
    def _frame(self, i: int) -> dict:
        return self.data.frame(i)

    def _rand_index(self) -> int:
        return int(torch.randint(len(self.data), (1,), generator=self.gen))

    def _head_loss(self, stage: str, step: int, iters: int) -> tuple[Tensor, Tensor, int, int]:
        from radnerf_cli.data import get_rays

        tc, data, dev = self.cfg.train, self.data, self.device
        i = self._rand_index()
        fr = self._frame(i)
        lips = stage == "lips" and step % 2 == 0
        pose = fr["pose"][None]
        if lips:
            rect = fr["lips_rect"].tolist()
            rays = get_rays(pose, data.intrinsics, data.H, data.W, rect=rect)
        else:
            rays = get_rays(pose, data.intrinsics, data.H, data.W, N=tc.num_rays, generator=self.gen)
        inds = rays["inds"][0]
        n = inds.shape[0]
        noises = torch.rand(n, generator=self.gen)
        gt = fr["image"].view(-1, 3)[inds]
        bg = fr["bg"].view(-1, 3)[inds]
        if fr["torso_image"] is not None:  # the head is rendered over the (ground-truth) torso layer
            t = fr["torso_image"].view(-1, 4)[inds]
            bg = t[:, :3] * t[:, 3:] + bg * (1 - t[:, 3:])
        outside = ~fr["face_mask"].view(-1)[inds]
        gt, bg, outside = gt.to(dev), bg.to(dev), outside.to(dev)
        eye = fr["eye"].view(1, 1).to(dev) if fr["eye"] is not None else None
        with self._autocast():
            enc_a = self.model.audio(fr["aud"].to(dev))
        out = self.renderer.head_train(
            rays["rays_o"][0].to(dev).contiguous(), rays["rays_d"][0].to(dev).contiguous(), enc_a,
            self.model.ind_code(i), eye, noises.to(dev), fp16=self.fp16,
        )
        ws = out["weights_sum"]
        pred = out["image"] + (1 - ws).unsqueeze(-1) * bg
        mse = ((pred - gt) ** 2).mean()
        loss = mse + tc.lambda_entropy * _entropy(ws)
        ramp = 1.0 if stage == "lips" else min(step / max(iters, 1), 1.0)
        loss = loss + ramp * tc.lambda_amb * (out["ambient"] * outside).mean()
        if lips:
            xmin, xmax, ymin, ymax = rect
            h, w = min(xmax, data.H) - max(xmin, 0), min(ymax, data.W) - max(ymin, 0)
            p = pred.view(1, h, w, 3).permute(0, 3, 1, 2)
            q = gt.view(1, h, w, 3).permute(0, 3, 1, 2)
            if min(h, w) < tc.lips_min_patch:  # AlexNet needs a few pooling steps' worth of pixels
                size = (max(tc.lips_min_patch, h * tc.lips_min_patch // min(h, w)), max(tc.lips_min_patch, w * tc.lips_min_patch // min(h, w)))
                p = torch.nn.functional.interpolate(p, size=size, mode="bilinear", align_corners=False)
                q = torch.nn.functional.interpolate(q, size=size, mode="bilinear", align_corners=False)
            loss = loss + tc.lambda_lpips * self._lpips()(p.float(), q.float()).mean()
        return loss, mse.detach(), n, int(out["num_samples"])

    def _torso_loss(self) -> tuple[Tensor, Tensor, int, int]:
        from radnerf_cli.model.torso import pose_to_euler_trans

        tc, data, dev = self.cfg.train, self.data, self.device
        i = self._rand_index()
        fr = self._frame(i)
        inds = torch.randint(0, data.H * data.W, (tc.num_rays,), generator=self.gen)
        bg = fr["bg"].view(-1, 3)[inds]
        if fr["torso_image"] is not None:
            t = fr["torso_image"].view(-1, 4)[inds]
            target = t[:, :3] * t[:, 3:] + bg * (1 - t[:, 3:])
        else:
            target = bg
        bg, target = bg.to(dev), target.to(dev)
        pose6 = pose_to_euler_trans(fr["pose"][None].to(dev))
        alpha, rgb = self.renderer.torso(
            self.coords[inds].to(dev), pose6, self.model.torso_code(i), use_grid=True, fp16=self.fp16
        )
        pred = rgb * alpha + bg * (1 - alpha)
        mse = ((pred - target) ** 2).mean()
        loss = mse + tc.lambda_entropy * _entropy(alpha)
        return loss, mse.detach(), int(inds.shape[0]), 0

    def _lpips(self):
        if not hasattr(self, "_lpips_fn"):
            from radnerf_cli.metrics.lpips import get_lpips

            self._lpips_fn = get_lpips(self.device)
            for p in self._lpips_fn.parameters():
                p.requires_grad_(False)
        return self._lpips_fn

    # ------------------------------------------------------------------ grids
    def _autocast(self):
        return torch.autocast(device_type="cuda", dtype=torch.float16, enabled=self.fp16)

    @torch.no_grad()
    def _update_grid(self) -> None:
        from radnerf_cli.data import audio_window

        data, dev = self.data, self.device
        r = self._rand_index()
        enc_a = self.model.audio(audio_window(data.auds, int(data.aud_ids[r])).to(dev))
        eye = data.eye[r : r + 1].view(1, 1).to(dev) if data.eye is not None else None

        def density(x: Tensor) -> Tensor:
            with self._autocast():
                return self.model.head.density(x, enc_a, eye)

        r_cfg = self.cfg.render
        self.model.occupancy.update(density, self.gen, r_cfg.grid_decay, r_cfg.density_thresh)

    @torch.no_grad()
    def _update_torso_grid(self) -> None:
        from radnerf_cli.model.torso import pose_to_euler_trans

        r = self._rand_index()
        pose6 = pose_to_euler_trans(self.data.poses[r : r + 1].to(self.device))
        code = self.model.torso_code(r)

        def alpha(xy: Tensor) -> Tensor:
            with self._autocast():
                return self.model.torso(xy.to(self.device), pose6, code)[0]

        self.model.torso_occupancy.update(alpha, self.gen, self.cfg.render.grid_decay)

    # ------------------------------------------------------------------ EMA
    @torch.no_grad()
    def _ema_update(self, n: int) -> None:
        decay = min(self.cfg.train.ema_decay, (1 + n) / (10 + n))
        shadows = [self.ema[name] for name, _ in self.named]
        params = [p.detach() for _, p in self.named]
        torch._foreach_lerp_(shadows, params, 1.0 - decay)

    @contextmanager
    def _ema_weights(self):
        backup = {n: p.detach().clone() for n, p in self.named}
        with torch.no_grad():
            for n, p in self.named:
                p.copy_(self.ema[n])
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in self.named:
                    p.copy_(backup[n])

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
            "scale": float(self.cfg.render.scale),
            "offset": [float(v) for v in self.cfg.render.offset],
            "stages": self.stages_done,
            "stage": stage,
        }

    def _save(self, stage: str, step: int, iters: int, path: Path) -> None:
        d = self.data
        tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"ema/{k}": v for k, v in self.ema.items()})
        opt_t, groups = checkpoint.optimizer_tensors(self.opt)
        tensors.update(opt_t)
        rng_t, rng_js = checkpoint.rng_state(self.gen)
        tensors.update(rng_t)
        tensors["data/background"] = (d.bg * 255).round().clamp(0, 255).to(torch.uint8)
        tensors["data/pose_track"] = torch.from_numpy(np.asarray(d.poses_raw, dtype=np.float32))
        if d.eye is not None:
            tensors["data/eye_track"] = d.eye.float()
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

    @torch.no_grad()
    def _render_eval(self, data, i: int, stage: str) -> tuple[np.ndarray, np.ndarray]:
        """Render frame ``i`` of ``data`` (EMA weights, code 0): ([H, W, 3] float, [H, W] depth)."""
        from radnerf_cli.data import get_rays
        from radnerf_cli.model.torso import pose_to_euler_trans

        fr, dev = data.frame(i), self.device
        pose = fr["pose"][None].to(dev)
        rays = get_rays(pose, data.intrinsics, data.H, data.W)
        bg = fr["bg"].view(-1, 3)
        pose6 = None
        if stage == "torso":
            pose6 = pose_to_euler_trans(pose)
        elif fr["torso_image"] is not None:
            t = fr["torso_image"].view(-1, 4)
            bg = t[:, :3] * t[:, 3:] + bg * (1 - t[:, 3:])
        eye = fr["eye"].view(1, 1).to(dev) if fr["eye"] is not None else None
        was_training = self.model.training
        self.model.eval()
        with self._ema_weights():
            enc_a = self.model.audio(fr["aud"].to(dev))
            out = self.renderer.frame(
                rays["rays_o"][0].contiguous(), rays["rays_d"][0].contiguous(), self.coords.to(dev), bg.to(dev),
                enc_a, eye, pose6, fp16=self.fp16,
            )
        self.model.train(was_training)
        H, W = data.H, data.W
        return out["image"].view(H, W, 3).float().cpu().numpy(), out["depth"].view(H, W).float().cpu().numpy()

    def _preview(self, stage: str, step: int) -> None:
        data = self.val
        img, depth = self._render_eval(data, 0, stage)
        truth = data.frame(0)["image"].numpy()
        out = self.subject.run_dir / "previews" / f"{stage}_{step:06d}.png"
        visuals.save_preview(out, (img * 255 + 0.5).astype(np.uint8), (truth * 255 + 0.5).astype(np.uint8), depth)
        self._curves()

    def _curves(self) -> None:
        hist: dict[str, dict[str, list[float]]] = {}
        for s in STAGES:
            if s == self._current_stage_name():
                hist[s] = self.history
                continue
            p = stage_checkpoint(self.subject, s)
            m = self._read_metrics().get("stages", {}).get(s)
            if m and p.is_file():
                hist[s] = m.get("history", {})
        visuals.save_curves(self.subject.run_dir / "curves.png", hist)

    def _current_stage_name(self) -> str:
        return self.stages_done[-1]

    def _validate(self, stage: str) -> float:
        data = self.val
        n = max(1, min(self.cfg.train.val_frames, len(data)))
        idx = np.linspace(0, len(data) - 1, n).round().astype(int)
        mses = []
        for i in idx:
            img, _ = self._render_eval(data, int(i), stage)
            truth = data.frame(int(i))["image"].numpy()
            mses.append(float(np.mean((img - truth) ** 2)))
        return visuals.psnr(float(np.mean(mses)))

    def _read_metrics(self) -> dict[str, Any]:
        import json

        p = self.subject.run_dir / "metrics.json"
        if p.is_file():
            try:
                return json.loads(p.read_text())
            except ValueError:
                return {}
        return {}

    def _write_metrics(self, rep: StageReport) -> None:
        m = self._read_metrics()
        m.setdefault("stages", {})[rep.stage] = {**asdict(rep), "history": self.history}
        m["device"] = str(self.device)
        fsutil.write_json(self.subject.run_dir / "metrics.json", m)

    def _say(self, msg: str) -> None:
        if not self.quiet:
            console.print(msg)


@contextmanager
def _null():
    yield None

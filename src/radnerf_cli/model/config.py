"""Typed configs of a training run: the model, the renderer and the trainer, plus the presets.

A run's config is a :class:`RunConfig` built by :func:`load_run_config` from defaults <- preset <-
YAML file <- ``key=value`` overrides (``train.num_rays=4096``, ``model.log2_hashmap_size=14``). The
defaults are the original RAD-NeRF settings; the ``full`` preset keeps them (for a GPU), the ``fast``
preset trades resolution and iterations for a recognisable model in minutes on a laptop CPU.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from radnerf_cli.errors import ConfigError

STAGES = ("head", "lips", "torso")


@dataclass
class ModelConfig:
    bound: float = 1.0  # the scene lives in [-bound, bound]^3 (model space, after nerf_matrix_to_ngp)
    audio_dim: int = 64  # size of the audio code enc_a
    audio_att: bool = True  # smooth the 8-frame window of audio codes with AudioAttNet
    audio_path: str = "direct"  # direct: RAD-NeRF's audio net feeds the field; mouth: audio -> mouth-shape code -> field
    mouth_dim: int = 4  # components of the mouth-shape code (audio_path=mouth)
    mouth_predictor: str = "net"  # audio -> mouth-code predictor (audio_path=mouth): net (conv net + attention) or ridge (linear)
    mouth_dropout: float = 0.2  # dropout in the net mouth-code predictor
    mouth_window_rows: int = 16  # ridge predictor: feature rows at the centre of each frame's 16-row window it averages (4: the 80 ms around the frame)
    num_levels: int = 16  # levels of every multiresolution grid
    level_dim: int = 2  # features per level
    base_resolution: int = 16  # coarsest grid resolution
    log2_hashmap_size: int = 16  # log2 of the table entries per level (dense below, hashed/tiled above)
    desired_resolution: int = 2048  # finest resolution of the 3D grid (times bound)
    ambient_dim: int = 2  # dimensions of the ambient (audio-spatial) coordinates
    ambient_resolution: int = 2048  # finest resolution of the 2D ambient grid (the original code; ~3.0 M head parameters)
    hidden_dim: int = 64  # width of the ambient, sigma and colour MLPs
    geo_feat_dim: int = 64  # geometry feature passed from the sigma MLP to the colour MLP
    sh_degree: int = 4  # spherical-harmonics degree of the view direction encoding
    exp_eye: bool = True  # condition the density on the eye-opening value
    ind_num: int = 10000  # number of per-frame individual codes (must exceed the training frames)
    ind_dim: int = 4  # size of the head's individual code (0 disables)
    ind_dim_torso: int = 8  # size of the torso's individual code (0 disables)
    torso_shrink: float = 0.8  # pixel coordinates are scaled by this before the torso deformation
    torso_resolution: int = 2048  # finest resolution of the torso's 2D grid
    torso_log2_hashmap_size: int | None = None  # log2 table entries per level of the torso grid (None: log2_hashmap_size)
    torso_hidden_dim: int = 32  # width of the torso colour MLP
    torso_deform_dim: int = 64  # width of the torso deformation MLP
    torso_body: bool = False  # also condition the torso on the body pose (shoulders, shift) of each frame
    torso_body_freqs: int = 0  # frequencies of the body pose's encoding (0: the standardised values as they are)


@dataclass
class DataConfig:
    scale: float = 4.0  # camera translations are multiplied by this (RAD-NeRF's --scale)
    offset: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # added to camera translations


@dataclass
class RenderConfig:
    aabb: list[float] = field(default_factory=lambda: [-1.0, -0.5, -1.0, 1.0, 0.5, 1.0])  # head box (x0 y0 z0 x1 y1 z1)
    min_near: float = 0.05  # nearest distance a ray starts at
    dt_gamma: float = 1.0 / 256  # step grows as t * dt_gamma (0: constant steps)
    max_steps: int = 16  # samples per ray at most
    grid_size: int = 128  # occupancy grid resolution per side
    density_thresh: float = 10.0  # occupancy threshold on sigma (capped by the grid's mean density)
    density_thresh_torso: float = 0.01  # occupancy threshold on the torso alpha


@dataclass
class InferConfig:
    T_thresh: float = 1e-2  # transmittance at which an inference ray stops
    smooth_audio: float = 0.35  # weight of the previous audio code in test-time smoothing
    fp16: bool = True  # mixed precision (float16 autocast) when rendering on CUDA; ignored on CPU


@dataclass
class TrainConfig:
    seed: int = 0  # seed of every random draw (frames, rays, noise, grid updates)
    feature: str | None = None  # audio feature file aud_<feature>.npy (None: the best one present)
    downscale: int = 1  # train on images downscaled by this factor
    num_rays: int = 65536  # rays per training step
    head_iters: int = 200000  # iterations of the head stage
    lips_iters: int = 50000  # iterations of the lips fine-tune stage
    torso_iters: int = 200000  # iterations of the torso stage
    torso_rays: int | None = None  # pixels per torso step (None: num_rays)
    torso_focus: float = 0.0  # fraction of the torso pixels drawn from the rows the body spans (0: uniform)
    lr: float = 5e-3  # learning rate of the grid tables
    lr_net: float = 5e-4  # learning rate of the networks (the audio attention gets 5x)
    lr_att_mult: float = 5.0  # learning-rate multiplier of the audio attention network
    lr_final: float = 0.1  # learning rates decay per step to this fraction at the end of a stage
    lips_lr_final: float = 0.05  # lips stage with lips_schedule=restart: decay from the full rate to this fraction
    lips_schedule: str = "continue"  # continue: the head's decay goes on, Adam state kept (RAD-NeRF); restart: fresh Adam at full rate
    mouth_rays: float = 0.0  # share of each head step's rays drawn inside mouth_rect (0: uniform)
    mouth_rect: str = "face"  # where mouth_rays are drawn: face (nose to chin, RAD-NeRF's face rectangle) or lips (square around the lips)
    mouth_code_noise: float = 0.05  # std of the noise on tracked mouth codes while training the field (audio_path=mouth)
    mouth_fit_steps: int = 1500  # steps of the net audio -> mouth-code fit, at most 3 per training frame (100 at least)
    mouth_ridge_alpha: float = 0.0  # ridge predictor's regularisation per training frame (0: chosen by cross-validation)
    mouth_render_gain: bool = False  # after the lips stage, scale the predicted mouth code so the rendered mouth opens as wide as the person's
    mouth_gain: str = "opening"  # what the predictor's gains scale up: opening (the opening component; the rest keep their least-squares scale) or all (every component it follows)
    mouth_render_gain_drive: str = "predicted"  # what drives the field while measuring it: predicted (from the audio) or tracked codes
    mouth_render_gain_frames: int = 160  # training frames rendered to measure it
    mouth_render_gain_max: float = 2.0  # the largest gain it may set
    lambda_amb: float = 0.1  # weight of the ambient loss outside the face (ramped from 0)
    lambda_entropy: float = 1e-4  # weight of the entropy of the weights sum / torso alpha
    lambda_lpips: float = 0.01  # weight of LPIPS on the mouth patch in the lips stage
    lips_min_patch: int = 64  # mouth patches smaller than this are upsampled before LPIPS
    ema_decay: float = 0.95  # decay of the exponential moving average of the weights
    grid_update_interval: int = 16  # steps between occupancy grid updates
    grid_decay: float = 0.95  # EMA decay of the occupancy grid at each update
    T_thresh: float = 1e-4  # transmittance at which a training ray stops
    fp16: bool = True  # mixed precision (float16 autocast) when training on CUDA; ignored on CPU
    ckpt_every: int = 1000  # steps between checkpoints
    preview_every: int = 1000  # steps between preview and curve images
    log_every: int = 10  # steps between progress bar / metrics updates
    val_frames: int = 2  # validation frames rendered for the PSNR at the end of a stage


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)  # conventions of the dataset's cameras
    model: ModelConfig = field(default_factory=ModelConfig)  # network sizes
    render: RenderConfig = field(default_factory=RenderConfig)  # ray marching and occupancy, training and inference
    train: TrainConfig = field(default_factory=TrainConfig)  # optimisation
    infer: InferConfig = field(default_factory=InferConfig)  # rendering a trained model


# Keys that moved to the section a reader looks for them in; configs saved with the old names (run
# configs, checkpoints, bundles, YAML files, overrides) still load: :func:`upgrade` renames them.
MOVED_KEYS: dict[str, str] = {
    "render.scale": "data.scale",
    "render.offset": "data.offset",
    "render.update_interval": "train.grid_update_interval",
    "render.grid_decay": "train.grid_decay",
    "render.T_thresh_train": "train.T_thresh",
    "render.T_thresh_test": "infer.T_thresh",
    "render.smooth_audio": "infer.smooth_audio",
}


def upgrade(d: dict[str, Any]) -> dict[str, Any]:
    """A config dict with the old key names moved to their sections (a new dict; ``d`` is not changed).

    A config saved before ``infer.fp16`` existed rendered with ``train.fp16``: it keeps doing so. One
    saved before ``model.mouth_predictor`` existed (it has ``model.mouth_dim``, as every saved config
    does) used the network predictor: it keeps it, whatever the preset it is resumed over says; likewise
    its ridge predictor averaged every row of a window (``model.mouth_window_rows=16``), and its
    predictor's gains scaled every component it followed (``train.mouth_gain=all``).
    """
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    moved_any = False
    for old, new in MOVED_KEYS.items():
        s_old, k_old = old.split(".")
        if isinstance(out.get(s_old), dict) and k_old in out[s_old]:
            s_new, k_new = new.split(".")
            out.setdefault(s_new, {})[k_new] = out[s_old].pop(k_old)
            moved_any = True
    if moved_any and isinstance(out.get("train"), dict) and "fp16" in out["train"]:
        out.setdefault("infer", {}).setdefault("fp16", out["train"]["fp16"])
    model = out.get("model")
    if isinstance(model, dict) and "mouth_dim" in model and "mouth_predictor" not in model:
        model["mouth_predictor"] = "net"
    if isinstance(model, dict) and "mouth_dim" in model and "mouth_window_rows" not in model:
        model["mouth_window_rows"] = 16  # saved before the key existed: the ridge averaged whole windows
    if isinstance(model, dict) and "mouth_dim" in model and isinstance(out.get("train", {}), dict):
        # saved before the key existed: every component the predictor followed was scaled up
        out.setdefault("train", {}).setdefault("mouth_gain", "all")
    return out


def upgrade_override(item: str) -> str:
    """``render.smooth_audio=0.5`` -> ``infer.smooth_audio=0.5``; other overrides unchanged."""
    key, sep, val = item.partition("=")
    return MOVED_KEYS.get(key.strip(), key) + sep + val if sep else item


# Presets are partial configs applied over the defaults.
PRESETS: dict[str, dict[str, Any]] = {
    # The original RAD-NeRF settings (meant for a CUDA GPU: 65536 rays, 200k + 50k + 200k iterations),
    # except what drives the mouth, as in `fast`: the audio -> mouth-code path (model.audio_path=direct
    # for RAD-NeRF's) with the ridge predictor, 40% of each head step's rays in the square around the
    # lips, and no per-frame head code (model.ind_dim=0: a free code per frame soaks up mouth
    # appearance the mouth code should carry).
    "full": {"model": {"audio_path": "mouth", "mouth_predictor": "ridge", "mouth_window_rows": 4, "ind_dim": 0},
             "train": {"mouth_rays": 0.4, "mouth_rect": "lips", "mouth_render_gain": True}},
    # A laptop-CPU budget: images downscaled 2x, 1024 rays per step (more, smaller steps: the mouth
    # learns per step, not per ray), 2^14-entry tables (Adam touches 4x fewer parameters per step), a
    # 64^3 occupancy grid (an update evaluates 262k points instead of 2.1M), 13000 + 1500 + 6000
    # iterations, LPIPS on the mouth patch weighted 0.3 (0.01 leaves the lips stage's mouth half
    # shut), a torso on the body pose too, 512 pixels a step (more, smaller steps: measured), the
    # occupancy grid refreshed every 32 steps instead of 16 (a refresh costs as much as 5 steps); fine
    # detail (teeth, hair) needs the full preset.
    # Its measured speed and quality are in the README ("Measured speed and quality").
    "fast": {
        "model": {"log2_hashmap_size": 14, "desired_resolution": 1024, "torso_resolution": 512, "audio_path": "mouth",
                  "mouth_predictor": "ridge", "mouth_window_rows": 4, "ind_dim": 0, "torso_body": True},
        "render": {"grid_size": 64},
        "train": {
            "downscale": 2,
            "num_rays": 1024,
            "mouth_rays": 0.4,
            "mouth_rect": "lips",
            "mouth_render_gain": True,
            "head_iters": 13000,
            "lips_iters": 1500,
            "torso_iters": 6000,
            "torso_rays": 512,
            "lambda_lpips": 0.3,
            "ckpt_every": 250,
            "grid_update_interval": 32,
        },
    },
}


def load_run_config(
    preset: str = "full", yaml_path: str | os.PathLike | None = None, overrides: Sequence[str] = ()
) -> RunConfig:
    """Defaults <- preset <- YAML <- overrides, as a typed config (unknown keys raise ConfigError)."""
    from radnerf_cli.config import load_config

    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}'", hint=f"use one of {', '.join(PRESETS)}")
    return load_config(RunConfig, yaml_path, [upgrade_override(o) for o in overrides], base=PRESETS[preset] or None,
                       upgrade=upgrade)


def stage_iters(cfg: RunConfig, stage: str) -> int:
    """Iterations of ``stage``."""
    return int(getattr(cfg.train, f"{stage}_iters"))

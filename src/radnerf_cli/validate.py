"""Range checks of numeric options and config keys, run before anything is loaded or written.

Each check raises one clear error naming the option (or key) and the range it must lie in, so a
bad value never reaches the engine (where it would train on every pixel, divide by zero or turn
into NaN far from its cause).
"""

from __future__ import annotations

import math
from typing import Any

from radnerf_cli.errors import ConfigError, InputError

EYE_MAX = 2.0  # eye values are the eye area in percent of the frame: both eyes never cover 2 %


def number(option: str, value: float | int | None, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, error: type[Exception] = InputError) -> None:
    """``value`` must be finite and inside [lo, hi] (or (lo, hi] with ``lo_open``); None passes."""
    if value is None:
        return
    v = float(value)
    if not math.isfinite(v):
        raise error(f"{option} {value}: must be a finite number")
    too_low = lo is not None and (v <= lo if lo_open else v < lo)
    if not too_low and (hi is None or v <= hi):
        return
    if hi is None:
        rule = f"{'above' if lo_open else 'at least'} {lo:g}"
    elif lo is None:
        rule = f"at most {hi:g}"
    else:
        rule = f"{'above' if lo_open else 'at least'} {lo:g} and at most {hi:g}"
    raise error(f"{option} {value}: must be {rule}")


def device(value: str) -> str | None:
    """``--device``: auto (None), cpu or cuda; cuda only where a CUDA GPU is present."""
    if value not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device {value}: choose auto, cpu or cuda")
    if value == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA GPU here (torch.cuda.is_available() is False)",
                             hint="use --device cpu")
    return None if value == "auto" else value


def render_options(start: float, duration: float | None, fix_eye: float | None, smooth: int | None = None) -> None:
    """The numeric options of `radnerf render`."""
    number("--start", start, 0.0)
    number("--duration", duration, 0.0, lo_open=True)
    number("--fix-eye", fix_eye, 0.0, EYE_MAX)
    number("--smooth", smooth, 1)


# key: (low, high, low is exclusive); None: no bound. Every key of RunConfig that is a number.
RUN_CONFIG_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "model.bound": (0, None, True),
    "model.audio_dim": (1, None, False),
    "model.num_levels": (1, 32, False),
    "model.level_dim": (1, 8, False),
    "model.base_resolution": (2, None, False),
    "model.log2_hashmap_size": (4, 26, False),
    "model.desired_resolution": (2, None, False),
    "model.ambient_dim": (1, 3, False),
    "model.ambient_resolution": (2, None, False),
    "model.hidden_dim": (1, None, False),
    "model.geo_feat_dim": (1, None, False),
    "model.sh_degree": (1, 8, False),
    "model.ind_num": (1, None, False),
    "model.ind_dim": (0, None, False),
    "model.ind_dim_torso": (0, None, False),
    "model.torso_shrink": (0, None, True),
    "model.torso_resolution": (2, None, False),
    "model.torso_hidden_dim": (1, None, False),
    "model.torso_deform_dim": (1, None, False),
    "render.min_near": (0, None, False),
    "render.dt_gamma": (0, None, False),
    "render.max_steps": (1, None, False),
    "render.grid_size": (8, 512, False),
    "render.density_thresh": (0, None, False),
    "render.density_thresh_torso": (0, None, False),
    "data.scale": (0, None, True),
    "infer.T_thresh": (0, 1, True),
    "infer.smooth_audio": (0, 1, False),
    "train.grid_update_interval": (1, None, False),
    "train.grid_decay": (0, 1, False),
    "train.T_thresh": (0, 1, True),
    "train.seed": (0, None, False),
    "train.downscale": (1, 64, False),
    "train.num_rays": (1, None, False),
    "train.head_iters": (0, None, False),
    "train.lips_iters": (0, None, False),
    "train.torso_iters": (0, None, False),
    "train.lr": (0, None, True),
    "train.lr_net": (0, None, True),
    "train.lr_att_mult": (0, None, True),
    "train.lr_final": (0, 1, True),
    "train.lips_lr_final": (0, 1, True),
    "train.lambda_amb": (0, None, False),
    "train.lambda_entropy": (0, None, False),
    "train.lambda_lpips": (0, None, False),
    "train.lips_min_patch": (1, None, False),
    "train.ema_decay": (0, 1, False),
    "train.ckpt_every": (1, None, False),
    "train.preview_every": (1, None, False),
    "train.log_every": (1, None, False),
    "train.val_frames": (1, None, False),
    "train.mouth_rays": (0, 1, False),
    "train.mouth_code_noise": (0, None, False),
    "train.mouth_fit_steps": (1, None, False),
    "train.torso_focus": (0, 1, False),
    "model.mouth_dim": (1, None, False),
    "model.mouth_dropout": (0, 1, False),
    "model.mouth_window_rows": (1, 16, False),
    "train.mouth_ridge_alpha": (0, None, False),
    "train.mouth_render_gain_frames": (2, None, False),
    "train.mouth_render_gain_max": (1, None, False),
}


def _get(cfg: Any, dotted: str) -> Any:
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def run_config(cfg: Any) -> None:
    """Every numeric key of a RunConfig in its range, plus the few rules that tie keys together."""
    for key, (lo, hi, lo_open) in RUN_CONFIG_RANGES.items():
        number(key, _get(cfg, key), lo, hi, lo_open, error=ConfigError)
    m, r = cfg.model, cfg.render
    if m.level_dim not in (1, 2, 4, 8):
        raise ConfigError(f"model.level_dim {m.level_dim}: must be 1, 2, 4 or 8")
    if m.desired_resolution < m.base_resolution:
        raise ConfigError(f"model.desired_resolution {m.desired_resolution}: must be at least "
                          f"model.base_resolution ({m.base_resolution})")
    if r.grid_size & (r.grid_size - 1):
        raise ConfigError(f"render.grid_size {r.grid_size}: must be a power of two (the occupancy grid is in Z-order)")
    aabb = list(r.aabb)
    if len(aabb) != 6 or not all(math.isfinite(float(v)) for v in aabb) or not all(aabb[i] < aabb[i + 3] for i in range(3)):
        raise ConfigError(f"render.aabb {aabb}: must be 6 finite numbers x0 y0 z0 x1 y1 z1 with each min below its max")
    offset = list(cfg.data.offset)
    if len(offset) != 3 or not all(math.isfinite(float(v)) for v in offset):
        raise ConfigError(f"data.offset {offset}: must be 3 finite numbers")
    choices = {"model.audio_path": ("direct", "mouth"), "model.mouth_predictor": ("net", "ridge"),
               "train.lips_schedule": ("continue", "restart"),
               "train.mouth_rect": ("face", "lips"),
               "train.mouth_render_gain_drive": ("predicted", "tracked"),
               "train.mouth_gain": ("opening", "all")}
    for key, allowed in choices.items():
        value = _get(cfg, key)
        if value not in allowed:
            raise ConfigError(f"{key} '{value}': must be one of {', '.join(allowed)}")

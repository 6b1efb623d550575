"""A trained subject ready to render: :class:`TalkingHead` (used by render, evaluate and export).

It holds the EMA weights, the occupancy grids and what rendering needs from the dataset (image size,
intrinsics, background, the training pose and eye tracks), so a bundle exported from it renders
without the dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from radnerf_cli.engine import checkpoint
from radnerf_cli.errors import RadNerfError, WorkspaceError
from radnerf_cli.model.config import STAGES, RunConfig, upgrade
from radnerf_cli.workspace import Subject


def _pick_device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def stage_checkpoint(subject: Subject, stage: str) -> Any:
    return subject.checkpoint_dir / f"{stage}.safetensors"


def latest_stage(subject: Subject) -> str | None:
    """The most advanced stage with a checkpoint (torso, else lips, else head), or None."""
    for stage in reversed(STAGES):
        if stage_checkpoint(subject, stage).is_file():
            return stage
    return None


def inference_state(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """Model state with the EMA weights in place of the raw ones."""
    state = checkpoint.prefixed(tensors, "model")
    state.update(checkpoint.prefixed(tensors, "ema"))
    return state


class TalkingHead:
    """A trained model plus its rendering context; renders one frame per call."""

    def __init__(self, state: dict[str, Tensor], data: dict[str, Tensor], meta: dict[str, Any], device=None):
        from omegaconf import OmegaConf

        from radnerf_cli.model.network import TalkingHeadModel
        from radnerf_cli.render.renderer import Renderer, pixel_coords

        self.device = _pick_device(device)
        self.meta = dict(meta)
        cfg: RunConfig = OmegaConf.merge(OmegaConf.structured(RunConfig), upgrade(meta["config"]))  # type: ignore[assignment]
        self.cfg = cfg
        self.feature_kind: str = meta["feature_kind"]
        self.feature_dim: int = int(meta["feature_dim"])
        self.H: int = int(meta["H"])
        self.W: int = int(meta["W"])
        self.intrinsics = np.asarray(meta["intrinsics"], dtype=np.float32)
        self.scale = float(meta.get("scale", 4.0))
        self.offset = tuple(meta.get("offset", (0.0, 0.0, 0.0)))
        self.stages: list[str] = list(meta.get("stages", []))
        self.torso_trained = "torso" in self.stages
        self.background: np.ndarray = data["background"].cpu().numpy().astype(np.uint8)
        self.pose_track: np.ndarray = data["pose_track"].cpu().numpy().astype(np.float32)
        self.eye_track: np.ndarray | None = data["eye_track"].cpu().numpy() if "eye_track" in data else None
        # the body pose of each pose-track entry, for a torso conditioned on it (model.torso_body)
        self.body_track: np.ndarray | None = (data["body_track"].cpu().numpy().astype(np.float32)
                                              if "body_track" in data else None)
        torch.manual_seed(0)
        self.model = TalkingHeadModel(cfg.model, cfg.render, self.feature_dim).to(self.device)
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise WorkspaceError(
                f"model weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})",
                hint="the checkpoint was made by another version or config",
            )
        self.model.eval()
        self.renderer = Renderer(self.model, cfg.render, T_thresh_test=cfg.infer.T_thresh)
        self._coords = pixel_coords(self.H, self.W, self.device)
        self._bg_default = torch.from_numpy(self.background).to(self.device).float().view(-1, 3) / 255
        self._enc_a: Tensor | None = None
        self._track_ngp: Tensor | None = None  # the pose track in model space, for nearest_track_entry
        self.fp16 = bool(cfg.infer.fp16) and self.device.type == "cuda"
        if self.torso_trained and self.model.torso.body_dim and (
                self.body_track is None or len(self.body_track) != len(self.pose_track)):
            raise WorkspaceError("the torso is conditioned on the body pose but the model file has no body track "
                                 "for its pose track", hint="train the torso stage again")

    # ------------------------------------------------------------ construction
    @classmethod
    def from_subject(cls, subject: Subject, device=None, stage: str | None = None) -> TalkingHead:
        """The latest trained weights of ``subject`` (torso, else lips, else head) or those of ``stage``."""
        if stage is None:
            stage = latest_stage(subject)
            if stage is None:
                raise WorkspaceError(
                    f"subject '{subject.name}' is not trained yet (run `radnerf train --subject {subject.name}`)"
                )
        elif stage not in STAGES:
            raise WorkspaceError(f"unknown stage '{stage}'", hint=f"use one of {', '.join(STAGES)}")
        path = stage_checkpoint(subject, stage)
        if not path.is_file():
            raise WorkspaceError(
                f"subject '{subject.name}' has no {stage} checkpoint at {path}",
                hint=f"run `radnerf train --subject {subject.name} --stage {stage}`",
            )
        tensors, meta = checkpoint.load(path)
        return cls.checked(inference_state(tensors), checkpoint.prefixed(tensors, "data"), meta["model_meta"], device,
                           source=path)

    @classmethod
    def from_state(cls, tensors: dict[str, Tensor], meta: dict, device=None, source=None,
                   error: type[RadNerfError] = WorkspaceError) -> TalkingHead:
        """Rebuild from :meth:`state_and_meta` output (``model/*`` and ``data/*`` tensors)."""
        return cls.checked(checkpoint.prefixed(tensors, "model"), checkpoint.prefixed(tensors, "data"), meta, device,
                           source=source, error=error)

    @classmethod
    def checked(cls, state: dict[str, Tensor], data: dict[str, Tensor], meta: dict, device=None, source=None,
                error: type[RadNerfError] = WorkspaceError) -> TalkingHead:
        """The constructor, with any mismatch between weights and metadata reported as one line naming ``source``."""
        from omegaconf.errors import OmegaConfBaseException

        where = f"{source}: " if source is not None else ""
        try:
            return cls(state, data, meta, device)
        except RadNerfError as e:
            raise error(f"{where}{e.message}", hint=e.hint) from None
        except KeyError as e:
            raise error(f"{where}damaged model file ({e.args[0]!r} is missing)",
                        hint="export or train the subject again") from None
        except (RuntimeError, ValueError, TypeError, AttributeError, OmegaConfBaseException) as e:
            msg = " ".join(str(e).split())[:200]
            raise error(f"{where}damaged model file (weights do not fit its settings: {msg})",
                        hint="export or train the subject again") from None

    def state_and_meta(self) -> tuple[dict[str, Tensor], dict]:
        """Everything needed to render without the dataset: tensors and a JSON-able meta."""
        tensors = {f"model/{k}": v.detach().cpu() for k, v in self.model.state_dict().items()}
        tensors["data/background"] = torch.from_numpy(self.background.copy())
        tensors["data/pose_track"] = torch.from_numpy(self.pose_track.copy())
        if self.eye_track is not None:
            tensors["data/eye_track"] = torch.from_numpy(np.asarray(self.eye_track, dtype=np.float32).copy())
        if self.body_track is not None:
            tensors["data/body_track"] = torch.from_numpy(self.body_track.copy())
        return tensors, dict(self.meta)

    def _torso_condition(self, p: Tensor, body: np.ndarray | None) -> Tensor:
        """The torso field's input for the model-space pose ``p`` [4, 4]; ``body``: the frame's body pose.

        Without ``body`` (a pose that is not an entry of the track, as from ``--pose``) a torso that
        uses the body pose takes the body pose of the track entry whose head pose is nearest."""
        torso = self.model.torso
        b = None
        if torso.body_dim:
            if body is None:
                body = self.body_track[self.nearest_track_entry(p)]
            b = torch.as_tensor(np.asarray(body, dtype=np.float32), device=self.device).view(1, -1)
        return torso.condition(p[None], b)

    def nearest_track_entry(self, p: Tensor) -> int:
        """Index of the pose-track entry nearest to the model-space pose ``p`` (rotation and position)."""
        from radnerf_cli.data import nerf_matrix_to_ngp

        if self._track_ngp is None:
            self._track_ngp = torch.from_numpy(nerf_matrix_to_ngp(self.pose_track, self.scale, self.offset))
        t = self._track_ngp.to(p.device)
        d = ((t[:, :3, :3] - p[:3, :3]) ** 2).sum((1, 2)) + ((t[:, :3, 3] - p[:3, 3]) ** 2).sum(1)
        return int(d.argmin())

    # ------------------------------------------------------------ rendering
    def reset(self) -> None:
        """Forget the smoothed audio code (call before a new audio track)."""
        self._enc_a = None

    def default_eye(self) -> float | None:
        if self.eye_track is None or len(self.eye_track) == 0:
            return None
        return float(np.mean(self.eye_track))

    def _inputs(self, pose: np.ndarray, aud: Tensor, eye: float | None,
                mouth_code: np.ndarray | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """(ngp pose [4, 4], smoothed audio code [1, A], eye [1, 1] or None) for one frame.

        ``mouth_code`` [k]: drive the field with this mouth-shape code instead of the one the audio
        predicts (models with ``model.audio_path=mouth`` only); ``aud`` is then not used.
        """
        from radnerf_cli.data import nerf_matrix_to_ngp

        dev = self.device
        p = torch.as_tensor(nerf_matrix_to_ngp(np.asarray(pose, dtype=np.float32), self.scale, self.offset)).to(dev)
        if mouth_code is not None:
            enc_a = self._mouth_code_input(mouth_code)
        else:
            if aud.ndim != 3 or aud.shape[-1] != self.feature_dim:
                raise ValueError(f"aud must be [8, 16, {self.feature_dim}], got {list(aud.shape)}")
            enc_a = self.model.audio(aud.to(dev).float())
        if self._enc_a is not None:
            lam = float(self.cfg.infer.smooth_audio)
            enc_a = lam * self._enc_a + (1 - lam) * enc_a
        self._enc_a = enc_a
        e = eye if eye is not None else self.default_eye()
        eye_t = torch.tensor([[float(e)]], device=dev) if e is not None else None
        return p, enc_a, eye_t

    def _mouth_code_input(self, mouth_code: np.ndarray) -> Tensor:
        embed = getattr(self.model.audio, "embed", None)
        if embed is None:
            raise ValueError("this model has no mouth-shape code (it was trained with model.audio_path=direct)")
        code = torch.as_tensor(np.asarray(mouth_code, dtype=np.float32)).view(1, -1).to(self.device)
        if code.shape[1] != embed.code_dim:
            raise ValueError(f"mouth_code must have {embed.code_dim} components, got {code.shape[1]}")
        return embed(code)

    @torch.no_grad()
    def render_frame(
        self,
        pose: np.ndarray,  # [4, 4] raw camera-to-world (transforms_*.json convention)
        aud: Tensor,  # [8, 16, C] audio window
        eye: float | None,  # eye opening (None: the training mean)
        bg: np.ndarray | None = None,  # [H, W, 3] uint8 (None: the subject's background)
        torso: bool = True,
        depth: bool = False,
        body: np.ndarray | None = None,  # [BODY_DIM] the frame's body pose (None: the nearest track entry's)
    ) -> np.ndarray:  # [H, W, 3] uint8 (or [H, W] float depth in [0, 1] when depth=True)
        """One frame; the audio code is smoothed (0.35 old / 0.65 new) across successive calls."""
        from radnerf_cli.data import get_rays

        dev = self.device
        p, enc_a, eye_t = self._inputs(pose, aud, eye)
        rays = get_rays(p[None], self.intrinsics, self.H, self.W)
        if bg is None:
            bgt = self._bg_default
        else:
            if bg.shape[:2] != (self.H, self.W):
                raise ValueError(f"bg must be [{self.H}, {self.W}, 3], got {list(bg.shape)}")
            bgt = torch.from_numpy(np.ascontiguousarray(bg)).to(dev).float().view(-1, 3) / 255
        pose6 = self._torso_condition(p, body) if (torso and self.torso_trained) else None
        out = self.renderer.frame(
            rays["rays_o"][0].contiguous(), rays["rays_d"][0].contiguous(), self._coords, bgt,
            enc_a, eye_t, pose6, fp16=self.fp16,
        )
        if depth:
            return out["depth"].view(self.H, self.W).cpu().numpy()
        return (out["image"].view(self.H, self.W, 3).cpu().numpy() * 255 + 0.5).astype(np.uint8)

    @torch.no_grad()
    def render_layers(
        self,
        pose: np.ndarray,  # [4, 4] raw camera-to-world
        aud: Tensor,  # [8, 16, C] audio window
        eye: float | None,
        pixels: np.ndarray | None = None,  # [n] row-major pixel indices to render (None: every pixel)
        torso: bool = False,
        mouth_code: np.ndarray | None = None,  # [k] drive the mouth with this code, not the audio's
        body: np.ndarray | None = None,  # [BODY_DIM] the frame's body pose, as in :meth:`render_frame`
    ) -> dict[str, np.ndarray]:
        """The layers of one frame, unblended, for the given pixels only (float32 in [0, 1]).

        head [n, 3] (premultiplied by its opacity), weights [n] (head opacity) and, when ``torso``
        and the torso is trained, torso_rgb [n, 3] and torso_alpha [n]. The audio code is smoothed
        across calls exactly as in :meth:`render_frame`. ``mouth_code``: see :meth:`_inputs`.
        """
        return self.pixel_renderer(pose, aud, eye, torso, mouth_code, body)(pixels)

    def pixel_renderer(
        self, pose: np.ndarray, aud: Tensor, eye: float | None, torso: bool = False,
        mouth_code: np.ndarray | None = None, body: np.ndarray | None = None,
    ) -> Callable[[np.ndarray | None], dict[str, np.ndarray]]:
        """:meth:`render_layers` of one frame as a function of the pixels, so that one frame can be
        rendered in several passes: the audio code is smoothed once, here, not once per pass."""
        from radnerf_cli.data import get_rays

        p, enc_a, eye_t = self._inputs(pose, aud, eye, mouth_code)
        cond = self._torso_condition(p, body) if (torso and self.torso_trained) else None
        rays = get_rays(p[None], self.intrinsics, self.H, self.W)
        ro_all, rd_all = rays["rays_o"][0], rays["rays_d"][0]
        m = self.model

        @torch.no_grad()
        def render(pixels: np.ndarray | None) -> dict[str, np.ndarray]:
            ro, rd, coords = ro_all, rd_all, self._coords
            if pixels is not None:
                idx = torch.as_tensor(np.asarray(pixels, dtype=np.int64), device=self.device)
                ro, rd, coords = ro[idx], rd[idx], coords[idx]
            res = self.renderer.head_infer(ro.contiguous(), rd.contiguous(), enc_a, m.ind_code(None), eye_t,
                                           fp16=self.fp16)
            out = {"head": res["image"].float().cpu().numpy(), "weights": res["weights_sum"].float().cpu().numpy()}
            if torso and self.torso_trained:
                alpha, rgb = self.renderer.torso(coords.contiguous(), cond,
                                                 m.torso_code(None), use_grid=True, fp16=self.fp16)
                out["torso_rgb"] = rgb.float().cpu().numpy()
                out["torso_alpha"] = alpha.float().view(-1).cpu().numpy()
            return out

        return render

    @torch.no_grad()
    def density(self, xyz: Tensor) -> Tensor:
        """sigma [N] at model-space points ``xyz`` [N, 3] in [-bound, bound], for the silent-audio code."""
        enc_a = self.model.audio.neutral()
        e = self.default_eye()
        eye_t = torch.tensor([[e]], device=self.device) if e is not None else None
        out = []
        for s in range(0, xyz.shape[0], 1 << 18):
            out.append(self.model.head.density(xyz[s : s + (1 << 18)].to(self.device).float(), enc_a, eye_t).float())
        return torch.cat(out) if out else torch.zeros(0, device=self.device)

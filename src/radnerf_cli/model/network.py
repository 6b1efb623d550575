"""The whole talking-head model: audio encoder, head and torso fields, per-frame codes, occupancy grids."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from radnerf_cli.model.audio import AudioEncoder
from radnerf_cli.model.config import ModelConfig, RenderConfig
from radnerf_cli.model.head import HeadField
from radnerf_cli.model.occupancy import OccupancyGrid, TorsoGrid
from radnerf_cli.model.torso import TorsoField


class TalkingHeadModel(nn.Module):
    """Every learned tensor and grid of a subject's model (the state that checkpoints hold)."""

    def __init__(self, cfg: ModelConfig, render: RenderConfig, feature_dim: int):
        super().__init__()
        self.cfg = cfg
        self.feature_dim = feature_dim
        if cfg.audio_path == "mouth":
            from radnerf_cli.model.mouth import MouthAudioEncoder

            self.audio = MouthAudioEncoder(feature_dim, cfg.mouth_dim, cfg.audio_dim, cfg.mouth_dropout,
                                           cfg.mouth_predictor, cfg.mouth_window_rows)
        elif cfg.audio_path == "direct":
            self.audio = AudioEncoder(feature_dim, cfg.audio_dim, cfg.audio_att)
        else:
            from radnerf_cli.errors import ConfigError

            raise ConfigError(f"model.audio_path={cfg.audio_path!r}", hint="use direct or mouth")
        self.head = HeadField(cfg)
        self.torso = TorsoField(cfg)
        g = torch.Generator().manual_seed(0)
        self.individual_codes = nn.Parameter(torch.randn(cfg.ind_num, max(cfg.ind_dim, 1), generator=g) * 0.1)
        self.individual_codes_torso = nn.Parameter(
            torch.randn(cfg.ind_num, max(cfg.ind_dim_torso, 1), generator=g) * 0.1
        )
        self.occupancy = OccupancyGrid(render.grid_size, cfg.bound)
        self.torso_occupancy = TorsoGrid(render.grid_size)

    def ind_code(self, index: int | None) -> Tensor | None:
        """The head's individual code of training frame ``index`` (None: code 0, used at test time): [1, D]."""
        if not self.cfg.ind_dim:
            return None
        return self.individual_codes[(index or 0) : (index or 0) + 1]

    def torso_code(self, index: int | None) -> Tensor | None:
        if not self.cfg.ind_dim_torso:
            return None
        return self.individual_codes_torso[(index or 0) : (index or 0) + 1]

    def param_groups(self, stage: str, lr: float, lr_net: float, att_mult: float) -> list[dict]:
        """Adam parameter groups of a stage (head and lips train the head; torso only the torso)."""
        if stage == "torso":
            groups = [
                {"params": list(self.torso.encoder.parameters()), "lr": lr},
                {"params": list(self.torso.torso_net.parameters()), "lr": lr_net},
                {"params": list(self.torso.deform_net.parameters()), "lr": lr_net},
            ]
            if self.cfg.ind_dim_torso:
                groups.append({"params": [self.individual_codes_torso], "lr": lr_net})
            return groups
        if self.cfg.audio_path == "mouth":
            # the field learns from tracked mouth codes through the embedding; the audio -> code
            # predictor is fitted on its own before the head stage (engine.mouth_fit) and stays fixed
            audio = [{"params": list(self.audio.embed.parameters()), "lr": lr_net}]
        else:
            audio = [{"params": list(self.audio.audio_net.parameters()), "lr": lr_net}]
            if self.audio.audio_att_net is not None:
                audio.append({"params": list(self.audio.audio_att_net.parameters()), "lr": lr_net * att_mult})
        groups = audio[:1] + [
            {"params": list(self.head.encoder.parameters()), "lr": lr},
            {"params": list(self.head.encoder_ambient.parameters()), "lr": lr},
            {"params": list(self.head.ambient_net.parameters()), "lr": lr_net},
            {"params": list(self.head.sigma_net.parameters()), "lr": lr_net},
            {"params": list(self.head.color_net.parameters()), "lr": lr_net},
        ]
        groups += audio[1:]
        if self.cfg.ind_dim:
            groups.append({"params": [self.individual_codes], "lr": lr_net})
        return groups

    def num_params(self, torso: bool = True) -> int:
        n = sum(p.numel() for name, p in self.named_parameters() if torso or "torso" not in name)
        return n

"""Audio encoder: per-frame feature windows -> one audio code per video frame (RAD-NeRF's AudioNet + AudioAttNet)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AudioNet(nn.Module):
    """[B, C, 16] feature windows -> [B, dim_aud]: four stride-2 convolutions then two linear layers."""

    def __init__(self, dim_in: int, dim_aud: int = 64):
        super().__init__()
        act = lambda: nn.LeakyReLU(0.02, True)  # noqa: E731
        self.encoder_conv = nn.Sequential(
            nn.Conv1d(dim_in, 32, 3, stride=2, padding=1), act(),  # 16 -> 8
            nn.Conv1d(32, 32, 3, stride=2, padding=1), act(),  # 8 -> 4
            nn.Conv1d(32, 64, 3, stride=2, padding=1), act(),  # 4 -> 2
            nn.Conv1d(64, 64, 3, stride=2, padding=1), act(),  # 2 -> 1
        )
        self.encoder_fc1 = nn.Sequential(nn.Linear(64, 64), act(), nn.Linear(64, dim_aud))

    def forward(self, x: Tensor) -> Tensor:  # [B, C, 16] -> [B, dim_aud]
        return self.encoder_fc1(self.encoder_conv(x).squeeze(-1))


class AudioAttNet(nn.Module):
    """[seq, dim_aud] codes of neighbouring frames -> [1, dim_aud], a learned softmax-weighted average."""

    def __init__(self, dim_aud: int = 64, seq_len: int = 8):
        super().__init__()
        self.seq_len = seq_len
        chans = [dim_aud, 16, 8, 4, 2, 1]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv1d(a, b, 3, stride=1, padding=1), nn.LeakyReLU(0.02, True)]
        self.attentionConvNet = nn.Sequential(*layers)
        self.attentionNet = nn.Sequential(nn.Linear(seq_len, seq_len), nn.Softmax(dim=1))

    def forward(self, x: Tensor) -> Tensor:  # [seq, dim_aud] -> [1, dim_aud]
        y = self.attentionConvNet(x.t().unsqueeze(0))  # [1, 1, seq]
        w = self.attentionNet(y.view(1, self.seq_len)).view(self.seq_len, 1)
        return (w * x).sum(0, keepdim=True)


class AudioEncoder(nn.Module):
    """An 8-frame window of feature windows [8, 16, C] -> the audio code enc_a [1, dim_aud]."""

    def __init__(self, feature_dim: int, dim_aud: int = 64, att: bool = True):
        super().__init__()
        self.feature_dim = feature_dim
        self.audio_net = AudioNet(feature_dim, dim_aud)
        self.audio_att_net = AudioAttNet(dim_aud) if att else None

    def forward(self, auds: Tensor) -> Tensor:
        """``auds`` [8, 16, C] (or [1, 16, C] without attention) -> [1, dim_aud]."""
        x = auds.float().transpose(1, 2)  # [8, C, 16]
        enc = self.audio_net(x)  # [8, dim_aud]
        if self.audio_att_net is None:
            return enc[enc.shape[0] // 2 : enc.shape[0] // 2 + 1] if enc.shape[0] > 1 else enc
        return self.audio_att_net(enc)

    @torch.no_grad()
    def neutral(self) -> Tensor:
        """The audio code of silence (all-zero features), used for meshes and density queries."""
        p = next(self.parameters())
        seq = self.audio_att_net.seq_len if self.audio_att_net is not None else 1
        return self(torch.zeros(seq, 16, self.feature_dim, device=p.device))

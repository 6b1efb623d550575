"""Audio -> mouth code -> audio code: the bottleneck that makes the mouth follow audio it never heard.

RAD-NeRF conditions the field on a code learned end to end from the audio features. Trained on a
few minutes of one person, that code learns to tell the moments of the clip apart rather than the
sounds, and for new audio the mouth hardly moves. Here the path is split in two, as in GeneFace:

    MouthPredictor   [8, 16, C] feature windows -> [1, k] mouth-shape code   (trained on the tracked
                     codes of :mod:`radnerf_cli.data.mouth_code`, with audio augmentation)
    MouthRidge       the same, as one linear map of the pooled window (ridge regression): the default
    MouthEmbed       [1, k] mouth code -> [1, audio_dim] audio code for the field

The field is trained on the *tracked* code of each frame, so what drives it is the mouth's shape;
at render time the predicted code drives it. ``MouthAudioEncoder`` chains the two and so stands in
for :class:`~radnerf_cli.model.audio.AudioEncoder` (``model.audio(auds)`` gives the audio code).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _act() -> nn.Module:
    return nn.LeakyReLU(0.02, True)


class _FeatureNorm(nn.Module):
    """Per-channel normalisation of the feature rows, set from the training frames (buffers)."""

    def __init__(self, feature_dim: int):
        super().__init__()
        self.register_buffer("feat_mean", torch.zeros(feature_dim))
        self.register_buffer("feat_std", torch.ones(feature_dim))

    def set_normalisation(self, feats: Tensor) -> None:
        """Per-channel mean and std from training features [T, 16, C]."""
        f = feats.reshape(-1, feats.shape[-1]).float()
        self.feat_mean.copy_(f.mean(0))
        self.feat_std.copy_(f.std(0).clamp_min(1e-4))

    def normalise(self, x: Tensor) -> Tensor:
        """Feature rows [..., C] -> normalised; all-zero rows (past the audio's ends) stay zero."""
        return (x.float() - self.feat_mean) / self.feat_std * (x.abs().sum(-1, keepdim=True) > 0)


class MouthPredictor(_FeatureNorm):
    """Batched [B, 8, 16, C] windows -> [B, k] codes: per-frame conv net, attention over the 8 frames."""

    def __init__(self, feature_dim: int, code_dim: int, width: int = 64, seq_len: int = 8, dropout: float = 0.2):
        super().__init__(feature_dim)
        self.seq_len = seq_len
        # amplitude calibration of each code component (1 until calibrated)
        self.register_buffer("gain", torch.ones(code_dim))
        self.frame_net = nn.Sequential(
            nn.Conv1d(feature_dim, 32, 3, stride=2, padding=1), _act(), nn.Dropout(dropout),  # 16 -> 8
            nn.Conv1d(32, width, 3, stride=2, padding=1), _act(),  # 8 -> 4
            nn.Conv1d(width, width, 3, stride=2, padding=1), _act(),  # 4 -> 2
            nn.Conv1d(width, width, 3, stride=2, padding=1), _act(),  # 2 -> 1
        )
        self.att = nn.Sequential(nn.Conv1d(width, 8, 3, padding=1), _act(), nn.Conv1d(8, 1, 3, padding=1))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, width), _act(), nn.Linear(width, code_dim))

    def frame_embed(self, x: Tensor) -> Tensor:
        """Normalised windows [B, 16, C] -> [B, width], one per video frame."""
        return self.frame_net(x.transpose(1, 2)).squeeze(-1)

    def pool(self, h: Tensor) -> Tensor:
        """[B, 8, width] embeddings of a frame and its neighbours -> [B, k] codes."""
        w = torch.softmax(self.att(h.transpose(1, 2)).squeeze(1), dim=1)  # [B, 8]
        return self.head((w.unsqueeze(-1) * h).sum(1)) * self.gain

    def forward(self, auds: Tensor) -> Tensor:
        """[B, 8, 16, C] (or [8, 16, C]) -> [B, k] (or [1, k])."""
        if auds.ndim == 3:
            auds = auds[None]
        B, S, W, C = auds.shape
        h = self.frame_embed(self.normalise(auds).reshape(B * S, W, C)).reshape(B, S, -1)
        return self.pool(h)


class MouthRidge(_FeatureNorm):
    """Batched [B, 8, 16, C] windows -> [B, k] codes: a linear map of the window's pooled features.

    Each of the 8 frames' 16 feature rows is normalised per channel (rows past the audio's ends stay
    zero) and the ``rows`` at its centre are averaged, giving 8 x C numbers per window; these are
    standardised and mapped to the code by ridge regression
    (:func:`radnerf_cli.engine.mouth_ridge.fit_ridge`). Its only parameters are buffers: it is fitted
    in closed form, never by gradient steps.

    ``rows``: 16 averages each 320-ms window whole, so the 8 numbers per channel are 8 overlapping
    blurs of the sound and the code can only rise and fall slowly; 4 keeps the 80 ms around each
    frame, so the 8 frames see the sound at the frame rate and the mouth can close between syllables.
    """

    def __init__(self, feature_dim: int, code_dim: int, seq_len: int = 8, rows: int = 16):
        super().__init__(feature_dim)
        self.seq_len = seq_len
        if not 1 <= int(rows) <= 16:
            raise ValueError(f"rows must be 1..16, got {rows}")
        lo = (16 - int(rows)) // 2
        self.rows = slice(lo, lo + int(rows))  # the centre rows of a 16-row window
        d = seq_len * feature_dim
        self.register_buffer("in_mean", torch.zeros(d))  # standardisation of the pooled windows
        self.register_buffer("in_std", torch.ones(d))
        self.register_buffer("coef", torch.zeros(d, code_dim))
        self.register_buffer("out_mean", torch.zeros(code_dim))
        self.register_buffer("gain", torch.ones(code_dim))

    def pooled(self, auds: Tensor) -> Tensor:
        """[B, 8, 16, C] -> [B, 8 * C]: per-frame means of the normalised centre rows."""
        B = auds.shape[0]
        return self.normalise(auds[:, :, self.rows]).mean(2).reshape(B, -1)

    def forward(self, auds: Tensor) -> Tensor:
        """[B, 8, 16, C] (or [8, 16, C]) -> [B, k] (or [1, k])."""
        if auds.ndim == 3:
            auds = auds[None]
        x = (self.pooled(auds) - self.in_mean) / self.in_std
        return (x @ self.coef) * self.gain + self.out_mean


class MouthEmbed(nn.Module):
    """[B, k] mouth codes -> [B, audio_dim] audio codes for the field."""

    def __init__(self, code_dim: int, audio_dim: int):
        super().__init__()
        self.code_dim = code_dim
        self.net = nn.Sequential(nn.Linear(code_dim, audio_dim), _act(), nn.Linear(audio_dim, audio_dim))

    def forward(self, code: Tensor) -> Tensor:
        return self.net(code.float())


class MouthAudioEncoder(nn.Module):
    """Feature windows [8, 16, C] -> predicted mouth code -> audio code [1, audio_dim]."""

    def __init__(self, feature_dim: int, code_dim: int, audio_dim: int, dropout: float = 0.2, kind: str = "net",
                 window_rows: int = 16):
        super().__init__()
        self.feature_dim = feature_dim
        self.code_dim = code_dim
        if kind == "net":
            self.predictor: nn.Module = MouthPredictor(feature_dim, code_dim, dropout=dropout)
        elif kind == "ridge":
            self.predictor = MouthRidge(feature_dim, code_dim, rows=window_rows)
        else:
            raise ValueError(f"mouth predictor must be 'net' or 'ridge', got {kind!r}")
        self.embed = MouthEmbed(code_dim, audio_dim)

    def forward(self, auds: Tensor) -> Tensor:
        """[8, 16, C] -> [1, audio_dim]."""
        return self.embed(self.code(auds))

    def code(self, auds: Tensor) -> Tensor:
        """[8, 16, C] or [B, 8, 16, C] -> predicted mouth code [1 or B, k] (the predictor runs in eval
        mode here: its dropout belongs to its own fit, not to the field's training)."""
        was = self.predictor.training
        self.predictor.eval()
        try:
            return self.predictor(auds)
        finally:
            self.predictor.train(was)

    @torch.no_grad()
    def neutral(self) -> Tensor:
        """The audio code of the mean mouth (code 0), used for meshes and density queries."""
        p = next(self.embed.parameters())
        return self.embed(torch.zeros(1, self.code_dim, device=p.device))

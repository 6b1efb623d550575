"""A speech-like audio signal, synthesised: phrases of syllables with formant vowels and noise onsets.

No recording is downloaded. The signal has what a talking-head model needs from speech: a voiced
source at a natural pitch, vowel formants that change every syllable, short consonant bursts, and
pauses between phrases. Alongside the audio it returns how open the mouth is at every sample, which
drives the jaw of the demo video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Vowel formants (F1, F2, F3 in Hz) and how far the jaw opens for each (0..1).
VOWELS: dict[str, tuple[tuple[float, float, float], float]] = {
    "a": ((800.0, 1250.0, 2600.0), 1.00),
    "e": ((520.0, 1900.0, 2600.0), 0.60),
    "i": ((310.0, 2300.0, 3000.0), 0.30),
    "o": ((540.0, 900.0, 2450.0), 0.75),
    "u": ((350.0, 800.0, 2350.0), 0.35),
}


@dataclass
class SpeechConfig:
    """How the synthetic speech is made."""

    duration: float = 30.0  # seconds of audio
    sample_rate: int = 16000  # Hz
    f0: float = 200.0  # mean pitch in Hz (falls by 15% over each phrase)
    syllable_min: float = 0.14  # shortest syllable, seconds
    syllable_max: float = 0.30  # longest syllable, seconds
    phrase_min: int = 3  # fewest syllables in a phrase
    phrase_max: int = 9  # most syllables in a phrase
    pause_min: float = 0.25  # shortest pause between phrases, seconds
    pause_max: float = 0.7  # longest pause between phrases, seconds
    seed: int = 0  # random seed (the same seed gives the same speech)


def _resonator(x: np.ndarray, freq: float, bandwidth: float, sr: int) -> np.ndarray:
    """Two-pole resonator (one formant) with unit gain at its centre frequency."""
    from scipy.signal import lfilter

    r = np.exp(-np.pi * bandwidth / sr)
    theta = 2 * np.pi * freq / sr
    a = [1.0, -2 * r * np.cos(theta), r * r]
    gain = (1 - r) * np.sqrt(1 - 2 * r * np.cos(2 * theta) + r * r)
    return lfilter([gain], a, x)


def _syllable(n: int, sr: int, f0: np.ndarray, vowel: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One consonant-vowel syllable of ``n`` samples: (audio [n], jaw opening [n])."""
    formants, opening = VOWELS[vowel]
    # Glottal source: a pulse train with a soft spectral tilt, following the pitch contour f0 [n].
    phase = np.cumsum(f0 / sr)
    saw = phase - np.floor(phase)
    pulses = np.exp(-saw * 12.0) - 0.1  # decaying pulse each period (rich in harmonics)
    pulses += 0.02 * rng.standard_normal(n)  # breath
    voiced = sum(_resonator(pulses, f, bw, sr) * g
                 for f, bw, g in zip(formants, (80.0, 110.0, 160.0), (1.0, 0.6, 0.3), strict=True))
    t = np.arange(n) / sr
    onset = min(int(rng.uniform(0.02, 0.05) * sr), n // 3)
    attack, release = int(0.03 * sr), int(0.06 * sr)
    env = np.ones(n)
    env[:onset] = 0.0
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, attack))
    env[onset:onset + attack] = ramp[: max(0, min(attack, n - onset))]
    env[-release:] *= 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, release))
    audio = voiced * env * (0.4 + 0.6 * opening)  # open vowels are louder, as in real speech
    # Consonant: a short burst of high-passed noise before the vowel (a fricative or plosive release).
    if rng.random() < 0.8 and onset > 0:
        burst = rng.standard_normal(onset) * np.hanning(onset)
        burst = _resonator(burst, rng.uniform(2500, 5000), 1500.0, sr)
        audio[:onset] += burst * rng.uniform(0.03, 0.1)  # quieter than the vowel, as consonants are
    jaw = opening * env * (0.85 + 0.15 * np.sin(2 * np.pi * 3.0 * t))
    return audio, jaw


def synthesize_speech(cfg: SpeechConfig) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like audio and the matching jaw opening, both [duration * sample_rate].

    Audio is float32 mono in [-1, 1]; jaw opening is in [0, 1] (0 closed, 1 the widest vowel).
    """
    sr = cfg.sample_rate
    total = int(round(cfg.duration * sr))
    rng = np.random.default_rng(cfg.seed)
    audio = np.zeros(total, dtype=np.float64)
    jaw = np.zeros(total, dtype=np.float64)
    pos = int(0.3 * sr)  # a moment of silence at the start
    vowels = list(VOWELS)
    while pos < total:
        n_syl = int(rng.integers(cfg.phrase_min, cfg.phrase_max + 1))
        lengths = [int(rng.uniform(cfg.syllable_min, cfg.syllable_max) * sr) for _ in range(n_syl)]
        phrase_len = sum(lengths)
        # Pitch declines across the phrase, with a slow wobble.
        contour = cfg.f0 * np.linspace(1.05, 0.88, phrase_len)
        contour *= 1 + 0.03 * np.sin(2 * np.pi * 4.5 * np.arange(phrase_len) / sr + rng.uniform(0, 6.28))
        offset = 0
        for n in lengths:
            if pos + n > total:
                break
            seg, open_ = _syllable(n, sr, contour[offset:offset + n], vowels[int(rng.integers(len(vowels)))], rng)
            audio[pos:pos + n] += seg * rng.uniform(0.7, 1.0)
            jaw[pos:pos + n] = np.maximum(jaw[pos:pos + n], open_)
            pos += n
            offset += n
        pos += int(rng.uniform(cfg.pause_min, cfg.pause_max) * sr)
    peak = np.abs(audio).max()
    if peak > 0:
        audio *= 0.8 / peak
    return audio.astype(np.float32), jaw.astype(np.float32)


def per_frame(signal: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """Mean of a per-sample signal over each video frame's time span: [n_frames]."""
    edges = (np.arange(n_frames + 1) * sample_rate / fps).astype(int)
    edges = np.minimum(edges, len(signal))
    csum = np.concatenate([[0.0], np.cumsum(signal, dtype=np.float64)])
    width = np.maximum(edges[1:] - edges[:-1], 1)
    return ((csum[edges[1:]] - csum[edges[:-1]]) / width).astype(np.float32)

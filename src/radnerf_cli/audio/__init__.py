"""Audio features for the audio-conditioned head: extractors behind one interface.

Kinds we compute (``FEATURE_KINDS``): ``whisper`` (Whisper tiny.en encoder, C=384) and ``mel``
(weight-free log-mel, C=80). Kinds we import from RAD-NeRF's scripts: ``eo`` (wav2vec, C=44),
``ds`` (DeepSpeech, C=29), ``hu`` (HuBERT, C=1024). All are stored as RAD-NeRF's windows
[N_frames, 16, C]: 50 Hz rows, 16 per 25-fps video frame, see :mod:`radnerf_cli.audio.windows`.

>>> feats = extract_features(load_audio("speech.wav"), "whisper", source="speech.wav")  # doctest: +SKIP
>>> feats.shape                                                                          # doctest: +SKIP
(392, 16, 384)
"""

from radnerf_cli.audio.features import (
    FEATURE_KINDS,
    check_audio,
    extract_features,
    fit_frames,
)
from radnerf_cli.audio.files import (
    IMPORT_KINDS,
    KIND_DIMS,
    feature_dim,
    feature_file_name,
    kind_from_dim,
    load_feature_file,
)
from radnerf_cli.audio.windows import frame_count, window_features

__all__ = [
    "FEATURE_KINDS",
    "IMPORT_KINDS",
    "KIND_DIMS",
    "check_audio",
    "extract_features",
    "feature_dim",
    "feature_file_name",
    "fit_frames",
    "frame_count",
    "kind_from_dim",
    "load_feature_file",
    "window_features",
]

"""Datasets in RAD-NeRF's folder format, rays and audio windows."""

from radnerf_cli.data.audio_window import audio_window
from radnerf_cli.data.dataset import FEATURE_KINDS, SubjectData, eye_area, find_feature_file, lips_rect
from radnerf_cli.data.rays import get_rays, nerf_matrix_to_ngp, ngp_matrix_to_nerf

__all__ = [
    "FEATURE_KINDS",
    "SubjectData",
    "audio_window",
    "eye_area",
    "find_feature_file",
    "get_rays",
    "lips_rect",
    "nerf_matrix_to_ngp",
    "ngp_matrix_to_nerf",
]

"""The pure-torch twin of every kernel: the ``torch`` backend and the oracle the tests compare against.

The implementations live beside each family (:mod:`ref_encoding`, :mod:`ref_raymarch`); this module
gathers them under one name.
"""

from radnerf_cli.kernels.ref_encoding import freq_encode, grid_encode, sh_encode
from radnerf_cli.kernels.ref_raymarch import (
    composite_rays,
    composite_rays_train_backward,
    composite_rays_train_forward,
    march_rays,
    march_rays_train,
    morton3D,
    morton3D_invert,
    near_far_from_aabb,
    packbits,
)

__all__ = [
    "grid_encode",
    "sh_encode",
    "freq_encode",
    "near_far_from_aabb",
    "morton3D",
    "morton3D_invert",
    "packbits",
    "march_rays_train",
    "composite_rays_train_forward",
    "composite_rays_train_backward",
    "march_rays",
    "composite_rays",
]

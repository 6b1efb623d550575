"""Compute kernels of the renderer on three interchangeable backends (cuda, cpu, torch).

Importing this package never compiles anything: extensions are built on first use by
:mod:`radnerf_cli.kernels.loader`. Choose a backend with :func:`set_backend` or ``$RADNERF_KERNELS``.

>>> import torch
>>> from radnerf_cli.kernels import sh_encode
>>> sh_encode(torch.tensor([[0.0, 0.0, 1.0]]), degree=2).shape
torch.Size([1, 4])
"""

from radnerf_cli.kernels.backend import get_backend, set_backend
from radnerf_cli.kernels.encoding import (
    FreqEncoder,
    GridEncoder,
    SHEncoder,
    freq_encode,
    grid_encode,
    sh_encode,
)
from radnerf_cli.kernels.raymarch import (
    composite_rays,
    composite_rays_train,
    march_rays,
    march_rays_train,
    morton3D,
    morton3D_invert,
    near_far_from_aabb,
    packbits,
)

__all__ = [
    "get_backend",
    "set_backend",
    "grid_encode",
    "sh_encode",
    "freq_encode",
    "GridEncoder",
    "SHEncoder",
    "FreqEncoder",
    "near_far_from_aabb",
    "morton3D",
    "morton3D_invert",
    "packbits",
    "march_rays_train",
    "composite_rays_train",
    "march_rays",
    "composite_rays",
]

"""Compute kernels of the renderer on three interchangeable backends (cuda, cpu, torch).

Importing this package never compiles anything: extensions are built on first use by
:mod:`radnerf_cli.kernels.loader`. Choose a backend with :func:`set_backend` or ``$RADNERF_KERNELS``.
"""

from radnerf_cli.kernels.backend import get_backend, set_backend

__all__ = ["get_backend", "set_backend"]

"""radnerf: personal 3D talking heads from a few minutes of video."""

__version__ = "0.1.0"

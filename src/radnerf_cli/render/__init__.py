"""Rendering over the kernels: occupancy grids, ray marching, compositing of head, torso and background."""

"""Rendering over the kernels: ray marching the head through the model's occupancy grid, the torso layer, compositing."""

"""The talking-head model: audio encoder, head field (audio-spatial decomposition), torso field and occupancy grids."""

"""The talking-head model: audio encoder, head field (audio-spatial decomposition) and torso field."""

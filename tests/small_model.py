"""Config overrides for a small model on the 32x32 synthetic subject (tests/synthetic_scene.py).

8 levels, 2^12-entry tables, a 32^3 occupancy grid, 256 rays a step on the full-size images,
no previews and one val frame; the occupancy grid refreshed every 16 steps, the default (the fast
preset's 32 is for its 13000-step head: a run of a few hundred steps prunes too seldom with it).
Each test module adds its own ``train.ckpt_every``.
"""

SMALL_MODEL = [
    "model.num_levels=8",
    "model.log2_hashmap_size=12",
    "model.desired_resolution=256",
    "model.ambient_resolution=64",
    "model.torso_resolution=64",
    "model.ind_num=64",
    "render.grid_size=32",
    "train.grid_update_interval=16",
    "train.downscale=1",
    "train.num_rays=256",
    "train.log_every=5",
    "train.preview_every=100000",
    "train.val_frames=1",
    "train.mouth_render_gain_frames=8",
]

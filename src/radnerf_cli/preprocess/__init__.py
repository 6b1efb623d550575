"""`radnerf preprocess`: a talking-head video -> a RAD-NeRF-format subject folder.

One module per step: video (checks, crop, 25-fps frames), landmarks (face mesh -> iBUG-68),
pose (rigid fit, focal, smoothing), parsing, background, overlays; pipeline runs them resumably.
"""

from radnerf_cli.preprocess.config import PreprocessConfig
from radnerf_cli.preprocess.landmarks import FaceTracker

__all__ = ["PreprocessConfig", "FaceTracker", "run_preprocess"]


def run_preprocess(*args, **kwargs):
    """See :func:`radnerf_cli.preprocess.pipeline.run_preprocess`."""
    from radnerf_cli.preprocess.pipeline import run_preprocess as _run

    return _run(*args, **kwargs)

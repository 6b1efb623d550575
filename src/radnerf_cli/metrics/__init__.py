"""Image metrics for training and evaluation: PSNR and LPIPS (AlexNet, v0.1, offline weights)."""

from radnerf_cli.metrics.image import MAX_PSNR, psnr, psnr_from_mse
from radnerf_cli.metrics.lpips import LPIPS, get_lpips, lpips_distance

__all__ = ["LPIPS", "MAX_PSNR", "get_lpips", "lpips_distance", "psnr", "psnr_from_mse"]

"""Inference: exact tile-and-stitch prediction of images of any size, in memory or out of core."""

from unetkit.inference.predict import predict, run_plan
from unetkit.inference.tiling import DEFAULT_MEMORY_BUDGET, TilePlan, estimate_tile_bytes, plan_tiles

__all__ = ["DEFAULT_MEMORY_BUDGET", "TilePlan", "estimate_tile_bytes", "plan_tiles", "predict", "run_plan"]

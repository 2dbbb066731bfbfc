"""Inference: exact tile-and-stitch prediction of images of any size, in memory, out of core or on dask."""

from unetkit.inference.dask import predict_dask  # dask/distributed are imported only when it runs
from unetkit.inference.predict import predict, run_plan
from unetkit.inference.tiling import (
    DEFAULT_MEMORY_BUDGET,
    InexactTilingWarning,
    TilePlan,
    estimate_tile_bytes,
    plan_tiles,
)

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "InexactTilingWarning",
    "TilePlan",
    "estimate_tile_bytes",
    "plan_tiles",
    "predict",
    "predict_dask",
    "run_plan",
]

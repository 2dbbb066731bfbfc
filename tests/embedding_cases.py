"""Hand-made embeddings shared by the clustering tests."""

from __future__ import annotations

import numpy as np


def background_cut_in_two() -> tuple[np.ndarray, np.ndarray]:
    """Ground truth 0 = background, cut into a left and a right region by a wall of cells 1..4
    (each cell its own embedding, the background one embedding on both sides, noise 0.05)."""
    gt = np.zeros((40, 48), np.int64)
    for k in range(4):
        gt[10 * k:10 * (k + 1), 20:28] = k + 1
    rng = np.random.default_rng(5)
    centres = rng.uniform(-4, 4, size=(5, 6))
    centres[1:] += 8.0 * np.sign(centres[1:])  # cells far from the background and from each other
    emb = np.moveaxis(centres[gt] + rng.normal(0, 0.05, size=(*gt.shape, 6)), -1, 0).astype(np.float32)
    return gt, emb

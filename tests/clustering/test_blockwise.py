"""Blockwise clustering (:mod:`unetkit.clustering.blockwise`) against whole-image clustering.

Synthetic embeddings: crowded blobs (:func:`unetkit.data.synthetic.blobs`), every object (and
the background) a random constant embedding in 4-D, plus Gaussian noise (sigma 0.2). Blocks are
much smaller than the image, so many borders run through objects.
"""

from __future__ import annotations

import numpy as np
import pytest

from unetkit.clustering import mean_shift, mutex_watershed
from unetkit.clustering.blockwise import block_grid, block_shape_for, blockwise_cluster
from unetkit.data.synthetic import blobs
from unetkit.errors import InputError
from unetkit.metrics import adapted_rand_error

from embedding_cases import background_cut_in_two

CASES = [((96, 96), (32, 32), 16), ((24, 48, 48), (12, 24, 24), 8)]


def embeddings_of(labels: np.ndarray, dim: int = 4, noise: float = 0.2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(int(labels.max()) + 1, dim))
    emb = np.moveaxis(centres[labels], -1, 0).astype(np.float32)
    return emb + rng.normal(0.0, noise, size=emb.shape).astype(np.float32)


def mws(emb: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return mutex_watershed(emb, mask=mask, delta_d=1.5, largest_is_background=False)


@pytest.mark.parametrize(("shape", "block", "overlap"), CASES)
def test_blockwise_mutex_watershed_matches_whole_image(shape: tuple[int, ...], block: tuple[int, ...],
                                                       overlap: int) -> None:
    _, gt = blobs(shape, seed=1, radius=(4.0, 9.0))
    emb = embeddings_of(gt)
    whole = mutex_watershed(emb, delta_d=1.5)
    parts = blockwise_cluster(emb, mws, block_shape=block, overlap=overlap)
    assert parts.shape == gt.shape and parts.dtype == np.int32
    # measured: 2-D 1.7e-4, 3-D 1.6e-5 (README)
    assert adapted_rand_error(parts, whole) < 0.01
    # objects of the ground truth that cross a core border keep one id (their majority id covers >= 95 %)
    crossing = 0
    for obj in range(1, int(gt.max()) + 1):
        where = np.nonzero(gt == obj)
        cut = any(len(np.unique(w // b)) > 1 for w, b in zip(where, block))
        ids, counts = np.unique(parts[gt == obj], return_counts=True)
        if cut and ids[np.argmax(counts)] != 0:
            crossing += 1
            assert counts.max() >= 0.95 * counts.sum(), (obj, ids, counts)
    assert crossing >= 5


def test_an_object_across_four_blocks_has_one_id() -> None:
    lab = np.zeros((40, 40), dtype=np.int64)
    lab[8:32, 8:32] = 1  # one square through the corner of four 20x20 cores
    lab[0:4, 30:40] = 2
    emb = embeddings_of(lab, noise=0.05)
    out = blockwise_cluster(emb, mws, block_shape=(20, 20), overlap=6)
    assert len(np.unique(out[8:32, 8:32])) == 1 and out[20, 20] != 0
    assert (out[lab == 0] == 0).all()  # the largest object (background) is 0
    assert len(np.unique(out[0:4, 30:40])) == 1 and out[1, 35] not in (0, out[20, 20])


def test_size_filter_judges_merged_objects_not_block_pieces() -> None:
    """An object of 100 px cut into four 25-px pieces by the block corner survives min_size 50;
    a 16-px speck inside one block does not; the result equals filtering the whole image."""
    lab = np.zeros((40, 40), dtype=np.int64)
    lab[15:25, 15:25] = 1  # 10x10 around the corner of four 20x20 cores
    lab[2:6, 2:6] = 2  # 4x4 = 16 px
    lab[28:38, 2:14] = 3  # 120 px, inside one core
    emb = embeddings_of(lab, noise=0.05)
    out = blockwise_cluster(emb, mws, block_shape=(20, 20), overlap=6, min_size=50)
    whole = mutex_watershed(emb, delta_d=1.5, min_size=50)
    np.testing.assert_array_equal(out, whole)
    assert out.max() == 2 and (out[lab == 2] == 0).all()
    assert len(np.unique(out[lab == 1])) == 1 and out[lab == 1][0] > 0


def test_background_radius_blockwise_equals_whole_image() -> None:
    """Background cut into two regions by a wall of cells, blocks much smaller than the image:
    the means summed over the cores join both regions into the background as in one piece."""
    gt, emb = background_cut_in_two()
    whole = mutex_watershed(emb, delta_d=1.5, background_radius=0.5)
    parts = blockwise_cluster(emb, mws, block_shape=(16, 16), overlap=8, background_radius=0.5)
    np.testing.assert_array_equal(parts, whole)
    assert parts.max() == 4 and (parts[gt == 0] == 0).all()


def test_blockwise_with_a_mask_and_mean_shift() -> None:
    _, gt = blobs((64, 64), seed=2, radius=(4.0, 9.0))
    emb = embeddings_of(gt, noise=0.05)
    fg = gt > 0

    def ms(e: np.ndarray, m: np.ndarray | None) -> np.ndarray:
        return mean_shift(e, bandwidth=0.5, kernel="flat", mask=m)

    out = blockwise_cluster(emb, ms, block_shape=(24, 24), overlap=12, mask=fg)
    assert (out[~fg] == 0).all()
    assert adapted_rand_error(out, gt) < 0.01


def test_grid_and_block_sizes() -> None:
    grid = block_grid((10, 7), (4, 4), 2)
    assert len(grid) == 3 * 2
    assert grid[-1] == ((slice(8, 10), slice(4, 7)), (slice(6, 10), slice(2, 7)))
    assert block_shape_for((1000, 1000), 100.0, 100 * 64 * 64, overlap=16) == (32, 32)
    assert block_shape_for((1000, 1000), 100.0, 10, overlap=16) == (16, 16)  # floor max(8, overlap)
    with pytest.raises(InputError, match="block_shape"):
        blockwise_cluster(np.zeros((2, 8, 8), np.float32), mws, block_shape=(4,))
    with pytest.raises(InputError, match="mask shape"):
        blockwise_cluster(np.zeros((2, 8, 8), np.float32), mws, block_shape=(4, 4), mask=np.ones((8, 7), bool))


def test_blocks_clustered_in_parallel_give_the_same_labels() -> None:
    from concurrent.futures import ThreadPoolExecutor

    _, gt = blobs((64, 64), seed=3, radius=(4.0, 9.0))
    emb = embeddings_of(gt)
    serial = blockwise_cluster(emb, mws, block_shape=(20, 20), overlap=8)
    with ThreadPoolExecutor(2) as pool:
        parallel = blockwise_cluster(emb, mws, block_shape=(20, 20), overlap=8, mapper=pool.map)
    np.testing.assert_array_equal(serial, parallel)

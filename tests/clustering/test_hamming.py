"""Hamming clustering of sampled label maps (HPU-Net appendices G/H): exact separation of touching
objects whose colours agree in some samples, pixel noise, the erosion filter with majority fill,
connected components, 3-D, errors and speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from unetkit.clustering import hamming_clustering
from unetkit.data.synthetic import instance_colouring
from unetkit.errors import InputError
from unetkit.metrics import adapted_rand_error

# colour of each object per sample (n = 8): A and B share the colour in samples 0 and 1 only
# (6 differences: one-hot distance 12 > alpha = 8); C has A's code but lies far away
COLOURS = {
    1: [1, 2, 3, 4, 1, 2, 3, 4],  # A
    2: [1, 2, 4, 3, 2, 1, 4, 3],  # B, touching A
    3: [1, 2, 3, 4, 1, 2, 3, 4],  # C, same code as A, separate
}


def truth(ndim: int = 2) -> np.ndarray:
    """Objects 1 (A), 2 (B, touching A) and 3 (C), numbered by first appearance in C order."""
    if ndim == 2:
        gt = np.zeros((40, 48), np.int64)
        gt[4:20, 4:18] = 1
        gt[4:20, 18:34] = 2
        gt[26:38, 10:40] = 3
    else:
        gt = np.zeros((14, 24, 26), np.int64)
        gt[2:10, 2:10, 2:10] = 1
        gt[2:10, 2:10, 10:18] = 2
        gt[2:12, 14:22, 4:22] = 3
    return gt


def coloured(gt: np.ndarray, colours: dict[int, list[int]] = COLOURS) -> np.ndarray:
    """(n, *S) samples: object k has colour colours[k][s] in sample s, 0 background."""
    n = len(colours[1])
    table = np.zeros((n, max(colours) + 1), np.int64)
    for k, col in colours.items():
        table[:, k] = col
    return table[:, gt]


def test_touching_objects_sharing_colours_are_separated_exactly() -> None:
    gt = truth()
    out = hamming_clustering(coloured(gt))
    assert out.dtype == np.int64 and out.shape == gt.shape
    np.testing.assert_array_equal(out, gt)
    assert adapted_rand_error(out, gt) == 0.0


def test_random_colourings_are_separated() -> None:
    gt = truth()
    rng = np.random.default_rng(0)
    cols = {1: rng.integers(1, 5, 8).tolist()}
    # B: equal to A in exactly 3 samples (5 differences, distance 10 > 8), C random
    b = [c % 4 + 1 for c in cols[1]]
    b[:3] = cols[1][:3]
    cols[2] = b
    cols[3] = rng.integers(1, 5, 8).tolist()
    out = hamming_clustering(coloured(gt, cols))
    assert adapted_rand_error(out, gt) == 0.0
    assert int(out.max()) == 3


def test_alpha_is_in_one_hot_units() -> None:
    gt = truth()
    samples = coloured(gt)
    # A and B differ in 6 of 8 samples: one-hot Hamming distance 12
    merged = hamming_clustering(samples, alpha=12)
    assert len(np.unique(merged[gt == 1])) == 1 and merged[gt == 1][0] == merged[gt == 2][0]
    np.testing.assert_array_equal(hamming_clustering(samples, alpha=11.9), gt)


def test_connected_components_split_equal_codes() -> None:
    gt = truth()
    joined = hamming_clustering(coloured(gt), connected=False)
    expected = np.where(gt == 3, 1, gt)  # C has A's code: one cluster without the split
    np.testing.assert_array_equal(joined, expected)


def test_pixel_noise_joins_its_object() -> None:
    gt = truth()
    samples = coloured(gt)
    samples[3, 8, 8] = 2  # one flipped sample label: distance 2 <= alpha
    samples[5, 10, 20] = 3
    samples[0, 30, 30] = 4
    samples[6, 2, 40] = 1  # background pixel coloured in one sample
    np.testing.assert_array_equal(hamming_clustering(samples), gt)


def test_small_cluster_removed_by_erosion_takes_neighbour_label() -> None:
    gt = truth()
    samples = coloured(gt)
    samples[:, 10:12, 24:26] = 7  # a 2x2 speck with its own code inside B
    samples[:, 30:32, 2:4] = 6  # a 2x2 speck in the background
    out = hamming_clustering(samples)
    np.testing.assert_array_equal(out, gt)
    # without the erosion filter the specks stay instances
    kept = hamming_clustering(samples, erosion=1)
    assert int(kept.max()) == 5


def test_all_background_and_background_none() -> None:
    out = hamming_clustering(np.zeros((4, 16, 16), np.int64))
    assert out.dtype == np.int64 and not out.any()
    gt = truth()
    everything = hamming_clustering(coloured(gt), background=None)
    assert everything.min() == 1 and int(everything.max()) == 4  # the background is one more instance


def test_3d_and_torch_input() -> None:
    gt = truth(3)
    samples = coloured(gt)
    out = hamming_clustering(samples, erosion=3, majority=5)
    np.testing.assert_array_equal(out, gt)
    np.testing.assert_array_equal(hamming_clustering(torch.from_numpy(samples), erosion=3, majority=5), gt)


@pytest.mark.parametrize(("samples", "kwargs", "match"), [
    (np.zeros((1, 8, 8), np.int64), {}, "n=1"),
    (np.zeros((3, 8, 8), np.float32), {}, "dtype float32"),
    (np.zeros((3, 8), np.int64), {}, "shape"),
    (np.zeros((3, 8, 8), np.int64), {"alpha": -1}, "alpha=-1"),
    (np.zeros((3, 8, 8), np.int64), {"erosion": 0}, "erosion=0"),
    (np.zeros((3, 8, 8), np.int64), {"erosion": 2.5}, "erosion=2.5"),
    (np.zeros((3, 8, 8), np.int64), {"majority": 0}, "majority=0"),
    (np.zeros((3, 8, 8), np.int64), {"background": 0.5}, "background=0.5"),
])
def test_bad_inputs(samples, kwargs, match) -> None:
    with pytest.raises(InputError, match=match):
        hamming_clustering(samples, **kwargs)


def test_speed_256_with_16_samples() -> None:
    data = instance_colouring(1, (256, 256), n_graders=16, n_colours=8, seed=3, radius=(16.0, 28.0))
    samples, gt = data.graders[0], data.instances[0]
    assert 20 <= int(gt.max()) <= 45
    start = time.perf_counter()
    out = hamming_clustering(samples)
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0
    assert adapted_rand_error(out, gt) < 0.01

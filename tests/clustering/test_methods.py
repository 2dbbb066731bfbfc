"""HDBSCAN, mutex watershed, consistency clustering and the shared helpers: recovery of
separated objects in 2-D and 3-D with and without a mask, the background rule, the repulsive
long-range edges of the mutex watershed, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unetkit.clustering import (consistency_clustering, hdbscan, largest_to_background, mean_shift,
                                mutex_watershed, relabel_sequential, remove_small_segments)
from unetkit.clustering.mutex_watershed import default_offsets, embedding_affinity_weights
from unetkit.errors import InputError

from embedding_cases import background_cut_in_two


def objects(ndim: int) -> np.ndarray:
    """Ground truth: a large background (0) and three box objects 1..3, spatially separated."""
    if ndim == 2:
        gt = np.zeros((40, 44), np.int64)
        gt[4:14, 4:20] = 1
        gt[20:36, 8:30] = 2
        gt[3:12, 26:40] = 3
    else:
        gt = np.zeros((12, 20, 22), np.int64)
        gt[1:6, 2:8, 2:10] = 1
        gt[6:11, 10:18, 4:14] = 2
        gt[1:6, 2:9, 14:20] = 3
    return gt


def piecewise(gt: np.ndarray, *, dim: int = 6, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """``(dim, *S)`` embeddings: one random centre per label (>= 3 apart) plus small noise."""
    rng = np.random.default_rng(seed)
    k = int(gt.max()) + 1
    while True:
        c = rng.uniform(-4, 4, size=(k, dim))
        d = np.linalg.norm(c[:, None] - c[None], axis=-1) + 10 * np.eye(k)
        if d.min() >= 3:
            break
    emb = c[gt] + rng.normal(scale=noise, size=(*gt.shape, dim))
    return np.moveaxis(emb, -1, 0).astype(np.float32)


def same_partition(pred: np.ndarray, gt: np.ndarray) -> bool:
    pairs = np.unique(np.stack([gt.ravel(), pred.ravel()]), axis=1)
    return pairs.shape[1] == len(np.unique(gt)) == len(np.unique(pred))


METHODS = {
    "hdbscan": lambda e, **kw: hdbscan(e, min_size=20, **kw),
    "mutex_watershed": lambda e, **kw: mutex_watershed(e, **kw),
    "consistency": lambda e, **kw: consistency_clustering(e, e, **kw),
    "mean_shift": lambda e, **kw: mean_shift(e, bandwidth=1.0, **kw),
}


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", ["hdbscan", "mutex_watershed", "consistency"])
def test_recovers_objects_background_is_largest(name: str, ndim: int) -> None:
    gt = objects(ndim)
    labels = METHODS[name](piecewise(gt))
    assert labels.shape == gt.shape and labels.dtype == np.int32
    assert (labels[gt == 0] == 0).all()  # the largest cluster became the background
    assert same_partition(labels, gt) and labels.max() == 3


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", ["hdbscan", "mutex_watershed", "consistency", "mean_shift"])
def test_mask(name: str, ndim: int) -> None:
    gt = objects(ndim)
    mask = gt > 0
    labels = METHODS[name](piecewise(gt, seed=1), mask=mask)
    assert (labels[~mask] == 0).all() and (labels[mask] > 0).all()  # no background rule with a mask
    assert same_partition(labels[mask], gt[mask])
    # masked-out pixels do not matter, whatever their embeddings
    emb = piecewise(gt, seed=1)
    emb[:, ~mask] = 1e3 * np.random.default_rng(0).normal(size=(emb.shape[0], int((~mask).sum())))
    np.testing.assert_array_equal(METHODS[name](emb, mask=mask), labels)


def test_torch_in_torch_out() -> None:
    gt = objects(2)
    emb = torch.from_numpy(piecewise(gt))
    for name in ("hdbscan", "mutex_watershed", "consistency"):
        out = METHODS[name](emb)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.int32
        np.testing.assert_array_equal(out.numpy(), METHODS[name](emb.numpy()))


def test_background_rule_and_relabel() -> None:
    lab = torch.tensor([[2, 2, 1], [3, 3, 3]])
    assert largest_to_background(lab).tolist() == [[2, 2, 1], [0, 0, 0]]
    assert largest_to_background(torch.tensor([1, 2, 2, 1])).tolist() == [0, 1, 1, 0]  # tie: smaller
    assert relabel_sequential(torch.tensor([7, 0, 3, 7, 5])).tolist() == [1, 0, 2, 1, 3]
    emb = piecewise(objects(2))
    ms = mean_shift(emb, bandwidth=1.0)
    assert ms.min() == 1  # mean shift keeps its default: no background rule
    np.testing.assert_array_equal(mean_shift(emb, bandwidth=1.0, largest_is_background=True),
                                  largest_to_background(torch.from_numpy(ms)).numpy())
    assert mutex_watershed(emb, largest_is_background=False).min() == 1


def test_remove_small_segments_by_hand() -> None:
    lab = torch.tensor([[5, 5, 5, 0], [2, 0, 5, 7], [2, 2, 0, 7]])  # sizes: 5 -> 4, 2 -> 3, 7 -> 2
    assert remove_small_segments(lab, 3).tolist() == [[1, 1, 1, 0], [2, 0, 1, 0], [2, 2, 0, 0]]
    assert remove_small_segments(lab, 4).tolist() == [[1, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert remove_small_segments(lab, 0).tolist() == relabel_sequential(lab).tolist()
    assert remove_small_segments(lab, 99).tolist() == torch.zeros_like(lab).tolist()


@pytest.mark.parametrize("method", ["mws", "mean_shift"])
def test_min_size_removes_fragments_keeps_objects(method: str) -> None:
    """Speckle (single pixels with embeddings of their own) in the background: every speckle is
    an object without the size filter, none with it; the three true objects survive intact."""
    gt = objects(2)
    emb = piecewise(gt)
    rng = np.random.default_rng(3)
    bg = np.argwhere(gt == 0)
    speck = bg[rng.choice(len(bg), 12, replace=False)]
    far = np.full(emb.shape[0], 40.0)
    for k, (y, x) in enumerate(speck):
        emb[:, y, x] = far + 12.0 * k  # pairwise far apart and far from everything else
    if method == "mws":
        run = lambda m: mutex_watershed(emb, min_size=m)  # noqa: E731
    else:
        run = lambda m: mean_shift(emb, bandwidth=1.0, kernel="flat", largest_is_background=True,  # noqa: E731
                                   min_size=m)
    assert run(0).max() == 3 + 12
    filtered = run(4)
    assert filtered.max() == 3
    assert same_partition(np.where(gt > 0, filtered, 0), gt)
    assert (filtered[tuple(speck.T)] == 0).all()


def test_join_background_by_hand() -> None:
    from unetkit.clustering._common import join_background, segment_sums

    lab = np.array([[1, 1, 1, 2], [3, 3, 0, 2], [4, 4, 4, 4]])  # 1: 3 px, 2: 2, 3: 2, 4: 4 (largest)
    emb = np.zeros((2, 3, 4))
    emb[:, lab == 1] = np.array([[0.3], [0.0]])  # 0.3 from segment 4's mean (0, 0): joined
    emb[:, lab == 2] = np.array([[3.0], [4.0]])  # 5 away: kept
    emb[:, lab == 3] = np.array([[0.0], [0.6]])  # 0.6 away: joined only with radius >= 0.6
    sums, counts = segment_sums(lab, emb)
    assert counts.tolist() == [1, 3, 2, 2, 4]
    np.testing.assert_allclose(sums[1], [0.9, 0.0])
    got = join_background(torch.from_numpy(lab), sums, counts, 0.5)
    assert got.tolist() == [[4, 4, 4, 2], [3, 3, 0, 2], [4, 4, 4, 4]]
    assert join_background(torch.from_numpy(lab), sums, counts, 0.6).tolist() == [[4, 4, 4, 2], [4, 4, 0, 2],
                                                                                   [4, 4, 4, 4]]
    assert join_background(torch.from_numpy(lab), sums, counts, 0.0).tolist() == lab.tolist()


def test_mws_background_radius_joins_background_regions_cut_apart_by_cells() -> None:
    gt, emb = background_cut_in_two()
    plain = mutex_watershed(emb)
    assert plain.max() == 5  # the wall's 4 cells and one of the two background regions
    joined = mutex_watershed(emb, background_radius=0.5)
    assert joined.max() == 4 and (joined[gt == 0] == 0).all()
    assert same_partition(joined, gt)


def test_hdbscan_subsample_noise_and_determinism() -> None:
    gt = objects(2)
    emb = piecewise(gt, seed=2)
    a = hdbscan(emb, min_size=40, max_samples=300, seed=1)
    assert same_partition(a, gt)
    np.testing.assert_array_equal(a, hdbscan(emb, min_size=40, max_samples=300, seed=1))
    # an outlier pixel far from every cluster: noise -> background or nearest object
    emb[:, 0, 43] = 50.0
    assert hdbscan(emb, min_size=20, noise="background", mask=gt >= 0)[0, 43] == 0
    assert hdbscan(emb, min_size=20, noise="nearest", mask=gt >= 0)[0, 43] > 0
    # fewer pixels than min_size: no cluster, one object ("nearest") or all background
    small = np.random.default_rng(0).normal(size=(2, 5, 5))
    assert (hdbscan(small, min_size=30, mask=np.ones((5, 5), bool)) == 1).all()
    assert (hdbscan(small, min_size=30, noise="background", mask=np.ones((5, 5), bool)) == 0).all()


def test_mws_weights_follow_eq12() -> None:
    emb = np.zeros((1, 1, 5))
    emb[0, 0] = [0.0, 1.0, 2.0, 4.0, 10.0]
    w = embedding_affinity_weights(emb, [(0, 1)], delta_d=2.0)[0, 0]
    # distances 1, 1, 2, 6 with hinge 2 delta_d = 4: w = 1 - ((4 - d) / 4)^2, 1 beyond 4
    np.testing.assert_allclose(w[:4], [1 - 0.75**2, 1 - 0.75**2, 1 - 0.5**2, 1.0])
    assert w[4] == 0  # no neighbour beyond the border
    assert default_offsets(2)[:2] == [(1, 0), (0, 1)] and (0, 27) in default_offsets(2)
    assert len(default_offsets(3)) == 12


def test_mws_repulsive_long_range_edges_split() -> None:
    # a smooth ramp of embeddings along x: neighbours are always close (strongly attractive),
    # but pixels 9 or 27 apart differ by more than 2 delta_d (repulsive); the long-range edges
    # cut the ramp into several objects, without them it stays one
    x = np.arange(60, dtype=np.float32)
    emb = np.broadcast_to(0.5 * x, (8, 60))[None].copy()  # (1, 8, 60), step 0.5 per pixel
    with_long = mutex_watershed(emb, largest_is_background=False)
    short_only = mutex_watershed(emb, offsets=[(1, 0), (0, 1)], largest_is_background=False)
    assert (short_only == 1).all()
    assert with_long.max() >= 3
    # objects are runs along x; pixels 9 apart (distance 4.5 > 2 delta_d, w = 1, priority 1 >
    # the neighbours' affinity 0.77) never end up together
    for k in range(1, with_long.max() + 1):
        cols = np.nonzero((with_long == k).any(0))[0]
        assert (with_long[:, cols] == k).all() and np.ptp(cols) < 9


def test_mws_equal_embeddings_far_apart_are_two_objects() -> None:
    gt = np.zeros((20, 30), np.int64)
    gt[3:8, 3:8] = 1
    gt[12:18, 20:27] = 1  # same label, not touching
    labels = mutex_watershed(piecewise(gt), mask=gt > 0)
    assert labels.max() == 2 and len(np.unique(labels[gt > 0])) == 2


def test_consistency_drops_inconsistent_objects() -> None:
    gt = objects(2)
    f = piecewise(gt, seed=3)
    g = f.copy()
    rng = np.random.default_rng(0)
    g[:, gt == 2] = rng.normal(scale=3.0, size=(f.shape[0], int((gt == 2).sum())))  # object 2 scattered in g
    labels = consistency_clustering(f, g, t_iou=0.6)
    assert (labels[gt == 2] == 0).all() and (labels[gt == 0] == 0).all()
    assert same_partition(labels[(gt == 1) | (gt == 3)], gt[(gt == 1) | (gt == 3)])
    # with t_iou = 0 (any overlap keeps the median above 0 for the consistent objects)
    assert consistency_clustering(f, f, t_iou=0.0).max() == 3
    assert (consistency_clustering(f, f, t_iou=1.0) == 0).all()  # IoU can never exceed 1


E = np.zeros((2, 6, 6), np.float32)


@pytest.mark.parametrize(
    ("call", "phrase"),
    [
        (lambda: hdbscan(np.zeros(5)), r"\(E, \*S\)"),
        (lambda: hdbscan(E, min_size=1), "min_size=1"),
        (lambda: hdbscan(E, min_size=2.5), "min_size=2.5"),
        (lambda: hdbscan(E, noise="drop"), "noise='drop'"),
        (lambda: hdbscan(E, max_samples=1), "max_samples=1"),
        (lambda: hdbscan(E, mask=np.ones((6, 5), bool)), r"mask shape \(6, 5\)"),
        (lambda: hdbscan(np.full((2, 3, 3), np.nan)), "NaN"),
        (lambda: mutex_watershed(np.zeros((2, 8))), "2-D or 3-D"),
        (lambda: mutex_watershed(np.zeros((2, 2, 2, 2, 2))), "2-D or 3-D"),
        (lambda: mutex_watershed(E, delta_d=0), "delta_d=0"),
        (lambda: mutex_watershed(E, min_size=-1), "min_size=-1"),
        (lambda: mean_shift(E, bandwidth=1.0, min_size=2.5), "min_size=2.5"),
        (lambda: mutex_watershed(E, offsets=[(1, 0, 0)]), "offsets="),
        (lambda: mutex_watershed(E, offsets=[(0, 0)]), "offsets="),
        (lambda: mutex_watershed(E, offsets=[(0.5, 1)]), "offsets="),
        (lambda: mutex_watershed(E, offsets=[]), "offsets="),
        (lambda: mutex_watershed(np.full((2, 3, 3), np.inf)), "NaN or infinite"),
        (lambda: consistency_clustering(E, np.zeros((2, 6, 5))), r"differ in shape"),
        (lambda: consistency_clustering(E, E, t_iou=1.5), "t_iou=1.5"),
        (lambda: consistency_clustering(E, E, delta_v=-1), "delta_v=-1"),
        (lambda: consistency_clustering(E, E, n_anchors=0), "n_anchors=0"),
        (lambda: consistency_clustering(E, [[1.0]]), "g_embeddings must be a NumPy array"),
    ],
)
def test_bad_inputs(call, phrase: str) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match=phrase):
        call()

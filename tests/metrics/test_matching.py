"""Object metrics: matching, segmentation accuracy, SBD, DiC, VI by hand, vs scikit-image, properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from skimage.metrics import variation_of_information as sk_vi

from unetkit.errors import InputError
from unetkit.metrics import (
    Matching,
    dic,
    matching,
    mean_segmentation_accuracy,
    segmentation_accuracy,
    symmetric_best_dice,
    variation_of_information,
)
from unetkit.metrics.instance import DSB_THRESHOLDS, _match

# one gt object of 4 pixels split into two halves: IoU 0.5 each, Dice 2/3 each
SPLIT_GT = np.array([[1, 1], [1, 1]])
SPLIT_PRED = np.array([[1, 1], [2, 2]])
# two gt objects merged into one: IoU 0.5 each
MERGE_GT = np.array([[1, 1, 2, 2]])
MERGE_PRED = np.array([[5, 5, 5, 5]])
# gt object 2 missed
MISS_GT = np.array([[1, 1, 0, 2]])
MISS_PRED = np.array([[3, 3, 0, 0]])


def scores(m: Matching) -> tuple[int, int, int, float, float, float, float]:
    return (m.tp, m.fp, m.fn, m.precision, m.recall, m.f1, m.accuracy)


def test_iou_matrix_and_ids_not_consecutive() -> None:
    gt = np.array([[1, 1, 0, 2, 2], [1, 1, 0, 2, 2]])
    pred = np.array([[30, 30, 0, 0, 7], [30, 30, 0, 0, 7]])
    m = matching(pred, gt)
    assert m.pred_ids.tolist() == [7, 30] and m.gt_ids.tolist() == [1, 2]
    # (pred 7, gt 2): 2 / 4; (pred 30, gt 1): 4 / 4
    np.testing.assert_allclose(m.iou, [[0.0, 0.5], [1.0, 0.0]])
    assert sorted(map(tuple, m.matched.tolist())) == [(7, 2), (30, 1)]
    assert scores(m) == (2, 0, 0, 1.0, 1.0, 1.0, 1.0)
    # rule ">": IoU exactly 0.5 does not count
    assert scores(matching(pred, gt, rule=">")) == (1, 1, 1, 0.5, 0.5, 0.5, pytest.approx(1 / 3))
    # 0.5:0.05:0.95: 1.0 at 0.5, 1/3 at the nine others
    assert DSB_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    assert mean_segmentation_accuracy(pred, gt) == pytest.approx((1 + 9 / 3) / 10)
    # Dice criterion: 2 * 2 / (2 + 4) = 2/3
    np.testing.assert_allclose(matching(pred, gt, criterion="dice").scores, [[0, 2 / 3], [1, 0]])


def test_single_object_3d() -> None:
    gt = np.zeros((3, 4, 4), np.uint16)
    gt[1:, 1:3, 1:3] = 9
    pred = np.where(gt > 0, 2, 0).astype(np.int32)
    assert scores(matching(pred, gt, 0.95)) == (1, 0, 0, 1.0, 1.0, 1.0, 1.0)
    assert symmetric_best_dice(pred, gt) == 1.0
    assert variation_of_information(pred, gt) == (0.0, 0.0)
    assert dic(pred, gt) == 0


def test_split() -> None:
    # ">= 0.5": both halves qualify for the one gt object; one is matched, the other is a FP
    m = matching(SPLIT_PRED, SPLIT_GT)
    assert scores(m) == (1, 1, 0, 0.5, 1.0, pytest.approx(2 / 3), 0.5)
    assert segmentation_accuracy(SPLIT_PRED, SPLIT_GT) == 0.5
    assert segmentation_accuracy(SPLIT_PRED, SPLIT_GT, rule=">") == 0.0  # tp 0, fp 2, fn 1
    assert symmetric_best_dice(SPLIT_PRED, SPLIT_GT) == pytest.approx(2 / 3)
    assert dic(SPLIT_PRED, SPLIT_GT) == 1
    # H(pred | gt) = 1 bit (the object is cut in two halves), H(gt | pred) = 0
    assert variation_of_information(SPLIT_PRED, SPLIT_GT) == pytest.approx((1.0, 0.0))


def test_merge() -> None:
    assert scores(matching(MERGE_PRED, MERGE_GT)) == (1, 0, 1, 1.0, 0.5, pytest.approx(2 / 3), 0.5)
    assert symmetric_best_dice(MERGE_PRED, MERGE_GT) == pytest.approx(2 / 3)
    assert dic(MERGE_PRED, MERGE_GT) == -1 and dic(MERGE_PRED, MERGE_GT, absolute=True) == 1
    assert variation_of_information(MERGE_PRED, MERGE_GT) == pytest.approx((0.0, 1.0))


def test_missed_object() -> None:
    assert scores(matching(MISS_PRED, MISS_GT)) == (1, 0, 1, 1.0, 0.5, pytest.approx(2 / 3), 0.5)
    # BD(pred, gt) = 1, BD(gt, pred) = (1 + 0) / 2
    assert symmetric_best_dice(MISS_PRED, MISS_GT) == 0.5
    assert dic(MISS_PRED, MISS_GT, absolute=True) == 1
    # gt {0 at 2 px: pred 0}, pred 0 = {gt 0, gt 2}: merge H(gt | pred) = 2/4 * 1 bit
    assert variation_of_information(MISS_PRED, MISS_GT) == pytest.approx((0.0, 0.5))
    # without gt background: pred 0 covers gt 2 alone, each segment maps to one other
    assert variation_of_information(MISS_PRED, MISS_GT, ignore_background=True) == (0.0, 0.0)


def test_empty_conventions() -> None:
    z = np.zeros((3, 3), int)
    one = z.copy()
    one[1, 1] = 4
    m = matching(z, z)
    assert scores(m) == (0, 0, 0, 1.0, 1.0, 1.0, 1.0) and m.iou.shape == (0, 0) and m.matched.shape == (0, 2)
    assert all(math.isnan(v) for v in scores(matching(z, z, empty=float("nan")))[3:])
    assert segmentation_accuracy(z, z) == 1.0 and math.isnan(segmentation_accuracy(z, z, empty=float("nan")))
    assert mean_segmentation_accuracy(z, z, empty=0.0) == 0.0
    assert symmetric_best_dice(z, z) == 1.0 and math.isnan(symmetric_best_dice(z, z, empty=float("nan")))
    # only one side empty: 0, never `empty`
    assert scores(matching(z, one)) == (0, 0, 1, 0.0, 0.0, 0.0, 0.0)
    assert scores(matching(one, z, empty=float("nan"))) == (0, 1, 0, 0.0, 0.0, 0.0, 0.0)
    assert symmetric_best_dice(z, one) == 0.0 and symmetric_best_dice(one, z) == 0.0
    assert dic(z, z) == 0 and dic(one, z) == 1
    assert variation_of_information(z, z) == (0.0, 0.0)
    assert variation_of_information(one, z, ignore_background=True) == (0.0, 0.0)  # no pixel left


def test_low_threshold_uses_optimal_assignment() -> None:
    # greedy (best pair first) matches (0, 0) and stops at 1; the optimum is (0, 1) + (1, 0)
    s = np.array([[0.6, 0.35], [0.35, 0.0]])
    r, c = _match(s, 0.3, ">=")
    assert sorted(zip(r.tolist(), c.tolist())) == [(0, 1), (1, 0)]
    # among maximum matchings the larger summed score wins
    r, c = _match(np.array([[0.9, 0.4], [0.4, 0.9]]), 0.3, ">=")
    assert sorted(zip(r.tolist(), c.tolist())) == [(0, 0), (1, 1)]


@pytest.mark.parametrize("seed", range(20))
def test_assignment_count_is_maximal(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s = rng.random((3, 4)) * (rng.random((3, 4)) < 0.6)
    t = 0.25
    r, c = _match(s, t, ">=")
    assert len(set(r.tolist())) == len(r) and len(set(c.tolist())) == len(c)
    assert np.all(s[r, c] >= t)
    best = max(sum(s[i, j] >= t and s[i, j] > 0 for i, j in zip(range(3), perm))
               for perm in itertools.permutations(range(4), 3))
    assert len(r) == best


@pytest.mark.parametrize("seed", range(6))
def test_vi_agrees_with_scikit_image(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (12, 10) if seed % 2 else (4, 6, 5)
    gt = rng.integers(0, 7, shape) * 3
    pred = rng.integers(0, 4, shape) + 100 * (seed % 3)
    assert variation_of_information(pred, gt) == pytest.approx(tuple(sk_vi(gt, pred)), abs=1e-10)
    ours = variation_of_information(pred, gt, ignore_background=True)
    assert ours == pytest.approx(tuple(sk_vi(gt, pred, ignore_labels=[0])), abs=1e-10)


def test_bad_inputs() -> None:
    a = np.zeros((2, 2), int)
    with pytest.raises(InputError, match=r"\(2, 2\).*\(4,\)"):
        matching(a, np.zeros(4, int))
    with pytest.raises(InputError, match="integer labels.*float"):
        symmetric_best_dice(a.astype(float), a)
    with pytest.raises(InputError, match="ground truth holds negative label id -3"):
        variation_of_information(a, a - 3)
    with pytest.raises(InputError, match="prediction holds negative label id -1"):
        segmentation_accuracy(a - 1, a)
    with pytest.raises(InputError, match="'>>'"):
        matching(a, a, rule=">>")
    with pytest.raises(InputError, match="'ap'"):
        matching(a, a, criterion="ap")
    with pytest.raises(InputError, match="1.5"):
        segmentation_accuracy(a, a, 1.5)
    with pytest.raises(InputError, match="thresholds is empty"):
        mean_segmentation_accuracy(a, a, thresholds=[])


labels = hnp.arrays(np.int64, hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=5),
                    elements=st.integers(0, 4))


@settings(max_examples=60, deadline=None)
@given(gt=labels, data=st.data())
def test_relabelled_copy_is_perfect(gt: np.ndarray, data: st.DataObject) -> None:
    ids = data.draw(st.lists(st.integers(1, 2**40), min_size=4, max_size=4, unique=True))
    pred = np.array([0, *ids])[gt]
    m = matching(pred, gt, 0.95, rule=">")
    assert (m.fp, m.fn) == (0, 0) and m.tp == len(np.unique(gt[gt > 0]))
    assert (m.precision, m.recall, m.f1, m.accuracy) == (1.0, 1.0, 1.0, 1.0)
    assert mean_segmentation_accuracy(pred, gt) == 1.0
    assert symmetric_best_dice(pred, gt) == 1.0
    assert dic(pred, gt) == 0
    assert variation_of_information(pred, gt) == pytest.approx((0.0, 0.0), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_symmetry_and_ranges(data: st.DataObject) -> None:
    gt = data.draw(labels)
    pred = data.draw(hnp.arrays(np.int64, gt.shape, elements=st.integers(0, 4)))
    t = data.draw(st.sampled_from([0.1, 0.3, 0.5, 0.7]))
    m, mt = matching(pred, gt, t), matching(gt, pred, t)
    np.testing.assert_array_equal(m.iou, mt.iou.T)
    assert (m.tp, m.fp, m.fn) == (mt.tp, mt.fn, mt.fp)
    assert (m.precision, m.recall, m.f1, m.accuracy) == pytest.approx((mt.recall, mt.precision, mt.f1, mt.accuracy))
    for v in (m.precision, m.recall, m.f1, m.accuracy, *m.iou.ravel()):
        assert 0.0 <= v <= 1.0
    assert m.accuracy <= m.f1 + 1e-12
    assert np.all(m.matched_scores >= t)
    # accuracy does not increase with the threshold from 0.5 up
    accs = [segmentation_accuracy(pred, gt, u) for u in DSB_THRESHOLDS]
    assert all(a >= b for a, b in zip(accs, accs[1:]))
    assert 0.0 <= mean_segmentation_accuracy(pred, gt) <= 1.0
    sbd = symmetric_best_dice(pred, gt)
    assert 0.0 <= sbd <= 1.0 and sbd == pytest.approx(symmetric_best_dice(gt, pred))
    assert dic(pred, gt) == -dic(gt, pred)
    split, merge = variation_of_information(pred, gt)
    assert split >= 0 and merge >= 0
    assert variation_of_information(gt, pred) == pytest.approx((merge, split), abs=1e-12)

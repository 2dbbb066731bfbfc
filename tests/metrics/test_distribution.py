"""Distribution metrics (HPU-Net appendix B): GED^2, Hungarian-matched IoU, IoU_rec, by hand."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from unetkit.errors import InputError
from unetkit.metrics import ged, hungarian_matched_iou, iou, iou_matrix, iou_rec

A = np.array([[1, 1], [0, 0]])
B = np.array([[1, 0], [0, 0]])
C = np.array([[1, 0], [1, 0]])
E = np.zeros((2, 2), int)  # an empty grading
E2 = np.array([[0, 0], [0, 1]])


def test_ged_hand_computed() -> None:
    # IoU(A, C) = 1/3 (A & C = {00}, A | C = {00, 01, 10}), IoU(B, C) = 1/2, IoU(A, B) = 1/2.
    # E[d(S, Y)] = (2/3 + 1/2) / 2 = 7/12; E[d(S, S')] over all 4 ordered pairs = (0 + 1/2 + 1/2 + 0) / 4
    # = 1/4; E[d(Y, Y')] = 0 (one grader). GED^2 = 14/12 - 3/12 = 11/12.
    value, sy, ss, yy = ged(np.stack([A, B]), C[None], return_terms=True)
    assert (value, sy, ss, yy) == pytest.approx((11 / 12, 7 / 12, 1 / 4, 0.0))


def test_ged_empty_graders_both_conventions() -> None:
    s, y = np.stack([A, E]), np.stack([E, E2])
    # empty=1 (LIDC): IoU(E, E) = 1. d: A-E 1, A-E2 1, E-E 0, E-E2 1 -> cross 3/4;
    # within samples (A, E): (0 + 1 + 1 + 0) / 4 = 1/2; within graders (E, E2): 1/2. GED^2 = 3/2 - 1 = 1/2.
    assert ged(s, y, return_terms=True) == pytest.approx((0.5, 0.75, 0.5, 0.5))
    # distinct pairs only: within terms 1 and 1 -> GED^2 = 3/2 - 2 = -1/2 (the U-statistic can be negative)
    assert ged(s, y, pairs="distinct", return_terms=True) == pytest.approx((-0.5, 0.75, 1.0, 1.0))
    # empty=nan: the E-E pairs are skipped. cross (1 + 1 + 1) / 3 = 1; within samples: A-A 0, A-E 1, E-A 1
    # -> 2/3; within graders: E2-E2 0, E-E2 1, E2-E 1 -> 2/3. GED^2 = 2 - 4/3 = 2/3.
    assert ged(s, y, empty=float("nan"), return_terms=True) == pytest.approx((2 / 3, 1.0, 2 / 3, 2 / 3))


def test_ged_all_empty() -> None:
    empty = np.zeros((3, 4, 4), int)
    assert ged(empty, empty[:2]) == 0.0  # every IoU is 1 under the LIDC convention
    assert math.isnan(ged(empty, empty[:2], empty=float("nan")))  # nothing defined to average
    # a model that always predicts nothing against graders that always see a lesion: d = 1 everywhere across
    full = np.ones((2, 4, 4), int)
    assert ged(empty, full, return_terms=True) == pytest.approx((2.0, 1.0, 0.0, 0.0))
    # empty=nan: the within-samples term has no defined pair, so GED^2 is NaN too
    value, sy, ss, yy = ged(empty, full, empty=float("nan"), return_terms=True)
    assert (sy, yy) == (1.0, 0.0) and math.isnan(ss) and math.isnan(value)


def test_ged_identical_sets_zero_and_symmetric() -> None:
    rng = np.random.default_rng(0)
    s = rng.integers(0, 3, size=(5, 9, 7))
    y = rng.integers(0, 3, size=(3, 9, 7))
    for classes in ((1,), (1, 2)):
        assert ged(s, s, classes=classes) == pytest.approx(0.0, abs=1e-12)
        assert ged(s, y, classes=classes) == pytest.approx(ged(y, s, classes=classes))
        assert ged(s, y, classes=classes, pairs="distinct") == pytest.approx(
            ged(y, s, classes=classes, pairs="distinct"))
        assert ged(s, y, classes=classes) > 0
    # order within a set does not matter
    assert ged(s[::-1], y[::-1]) == pytest.approx(ged(s, y))


def test_iou_multiclass_mean_and_empty() -> None:
    a = np.array([[1, 2], [0, 0]])
    b = np.array([[1, 1], [0, 2]])
    # class 1: {00} vs {00, 01} -> 1/2; class 2: {01} vs {11} -> 0; class 3 absent from both
    assert iou_matrix(a[None], b[None], classes=(1, 2))[0, 0] == pytest.approx(0.25)
    assert iou_matrix(a[None], b[None], classes=(1, 2, 3))[0, 0] == pytest.approx(0.5)
    assert iou_matrix(a[None], b[None], classes=(1, 2, 3), empty=float("nan"))[0, 0] == pytest.approx(0.25)
    assert iou_matrix(a[None], b[None], classes=2)[0, 0] == 0.0


def test_iou_matrix_matches_semantic_iou_pair_by_pair() -> None:
    rng = np.random.default_rng(1)
    s = rng.integers(0, 4, size=(4, 6, 5, 3))  # 3-D maps
    y = rng.integers(0, 4, size=(3, 6, 5, 3))
    s[0] = 0  # one sample with no foreground at all
    m = iou_matrix(s, y, classes=(1, 2, 3))
    assert m.shape == (4, 3)
    assert np.allclose(m, iou_matrix(y, s, classes=(1, 2, 3)).T)
    for i in range(4):
        for j in range(3):
            assert m[i, j] == pytest.approx(iou(s[i], y[j], num_classes=4))


def test_hungarian_hand_computed_duplication_2_vs_3() -> None:
    top, bottom, left = np.array([[1, 1], [0, 0]]), np.array([[0, 0], [1, 1]]), np.array([[1, 0], [1, 0]])
    s, y = np.stack([top, bottom]), np.stack([top, bottom, left])
    # IoU: top-top 1, top-bottom 0, top-left 1/3; bottom-top 0, bottom-bottom 1, bottom-left 1/3.
    # lcm(2, 3) = 6: each sample 3 times, each grader twice. Best: top -> top, top, left;
    # bottom -> bottom, bottom, left: (1 + 1 + 1/3 + 1 + 1 + 1/3) / 6 = 7/9.
    value, si, gi, matched = hungarian_matched_iou(s, y, return_matching=True)
    assert value == pytest.approx(7 / 9)
    assert len(si) == len(gi) == len(matched) == 6
    assert np.bincount(si).tolist() == [3, 3]
    assert np.bincount(gi).tolist() == [2, 2, 2]
    assert sorted(matched.tolist()) == pytest.approx([1 / 3, 1 / 3, 1, 1, 1, 1])
    assert hungarian_matched_iou(y, s) == pytest.approx(7 / 9)  # symmetric


def test_hungarian_empty_graders() -> None:
    s, y = np.stack([A, E]), np.stack([E, E2])
    # IoU rows (A, E), columns (E, E2): [[0, 0], [1, 0]] with empty=1 -> E-E and A-E2: (1 + 0) / 2
    assert hungarian_matched_iou(s, y) == pytest.approx(0.5)
    # empty=nan: E-E is matched but skipped; only A-E2 (IoU 0) counts
    value, si, gi, _ = hungarian_matched_iou(s, y, empty=float("nan"), return_matching=True)
    assert value == 0.0
    assert sorted(zip(si.tolist(), gi.tolist())) == [(0, 1), (1, 0)]
    empty = np.zeros((2, 3, 3), int)
    assert hungarian_matched_iou(empty, empty[:1]) == 1.0
    assert math.isnan(hungarian_matched_iou(empty, empty[:1], empty=float("nan")))


def test_hungarian_identical_sets_and_16_vs_4() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, size=(4, 16, 16))
    assert hungarian_matched_iou(y, y) == pytest.approx(1.0)
    s = np.concatenate([y] * 4)  # 16 samples, each grader 4 times: lcm 16, still perfect
    assert hungarian_matched_iou(s, y) == pytest.approx(1.0)
    assert ged(s, y) == pytest.approx(0.0, abs=1e-12)


def test_iou_rec_hand_computed() -> None:
    rec = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    target = np.array([[0, 1, 1], [0, 1, 1], [0, 0, 0]])
    # intersection {01, 11} = 2, union 6 -> 1/3
    assert iou_rec(rec, target) == pytest.approx(1 / 3)
    zero = np.zeros((3, 3), int)
    assert iou_rec(zero, zero) == 1.0
    assert math.isnan(iou_rec(zero, zero, empty=float("nan")))
    assert iou_rec(zero, target) == 0.0  # a wrongly predicted absence counts 0 in both conventions
    assert iou_rec(zero, target, empty=float("nan")) == 0.0
    # batch: per-image IoU, then the mean over images (NaN skipped)
    assert iou_rec(np.stack([rec, zero]), np.stack([target, zero]), batch=True) == pytest.approx(2 / 3)
    assert iou_rec(np.stack([rec, zero]), np.stack([target, zero]), batch=True,
                   empty=float("nan")) == pytest.approx(1 / 3)


def test_timing_16_samples_4_graders_128() -> None:
    rng = np.random.default_rng(3)
    s = rng.integers(0, 2, size=(16, 128, 128))
    y = rng.integers(0, 2, size=(4, 128, 128))
    ged(s, y)  # warm-up (imports)
    hungarian_matched_iou(s, y)
    t0 = time.perf_counter()
    ged(s, y)
    hungarian_matched_iou(s, y)
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("call, match", [
    (lambda: ged(np.zeros((2, 3, 3)), np.zeros((2, 3, 3), int)), "samples must be integer class maps"),
    (lambda: ged(np.zeros((2, 3, 3), int), np.zeros((2, 3, 4), int)), "spatial shape"),
    (lambda: ged(np.zeros(3, int), np.zeros((2, 3), int)), "at least one spatial axis"),
    (lambda: ged(np.zeros((0, 3, 3), int), np.zeros((2, 3, 3), int)), "empty set"),
    (lambda: ged(np.zeros((2, 3, 3), int), np.zeros((2, 3, 3), int), classes=()), "classes"),
    (lambda: ged(np.zeros((2, 3, 3), int), np.zeros((2, 3, 3), int), classes=(1, 1)), "repeat"),
    (lambda: ged(np.zeros((2, 3, 3), int), np.zeros((2, 3, 3), int), classes=(1.5,)), "classes"),
    (lambda: ged(np.zeros((2, 3, 3), int), np.zeros((2, 3, 3), int), empty=2.0), "empty"),
    (lambda: ged(np.zeros((2, 3, 3), int), np.zeros((2, 3, 3), int), pairs="some"), "pairs"),
    (lambda: ged(np.zeros((2, 3, 3), int), np.zeros((1, 3, 3), int), pairs="distinct"), "at least 2"),
    (lambda: hungarian_matched_iou(np.zeros((2, 3, 3), int), np.zeros((2, 3), int)), "spatial shape"),
    (lambda: iou_rec(np.zeros((3, 3), int), np.zeros((3, 4), int)), "differs"),
    (lambda: iou_rec(np.zeros((3, 3), bool), np.zeros((3, 3), float)), "target must be integer"),
])
def test_bad_input(call, match) -> None:
    with pytest.raises(InputError, match=match) as info:
        call()
    assert "\n" not in str(info.value)

"""IoU / Dice / confusion matrix on hand-computed examples and their algebraic properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from unetkit.errors import InputError
from unetkit.metrics import ConfusionMatrix, confusion_matrix, dice, iou

# Hand example, 3 classes. Pixels (gt, pred): (0,0) (1,1) (2,1) / (2,2) (2,2) (1,0).
PRED = np.array([[0, 1, 1], [2, 2, 0]])
GT = np.array([[0, 1, 2], [2, 2, 1]])
CM = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 2]])
# class 0: tp 1 fp 1 fn 0; class 1: tp 1 fp 1 fn 1; class 2: tp 2 fp 0 fn 1
IOU = np.array([1 / 2, 1 / 3, 2 / 3])
DICE = np.array([2 / 3, 2 / 4, 4 / 5])


def test_confusion_matrix_hand_example() -> None:
    cm = confusion_matrix(PRED, GT, 3)
    np.testing.assert_array_equal(cm, CM)
    assert cm.sum() == PRED.size
    # rows are ground truth: swapping the arguments transposes it
    np.testing.assert_array_equal(confusion_matrix(GT, PRED, 3), CM.T)


def test_per_class_scores() -> None:
    np.testing.assert_allclose(iou(PRED, GT, per_class=True), IOU)
    np.testing.assert_allclose(dice(PRED, GT, per_class=True), DICE)


def test_mean_foreground_and_with_background() -> None:
    assert iou(PRED, GT) == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert dice(PRED, GT) == pytest.approx((0.5 + 0.8) / 2)
    assert iou(PRED, GT, include_background=True) == pytest.approx(IOU.mean())
    assert dice(PRED, GT, include_background=True) == pytest.approx(DICE.mean())


def test_ignore_index_skips_ground_truth_pixels() -> None:
    gt = GT.copy()
    gt[0, 2] = 255  # drops the (gt 2, pred 1) pixel
    cm = confusion_matrix(PRED, gt, 3, ignore_index=255)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [1, 1, 0], [0, 0, 2]])
    # num_classes is inferred without the ignore value
    np.testing.assert_allclose(iou(PRED, gt, ignore_index=255, per_class=True), [1 / 2, 1 / 2, 1.0])
    np.testing.assert_allclose(dice(PRED, gt, ignore_index=255, per_class=True), [2 / 3, 2 / 3, 1.0])
    # without ignore_index the 255 is an out-of-range class
    with pytest.raises(InputError, match="ground truth"):
        iou(PRED, gt, num_classes=3)


def test_ignore_index_negative_value() -> None:
    gt = GT.copy()
    gt[1, 2] = -1  # drops the (gt 1, pred 0) pixel
    np.testing.assert_allclose(iou(PRED, gt, ignore_index=-1, per_class=True), [1.0, 1 / 2, 2 / 3])


def test_empty_class_convention() -> None:
    # class 3 absent from both prediction and ground truth
    per = iou(PRED, GT, num_classes=4, per_class=True)
    np.testing.assert_allclose(per, [*IOU, 1.0])
    assert iou(PRED, GT, num_classes=4) == pytest.approx((1 / 3 + 2 / 3 + 1.0) / 3)
    per_nan = dice(PRED, GT, num_classes=4, per_class=True, empty=float("nan"))
    np.testing.assert_allclose(per_nan[:3], DICE)
    assert math.isnan(per_nan[3])
    # nan classes are skipped by the mean
    assert dice(PRED, GT, num_classes=4, empty=float("nan")) == pytest.approx((0.5 + 0.8) / 2)


def test_empty_binary_images() -> None:
    z = np.zeros((4, 4), dtype=np.uint8)
    assert iou(z, z) == 1.0
    assert dice(z, z) == 1.0
    assert math.isnan(iou(z, z, empty=float("nan")))
    # background is perfect, foreground undefined -> the mean with background is 1
    assert iou(z, z, empty=float("nan"), include_background=True) == 1.0
    # predicting foreground where there is none: IoU 0, not "empty"
    p = z.copy()
    p[0, 0] = 1
    assert iou(p, z) == 0.0
    assert dice(p, z) == 0.0


def test_binary_hand_example() -> None:
    gt = np.array([[1, 1, 0, 0], [1, 1, 0, 0]])
    pred = np.array([[1, 1, 1, 0], [0, 0, 0, 0]])
    # tp 2, fp 1, fn 2
    assert iou(pred, gt) == pytest.approx(2 / 5)
    assert dice(pred, gt) == pytest.approx(4 / 7)
    # works on bool and on any number of axes
    assert iou(pred.astype(bool), gt.astype(bool)) == pytest.approx(2 / 5)
    assert iou(pred[None, None], gt[None, None]) == pytest.approx(2 / 5)


def test_shape_mismatch() -> None:
    with pytest.raises(InputError, match=r"\(2, 3\).*\(3, 2\)"):
        iou(PRED, GT.T)
    with pytest.raises(InputError, match="shape"):
        confusion_matrix(PRED, GT[:, :2], 3)


def test_out_of_range_classes() -> None:
    with pytest.raises(InputError, match=r"prediction.*\[0, 2\].*0\.\.1"):
        confusion_matrix(PRED, np.zeros_like(GT), 2)
    with pytest.raises(InputError, match="ground truth"):
        confusion_matrix(np.zeros_like(GT), GT - 1, 3)
    with pytest.raises(InputError):
        dice(PRED, GT, num_classes=2)


def test_confusion_matrix_class_accumulates() -> None:
    acc = ConfusionMatrix(3)
    acc.update(PRED, GT)
    np.testing.assert_array_equal(acc.matrix, CM)
    np.testing.assert_allclose(acc.iou(per_class=True), IOU)
    np.testing.assert_allclose(acc.dice(per_class=True), DICE)
    assert acc.compute() == pytest.approx({"iou": 0.5, "dice": 0.65})
    acc.update(PRED, GT)
    np.testing.assert_array_equal(acc.matrix, 2 * CM)
    np.testing.assert_allclose(acc.iou(per_class=True), IOU)  # scale-free
    with_bg = ConfusionMatrix(3, include_background=True)
    with_bg.update(PRED, GT)
    assert with_bg.compute()["dice"] == pytest.approx(DICE.mean())


def test_confusion_matrix_class_empty_and_ignore() -> None:
    acc = ConfusionMatrix(3, ignore_index=-1, empty=float("nan"))
    acc.update(np.zeros((2, 2), int), np.array([[0, -1], [-1, 0]]))
    assert acc.matrix.sum() == 2
    assert math.isnan(acc.compute()["iou"])  # no foreground anywhere
    assert acc.iou(per_class=True)[0] == 1.0
    with pytest.raises(InputError):
        acc.update(np.full((2, 2), 3), np.zeros((2, 2), int))


# ----------------------------------------------------------------------------- properties

binary_pairs = st.integers(1, 12).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.int64, (n,), elements=st.integers(0, 1)),
        hnp.arrays(np.int64, (n,), elements=st.integers(0, 1)),
    )
)


@settings(max_examples=60, deadline=None)
@given(binary_pairs)
def test_dice_is_monotone_function_of_iou(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = pair
    j = iou(pred, gt, num_classes=2, per_class=True)
    d = dice(pred, gt, num_classes=2, per_class=True)
    np.testing.assert_allclose(d, 2 * j / (1 + j), atol=1e-12)
    # symmetric in its arguments, bounded, and 1 exactly when the maps agree
    np.testing.assert_allclose(iou(gt, pred, num_classes=2, per_class=True), j)
    assert np.all((0 <= j) & (j <= 1))
    assert (iou(pred, gt, include_background=True) == 1.0) == bool(np.array_equal(pred, gt))


@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(2, 5),
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=5),
    width=st.integers(1, 5),
    seed=st.integers(0, 10_000),
)
def test_accumulated_equals_concatenated(k: int, sizes: list[int], width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    preds = [rng.integers(0, k, (n, width)) for n in sizes]
    gts = [rng.integers(-1, k, (n, width)) for n in sizes]  # -1 = ignored
    acc = ConfusionMatrix(k, ignore_index=-1)
    for p, g in zip(preds, gts):
        acc.update(p, g)
    p_all, g_all = np.concatenate(preds), np.concatenate(gts)
    np.testing.assert_array_equal(acc.matrix, confusion_matrix(p_all, g_all, k, ignore_index=-1))
    assert acc.matrix.sum() == int((g_all != -1).sum())
    np.testing.assert_allclose(acc.iou(per_class=True), iou(p_all, g_all, num_classes=k, ignore_index=-1, per_class=True))
    np.testing.assert_allclose(acc.dice(per_class=True), dice(p_all, g_all, num_classes=k, ignore_index=-1, per_class=True))
    assert acc.compute()["iou"] == pytest.approx(iou(p_all, g_all, num_classes=k, ignore_index=-1))

"""Instance metrics: adapted Rand error by hand and against scikit-image; DiC."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import adapted_rand_error as sk_adapted_rand_error

from unetkit.errors import InputError
from unetkit.metrics.instance import adapted_rand_error, count_objects, dic


def test_hand_computed() -> None:
    # gt objects: A = {0, 1, 2}, B = {3, 4}; pixel 5 is background (left out).
    # pred: {0, 1} -> 1, {2, 3, 4} -> 2, pixel 5 -> 2.
    gt = np.array([1, 1, 1, 2, 2, 0])
    pred = np.array([1, 1, 2, 2, 2, 2])
    # contingency over gt foreground: (A,1) = 2, (A,2) = 1, (B,2) = 2
    # TP = C(2,2) + C(1,2) + C(2,2) = 2; gt pairs = C(3,2) + C(2,2) = 4;
    # pred pairs = C(2,2) + C(3,2) = 4 -> precision 1/2, recall 1/2, F = 1/2.
    err, prec, rec = adapted_rand_error(pred, gt, return_prec_rec=True)
    assert (err, prec, rec) == pytest.approx((0.5, 0.5, 0.5))


def test_hand_computed_asymmetric() -> None:
    # one gt object of 4 pixels split into 2 + 2: TP = 2, gt pairs = 6, pred pairs = 2
    gt = np.array([[5, 5], [5, 5]])
    pred = np.array([[1, 1], [2, 2]])
    err, prec, rec = adapted_rand_error(pred, gt, return_prec_rec=True)
    assert prec == pytest.approx(1.0) and rec == pytest.approx(2 / 6)
    assert err == pytest.approx(1 - 2 * 2 / (2 + 6))


def test_perfect_and_relabelled() -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 6, (20, 20))
    perm = np.array([0, 17, 3, 99, 42, 8])
    assert adapted_rand_error(perm[gt], gt) == 0.0
    # the background of the prediction does not matter where the gt is background
    pred = gt.copy()
    pred[gt == 0] = rng.integers(0, 50, int((gt == 0).sum()))
    assert adapted_rand_error(pred, gt) == 0.0


def test_all_merged() -> None:
    gt = np.array([1, 1, 2, 2])
    err, prec, rec = adapted_rand_error(np.ones(4, int), gt, return_prec_rec=True)
    # TP = 2, gt pairs = 2, pred pairs = 6
    assert (prec, rec) == pytest.approx((2 / 6, 1.0)) and err == pytest.approx(1 - 4 / 8)


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_scikit_image(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 8, (30, 25))
    pred = rng.integers(0, 5, (30, 25))
    ours = adapted_rand_error(pred, gt)
    theirs = sk_adapted_rand_error(gt, pred)[0]
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_empty_conventions() -> None:
    assert math.isnan(adapted_rand_error(np.ones((3, 3), int), np.zeros((3, 3), int)))
    assert adapted_rand_error(np.ones((3, 3), int), np.zeros((3, 3), int), empty=0.0) == 0.0
    # singletons everywhere: no pairs, the segmentations agree
    assert adapted_rand_error(np.array([1, 2, 3]), np.array([4, 5, 6])) == 0.0
    # negative gt values are unlabelled
    assert adapted_rand_error(np.array([1, 2, 1]), np.array([1, -1, 1])) == 0.0


def test_dic() -> None:
    gt = np.array([[0, 1, 1], [2, 0, 3]])
    pred = np.array([[0, 7, 7], [7, 0, 0]])
    assert dic(pred, gt) == 1 - 3
    assert dic(gt, pred) == 2
    assert count_objects(gt) == 3 and count_objects(np.zeros(3, int)) == 0


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match=r"\(2,\).*\(3,\)"):
        adapted_rand_error(np.zeros(2, int), np.zeros(3, int))
    with pytest.raises(InputError, match="integer"):
        adapted_rand_error(np.zeros(2), np.zeros(2, int))
    with pytest.raises(InputError, match="shape"):
        dic(np.zeros((2, 2), int), np.zeros(4, int))

"""SPOCO@p sparse labels: how many objects are kept, that the choice is seeded and
order-independent, that dropped objects and background become unlabelled."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.data.sparse import (
    BACKGROUND_ID,
    check_background,
    keep_fraction_of_objects,
    object_rng,
    objects_to_keep,
    with_background,
)
from unetkit.data.synthetic import blobs
from unetkit.errors import InputError


@pytest.mark.parametrize(("n", "p", "k"), [(10, 0.1, 1), (10, 0.4, 4), (10, 1.0, 10), (3, 0.1, 1), (5, 0.5, 3),
                                           (1, 0.01, 1), (0, 0.5, 0), (20, 0.25, 5), (7, 0.5, 4)])
def test_objects_to_keep(n: int, p: float, k: int) -> None:
    assert objects_to_keep(n, p) == k


@pytest.mark.parametrize("p", [0, -0.1, 1.5, float("nan")])
def test_bad_fraction_is_refused(p: float) -> None:
    with pytest.raises(InputError, match="fraction p must be in"):
        objects_to_keep(5, p)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.05, 1.0), st.integers(1, 12))
def test_kept_objects_are_whole_and_counted(seed: int, p: float, n: int) -> None:
    rng = np.random.default_rng(seed)
    labels = np.zeros((20, 30), np.int32)
    ids = rng.choice(np.arange(1, 1000), size=n, replace=False)
    cells = rng.choice(20 * 29, size=n, replace=False)
    labels[:, :29].flat[cells] = ids
    labels[:, 29] = ids[0]  # one object of many pixels
    out = keep_fraction_of_objects(labels, p, np.random.default_rng(seed))
    kept = set(np.unique(out[out > 0]).tolist())
    assert len(kept) == objects_to_keep(n, p) and kept <= set(ids.tolist())
    for i in kept:  # a kept object keeps every pixel; a dropped one none
        assert np.array_equal(out == i, labels == i)
    assert out.dtype == labels.dtype and not out[labels == 0].any()


def test_choice_is_seeded_and_independent_of_order() -> None:
    a = blobs((64, 64), seed=1)[1]
    b = blobs((64, 64), seed=2)[1]
    first = [keep_fraction_of_objects(x, 0.3, object_rng(x, seed=5)) for x in (a, b)]
    second = [keep_fraction_of_objects(x, 0.3, object_rng(x, seed=5)) for x in (b, a)][::-1]
    assert all(np.array_equal(u, v) for u, v in zip(first, second))
    other = keep_fraction_of_objects(a, 0.3, object_rng(a, seed=6))
    assert not np.array_equal(first[0], other)


def test_background_mask_becomes_one_object() -> None:
    labels = np.array([[0, 3, 3], [0, 0, 7], [0, 0, 0]])
    bg = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0]], bool)
    out, bg_id = with_background(labels, bg)
    assert bg_id == 8 and out[0, 0] == out[1, 0] == 8 and out[2, 2] == 0 and out[0, 1] == 3
    with pytest.raises(InputError, match="covers 1 pixel"):
        with_background(labels, bg | (labels == 7))
    with pytest.raises(InputError, match="does not match"):
        with_background(labels, bg[:2])
    with pytest.raises(InputError, match="integer"):
        keep_fraction_of_objects(labels.astype(float), 0.5, np.random.default_rng(0))


def test_background_gets_the_reserved_id_objects_keep_theirs() -> None:
    labels = np.array([[0, 3, 3, 0], [0, 0, 7, 0], [0, 0, 0, 0]], np.uint16)
    bg = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]], np.uint8) * 255  # nonzero = background
    kept = labels.copy(), bg.copy()
    out, bg_id = with_background(labels, bg, background_id=BACKGROUND_ID)
    B = BACKGROUND_ID
    assert bg_id == B and out.dtype == np.int64
    assert out.tolist() == [[B, 3, 3, 0], [B, B, 7, 0], [0, 0, 0, 0]]
    assert np.array_equal(labels, kept[0]) and np.array_equal(bg, kept[1])  # inputs untouched
    # no mask pixels: the labels come back unchanged (no background)
    assert np.array_equal(with_background(labels, np.zeros_like(bg), background_id=B)[0], labels)
    with pytest.raises(InputError, match=r"object id 7 is not below the background id 7"):
        with_background(labels, bg, background_id=7)


def test_check_background_names_the_mask() -> None:
    labels = np.array([[0, 2], [0, 0]])
    assert check_background(labels, np.array([[5, 0], [0, 1]])).tolist() == [[True, False], [False, True]]
    with pytest.raises(InputError, match=r"^'m\.tif': background mask of shape \(1, 2\) does not match labels of "
                                         r"shape \(2, 2\); give a mask of the label image's shape"):
        check_background(labels, np.zeros((1, 2)), name="'m.tif'")
    with pytest.raises(InputError, match=r"^'m\.tif': the background mask covers 1 pixel\(s\) of labelled objects"):
        check_background(labels, np.ones((2, 2), bool), name="'m.tif'")

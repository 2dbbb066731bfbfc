"""Rescaling images (linear, antialiased), labels (nearest) and logits back to a shape."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.data.rescale import (
    DEFAULT_SCALE_FACTORS,
    check_factors,
    rescale_image,
    rescale_labels,
    resize_to,
    scaled_shape,
)
from unetkit.errors import InputError


def test_default_factors() -> None:
    assert len(DEFAULT_SCALE_FACTORS) == 17
    assert DEFAULT_SCALE_FACTORS[0] == pytest.approx(0.25) and DEFAULT_SCALE_FACTORS[-1] == pytest.approx(4.0)
    assert DEFAULT_SCALE_FACTORS[8] == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 40), st.integers(2, 40), st.floats(0.25, 4.0), st.booleans())
def test_shapes_2d(h: int, w: int, f: float, channels: bool) -> None:
    rng = np.random.default_rng(0)
    image = rng.random((2, h, w) if channels else (h, w)).astype(np.float32)
    try:
        shape = scaled_shape((h, w), f)
    except InputError:
        return
    out = rescale_image(image, f)
    assert out.shape == ((2,) if channels else ()) + shape and out.dtype == np.float32
    lab = rng.integers(0, 3, (h, w)).astype(np.int16)
    out_lab = rescale_labels(lab, f)
    assert out_lab.shape == shape and out_lab.dtype == np.int16
    assert set(np.unique(out_lab)) <= set(np.unique(lab))


def test_identity_and_round_trip() -> None:
    rng = np.random.default_rng(1)
    image = rng.random((3, 12, 10)).astype(np.float32)
    np.testing.assert_array_equal(rescale_image(image, 1.0), image)
    lab = rng.integers(0, 4, (6, 12, 10))
    np.testing.assert_array_equal(rescale_labels(lab, 1.0), lab)
    # nearest x2 then back to the shape gives the labels back exactly
    np.testing.assert_array_equal(resize_to(rescale_labels(lab, 2.0), lab.shape), lab)
    assert resize_to(image, (24, 20)).shape == (3, 24, 20)


def test_constant_and_antialiasing() -> None:
    const = np.full((16, 16), 3.0, np.float32)
    for f in (0.25, 0.5, 2.0, 3.0):
        np.testing.assert_allclose(rescale_image(const, f), 3.0, rtol=1e-5)
        np.testing.assert_allclose(rescale_image(np.full((8, 8, 8), 3.0, np.float32), f, ndim=3), 3.0, rtol=1e-5)
    # a checkerboard (Nyquist) shrunk 4x: antialiased, it becomes grey, not aliased stripes
    checker = (np.indices((32, 32)).sum(0) % 2).astype(np.float32)
    small = rescale_image(checker, 0.25)
    assert small.shape == (8, 8) and np.abs(small - 0.5).max() < 0.1
    checker3 = (np.indices((16, 16, 16)).sum(0) % 2).astype(np.float32)
    small3 = rescale_image(checker3, 0.25, ndim=3)
    assert small3.shape == (4, 4, 4) and np.abs(small3 - 0.5).max() < 0.15


def test_errors() -> None:
    img = np.zeros((8, 8), np.float32)
    for bad in (0, -1.0, float("nan"), float("inf"), True, "2"):
        with pytest.raises(InputError, match="scale factor"):
            rescale_image(img, bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="below 1 pixel"):
        rescale_image(img, 0.01)
    with pytest.raises(InputError, match="below 1 pixel"):
        rescale_labels(np.zeros((8, 8), np.int64), 0.01)
    with pytest.raises(InputError, match="integer"):
        rescale_labels(img, 2.0)
    with pytest.raises(InputError, match="spatial axes"):
        rescale_image(np.zeros((2, 2, 8, 8)), 2.0)
    for bad in ([], [1.0, 1.0], [0.5, 0], "0.5"):
        with pytest.raises(InputError, match="scale factors|scale factor"):
            check_factors(bad)  # type: ignore[arg-type]
    assert check_factors([0.5, 1, 2]) == (0.5, 1.0, 2.0)

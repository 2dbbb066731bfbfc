"""Windows that leave the array: mirrored like np.pad 'reflect', or constant-filled; lazy sources."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.data.windows import read_window

# ----------------------------------------------------------------------------- read_window


def test_window_inside_is_a_copy_of_the_slice() -> None:
    a = np.arange(5 * 6 * 7).reshape(5, 6, 7)
    w = read_window(a, (1, 2), (3, 4), fill=None)
    np.testing.assert_array_equal(w, a[:, 1:4, 2:6])
    w[...] = -5
    assert a.min() >= 0  # not a view
    np.testing.assert_array_equal(read_window(a, (1, 2), (3, 4), fill=0), a[:, 1:4, 2:6])


def test_window_partially_outside_mirror_and_fill() -> None:
    a = np.arange(4 * 5, dtype=np.float32).reshape(4, 5)
    w = read_window(a, (-2, 3), (5, 4), fill=None)
    np.testing.assert_array_equal(w[2:, :2], a[0:3, 3:5])  # inside part is the source
    # mirrored without repeating the edge: rows -2, -1 -> 2, 1; columns 5, 6 -> 3, 2
    np.testing.assert_array_equal(w[:, 2:], a[[2, 1, 0, 1, 2]][:, [3, 2]])
    np.testing.assert_array_equal(w[:2, 0], a[[2, 1], 3])
    f = read_window(a, (-2, 3), (5, 4), fill=-1)
    np.testing.assert_array_equal(f[2:, :2], a[0:3, 3:5])
    assert (f[:2] == -1).all() and (f[:, 2:] == -1).all()
    assert f.dtype == a.dtype


@pytest.mark.parametrize("start", [(-9, 0), (10, 2), (1, -30), (12, 12)])
def test_window_fully_outside(start: tuple[int, int]) -> None:
    a = np.arange(4 * 5).reshape(4, 5)
    f = read_window(a, start, (3, 3), fill=-1)
    assert f.shape == (3, 3)
    assert (f == -1).all()
    m = read_window(a, start, (3, 3), fill=None)
    padded = np.pad(a, 40, mode="reflect")
    np.testing.assert_array_equal(m, padded[start[0] + 40 : start[0] + 43, start[1] + 40 : start[1] + 43])


@settings(max_examples=60, deadline=None)
@given(
    size=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    start=st.tuples(st.integers(-15, 15), st.integers(-15, 15)),
    shape=st.tuples(st.integers(1, 9), st.integers(1, 9)),
)
def test_window_matches_padded_array(size: tuple[int, int], start: tuple[int, int], shape: tuple[int, int]) -> None:
    """Mirror windows are windows of ``np.pad(mode='reflect')``; constant windows of a constant pad."""
    a = np.random.default_rng(0).integers(0, 100, (2, *size))
    pad = 30
    reflected = np.pad(a, [(0, 0), (pad, pad), (pad, pad)], mode="reflect")
    constant = np.pad(a, [(0, 0), (pad, pad), (pad, pad)], constant_values=-7)
    sl = (slice(None), *(slice(s + pad, s + pad + n) for s, n in zip(start, shape)))
    np.testing.assert_array_equal(read_window(a, start, shape, fill=None), reflected[sl])
    np.testing.assert_array_equal(read_window(a, start, shape, fill=-7), constant[sl])


class CountingArray:
    """A lazy-array stand-in that records the boxes it is asked for."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.reads: list[tuple[slice, ...]] = []

    def __getitem__(self, key: tuple) -> np.ndarray:
        self.reads.append(key)
        return self.data[key]


def test_lazy_source_reads_only_the_bounding_box() -> None:
    data = np.arange(2 * 50 * 60, dtype=np.float32).reshape(2, 50, 60)
    lazy = CountingArray(data)
    w = read_window(lazy, (-3, 55), (10, 10))
    np.testing.assert_array_equal(w, np.pad(data, [(0, 0), (10, 10), (10, 10)], mode="reflect")[:, 7:17, 65:75])
    (key,) = lazy.reads
    boxes = key[1:]
    assert [(b.start, b.stop) for b in boxes] == [(0, 7), (54, 60)]  # 55..59 then mirrored 58..54

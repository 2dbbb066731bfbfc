"""Tests of unetkit.data.normalize."""

from __future__ import annotations

import numpy as np
import pytest

from unetkit.data.normalize import normalize, normalize_meanstd, normalize_percentile
from unetkit.errors import InputError


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).normal(100.0, 20.0, size=(2, 32, 48)).astype(np.float32)


def test_percentile_maps_percentiles_to_0_and_1(image: np.ndarray) -> None:
    out = normalize_percentile(image, low=1.0, high=99.0)
    assert out.dtype == np.float32 and out.shape == image.shape
    lo, hi = np.percentile(out, [1.0, 99.0])
    assert lo == pytest.approx(0.0, abs=1e-5)
    assert hi == pytest.approx(1.0, abs=1e-5)
    assert out.min() < 0 and out.max() > 1  # not clipped


def test_percentile_formula_whole_image(image: np.ndarray) -> None:
    p1, p2 = np.percentile(image.astype(np.float64), [2.0, 98.0])
    expected = (image - p1) / (p2 - p1)
    np.testing.assert_allclose(normalize_percentile(image, low=2, high=98), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("norm", [normalize_percentile, normalize_meanstd])
def test_per_channel_statistics(norm, image: np.ndarray) -> None:
    image = image.copy()
    image[1] = image[1] * 10 + 5000  # a very different second channel
    out = norm(image, channel_axis=0)
    for c in range(2):
        np.testing.assert_allclose(out[c], norm(image[c]), rtol=1e-5, atol=1e-5)
    # channel_axis as last axis gives the same as moving it
    moved = norm(np.moveaxis(image, 0, -1), channel_axis=-1)
    np.testing.assert_allclose(np.moveaxis(moved, -1, 0), out, rtol=1e-5, atol=1e-5)
    # whole-image statistics differ
    assert not np.allclose(norm(image), out)


def test_meanstd_computed_and_given(image: np.ndarray) -> None:
    out = normalize_meanstd(image)
    assert out.dtype == np.float32
    assert out.mean() == pytest.approx(0.0, abs=1e-4)
    assert out.std() == pytest.approx(1.0, abs=1e-4)
    fixed = normalize_meanstd(image, mean=100.0, std=20.0)
    np.testing.assert_allclose(fixed, (image - 100.0) / 20.0, rtol=1e-5, atol=1e-5)
    per_ch = normalize_meanstd(image, mean=[100.0, 50.0], std=[20.0, 10.0], channel_axis=0)
    np.testing.assert_allclose(per_ch[1], (image[1] - 50.0) / 10.0, rtol=1e-5, atol=1e-5)
    only_mean = normalize_meanstd(image, mean=0.0)
    np.testing.assert_allclose(only_mean, image / image.std(), rtol=1e-4)


@pytest.mark.parametrize("mode", ["percentile", "meanstd", "none"])
@pytest.mark.parametrize("value", [0.0, 7.5, -3.0, 1e6])
def test_constant_image_is_finite(mode: str, value: float) -> None:
    img = np.full((3, 8, 9), value, dtype=np.float32)
    out = normalize(img, mode)
    assert np.isfinite(out).all()
    if mode != "none":
        np.testing.assert_array_equal(out, 0.0)
    out_ch = normalize(img, mode, channel_axis=0)
    assert np.isfinite(out_ch).all()


def test_constant_channel_among_others() -> None:
    img = np.stack([np.zeros((8, 8)), np.arange(64.0).reshape(8, 8)]).astype(np.float32)
    for mode in ("percentile", "meanstd"):
        out = normalize(img, mode, channel_axis=0)
        assert np.isfinite(out).all()
        np.testing.assert_array_equal(out[0], 0.0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float64, bool])
def test_dtypes_give_float32(dtype) -> None:
    img = (np.arange(100).reshape(10, 10) % 7).astype(dtype)
    for mode in ("percentile", "meanstd", "none"):
        out = normalize(img, mode)
        assert out.dtype == np.float32 and out.shape == img.shape


def test_wide_dtype_keeps_precision() -> None:
    img = (np.arange(100, dtype=np.float64).reshape(10, 10) * 1e-3 + 1e8)
    out = normalize_percentile(img, low=0, high=100)
    assert out.min() == pytest.approx(0.0, abs=1e-6) and out.max() == pytest.approx(1.0, abs=1e-6)
    assert len(np.unique(out)) == 100


def test_input_not_modified(image: np.ndarray) -> None:
    before = image.copy()
    for mode in ("percentile", "meanstd", "none"):
        out = normalize(image, mode)
        out += 1
    np.testing.assert_array_equal(image, before)


def test_dispatch_matches_functions(image: np.ndarray) -> None:
    np.testing.assert_array_equal(
        normalize(image, "percentile", low=3, high=97, channel_axis=0),
        normalize_percentile(image, low=3, high=97, channel_axis=0),
    )
    np.testing.assert_array_equal(normalize(image, "meanstd", mean=1, std=2), normalize_meanstd(image, mean=1, std=2))
    np.testing.assert_array_equal(normalize(image, "none"), image)


def test_bad_mode_lists_valid_modes(image: np.ndarray) -> None:
    with pytest.raises(InputError, match=r"'zscore'.*percentile, meanstd, none"):
        normalize(image, "zscore")  # type: ignore[arg-type]


@pytest.mark.parametrize(("low", "high"), [(50, 50), (90, 10), (-1, 50), (1, 101)])
def test_bad_percentiles(image: np.ndarray, low: float, high: float) -> None:
    with pytest.raises(InputError, match=r"low|high"):
        normalize_percentile(image, low=low, high=high)


def test_other_bad_arguments(image: np.ndarray) -> None:
    with pytest.raises(InputError, match="option"):
        normalize(image, "percentile", mean=1.0)
    with pytest.raises(InputError, match="option"):
        normalize(image, "none", low=1.0)
    with pytest.raises(InputError, match="channel_axis=3"):
        normalize_percentile(image, channel_axis=3)
    with pytest.raises(InputError, match="NaN"):
        normalize_percentile(np.array([[np.nan, 1.0]]))
    with pytest.raises(InputError, match="std"):
        normalize_meanstd(image, std=-1.0)
    with pytest.raises(InputError, match="mean"):
        normalize_meanstd(image, mean=[1.0, 2.0, 3.0], channel_axis=0)
    with pytest.raises(InputError, match="eps"):
        normalize_meanstd(image, eps=0.0)
    with pytest.raises(InputError, match="empty"):
        normalize_meanstd(np.zeros((0, 4)))
    assert issubclass(InputError, ValueError)


# ----------------------------------------------------------------------------- window-wise normalisers


@pytest.mark.parametrize(("mode", "kwargs"), [("percentile", {}), ("percentile", {"low": 5, "high": 95}),
                                              ("meanstd", {}), ("meanstd", {"mean": 3.0, "std": [1.0, 2.0]}),
                                              ("none", {})])
def test_make_normalizer_matches_normalize(mode: str, kwargs: dict) -> None:
    from unetkit.data.normalize import make_normalizer

    x = (np.random.default_rng(0).random((2, 40, 50)) * 100).astype(np.float32)
    f = make_normalizer(x, mode, channel_axis=0, **kwargs)  # type: ignore[arg-type]
    np.testing.assert_array_equal(f(x), normalize(x, mode, channel_axis=0, **kwargs))  # type: ignore[arg-type]
    # window by window gives the same numbers as the whole image
    np.testing.assert_array_equal(f(x[:, 5:17, 20:33]), normalize(x, mode, channel_axis=0, **kwargs)[:, 5:17, 20:33])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not valid for mode"):
        make_normalizer(x, mode, channel_axis=0, bogus=1)  # type: ignore[arg-type]


def test_strided_sample_is_bounded_and_exact_when_small() -> None:
    from unetkit.data.normalize import strided_sample

    big = np.arange(2 * 300 * 400, dtype=np.float32).reshape(2, 300, 400)
    s = strided_sample(big, 5000, channel_axis=0)
    assert s.shape[0] == 2 and s.size <= 5000
    k = next(k for k in range(1, 300) if big[:, ::k, ::k].size <= 5000)  # the smallest stride that fits
    np.testing.assert_array_equal(s, big[:, ::k, ::k])
    small = np.ones((3, 4), dtype=np.float32)
    assert strided_sample(small, 100, channel_axis=None) is not small
    np.testing.assert_array_equal(strided_sample(small, 100, channel_axis=None), small)

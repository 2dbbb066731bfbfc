"""Tests of unetkit.data.transforms."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from unetkit.data.transforms import (
    AUGMENTATION_KEYS,
    Compose,
    ElasticDeform,
    GaussianBlur,
    GaussianNoise,
    IntensityJitter,
    RandomFlip,
    RandomRot90,
    build_augmentation,
)
from unetkit.errors import InputError

ALL_SPEC = {
    "flip": True,
    "rot90": True,
    "elastic": {"alpha": 2, "sigma": 6, "p": 1.0},
    "intensity": {"gamma": [0.7, 1.5], "p": 1.0},
    "blur": {"p": 1.0},
    "noise": {"sigma": [0.01, 0.05], "p": 1.0},
}


def blocky_labels(shape: tuple[int, ...], seed: int, block: int = 4, n_ids: int = 6) -> np.ndarray:
    """Piecewise-constant labels: random ids 0..n_ids-1 on blocks of ``block`` pixels."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, n_ids, size=tuple(-(-s // block) for s in shape))
    lab = coarse
    for ax in range(len(shape)):
        lab = np.repeat(lab, block, axis=ax)
    return lab[tuple(slice(0, s) for s in shape)].astype(np.int32)


def image_from_labels(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Channel 0 = labels as float, channel 1 = noise (checks multi-channel handling)."""
    noise = np.random.default_rng(seed).random(labels.shape)
    return np.stack([labels.astype(np.float32), noise.astype(np.float32)])


def interior(labels: np.ndarray, size: int = 5) -> np.ndarray:
    """Pixels whose whole ``size``-neighbourhood lies in the image and has one label.

    Pixels near the image border are never interior: the label border next to them may lie
    just outside the output.
    """
    lo = ndi.minimum_filter(labels.astype(np.int64), size=size, mode="constant", cval=-1)
    return ndi.maximum_filter(labels, size=size) == lo


def geometric_transforms(ndim: int) -> list:
    return [
        RandomFlip(),
        RandomFlip(axes=(-1,), p=1.0),
        RandomRot90(),
        RandomRot90(axes=(0, 1)),
        Compose([RandomFlip(), RandomRot90()]),
    ]


shapes = st.one_of(
    st.tuples(st.integers(12, 40), st.integers(12, 40)),
    st.tuples(st.integers(6, 16), st.integers(6, 16), st.integers(6, 16)),
    st.integers(12, 32).map(lambda n: (n, n)),
    st.integers(6, 14).map(lambda n: (n, n, n)),
)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_flip_rot90_keep_alignment_exactly(shape: tuple[int, ...], seed: int) -> None:
    labels = blocky_labels(shape, seed % 1000, block=3)
    image = image_from_labels(labels)
    for t in geometric_transforms(len(shape)):
        img, lab = t(image, labels, np.random.default_rng(seed))
        assert img.shape == image.shape and lab.shape == labels.shape
        assert img.dtype == np.float32 and lab.dtype == labels.dtype
        np.testing.assert_array_equal(img[0], lab)
        assert np.array_equal(np.sort(img[1].ravel()), np.sort(image[1].ravel()))  # a permutation
        assert np.array_equal(np.unique(lab), np.unique(labels))


@settings(max_examples=30, deadline=None)
@given(
    shape=shapes,
    seed=st.integers(0, 2**32 - 1),
    alpha=st.floats(0.5, 2.0),
    sigma=st.floats(5.0, 8.0),
)
def test_elastic_keeps_alignment_away_from_borders(
    shape: tuple[int, ...], seed: int, alpha: float, sigma: float
) -> None:
    labels = blocky_labels(shape, seed % 1000, block=4)
    image = image_from_labels(labels)
    geometric_only = {"flip": True, "rot90": True, "elastic": {"alpha": alpha, "sigma": sigma, "p": 1.0}}
    for t in (ElasticDeform(alpha=alpha, sigma=sigma, p=1.0), build_augmentation(geometric_only, len(shape))):
        img, lab = t(image, labels, np.random.default_rng(seed))
        assert img.dtype == np.float32 and lab.dtype == labels.dtype
        assert np.isfinite(img).all()
        assert set(np.unique(lab)) <= set(np.unique(labels))
        inner = interior(lab)
        np.testing.assert_array_equal(np.rint(img[0])[inner], lab[inner])
        # linear interpolation stays within the input range
        assert img[0].min() >= labels.min() - 1e-4 and img[0].max() <= labels.max() + 1e-4


def _reflect(i: np.ndarray, n: int) -> np.ndarray:
    """scipy's mode='reflect' (half-sample symmetric) index extension."""
    i = np.mod(i, 2 * n)
    return np.where(i >= n, 2 * n - 1 - i, i)


@settings(max_examples=30, deadline=None)
@given(
    shape=shapes,
    seed=st.integers(0, 2**32 - 1),
    alpha=st.floats(0.5, 8.0),
    sigma=st.floats(2.0, 8.0),
)
def test_elastic_image_and_labels_use_the_same_coordinates(
    shape: tuple[int, ...], seed: int, alpha: float, sigma: float
) -> None:
    """Exact check, folds included: where the source cell around the sampling point has one
    label, the linearly interpolated image equals the nearest-neighbour label there."""
    labels = blocky_labels(shape, seed % 1000, block=3)
    image = image_from_labels(labels)
    t = ElasticDeform(alpha=alpha, sigma=sigma, p=1.0)
    img, lab = t(image, labels, np.random.default_rng(seed))
    coords = np.indices(shape) + t.displacement(shape, np.random.default_rng(seed))
    base = np.floor(coords).astype(np.int64)
    corner_labels = []
    for corner in np.ndindex(*(2,) * len(shape)):
        idx = tuple(_reflect(base[ax] + corner[ax], n) for ax, n in enumerate(shape))
        corner_labels.append(labels[idx])
    uniform = np.all(np.stack(corner_labels) == corner_labels[0], axis=0)
    assert uniform.mean() > 0.2
    np.testing.assert_array_equal(lab[uniform], corner_labels[0][uniform])
    np.testing.assert_allclose(img[0][uniform], lab[uniform], atol=1e-4)


def test_elastic_moves_pixels_and_keeps_most_interior() -> None:
    labels = blocky_labels((64, 64), 1, block=8)
    image = image_from_labels(labels)
    img, lab = ElasticDeform(alpha=3, sigma=8, p=1.0)(image, labels, np.random.default_rng(3))
    assert not np.array_equal(lab, labels)
    assert interior(lab).mean() > 0.5 * interior(labels).mean()
    np.testing.assert_array_equal(np.rint(img[0])[interior(lab)], lab[interior(lab)])


def test_elastic_displacement_scale_in_pixels() -> None:
    t = ElasticDeform(alpha=3.0, sigma=(5.0, 9.0), p=1.0)
    field = t.displacement((256, 256), np.random.default_rng(0))
    assert field.shape == (2, 256, 256) and field.dtype == np.float32
    std = field.reshape(2, -1).std(axis=1)
    np.testing.assert_allclose(std, 3.0, rtol=0.25)


def test_elastic_zero_alpha_axis_means_no_displacement_there() -> None:
    shape = (6, 32, 32)
    labels = np.broadcast_to(np.arange(1, 7, dtype=np.int64)[:, None, None], shape).copy()
    image = labels[None].astype(np.float32)
    img, lab = ElasticDeform(alpha=(0, 4, 4), sigma=5, p=1.0)(image, labels, np.random.default_rng(0))
    np.testing.assert_array_equal(lab, labels)  # every z-slice keeps its own id
    np.testing.assert_allclose(img[0], labels, atol=1e-5)
    field = ElasticDeform(alpha=(0, 4, 4), sigma=5).displacement(shape, np.random.default_rng(0))
    assert not field[0].any() and field[1].any()


def test_elastic_all_zero_alpha_is_identity() -> None:
    labels = blocky_labels((20, 20), 0)
    image = image_from_labels(labels)
    img, lab = ElasticDeform(alpha=0, p=1.0)(image, labels, np.random.default_rng(0))
    np.testing.assert_array_equal(img, image)
    np.testing.assert_array_equal(lab, labels)


def test_rot90_nonsquare_keeps_shape_and_uses_only_0_or_180() -> None:
    labels = blocky_labels((10, 14), 2, block=2)
    image = image_from_labels(labels)
    seen = set()
    for seed in range(30):
        img, lab = RandomRot90()(image, labels, np.random.default_rng(seed))
        assert lab.shape == labels.shape
        if np.array_equal(lab, labels):
            seen.add(0)
        else:
            np.testing.assert_array_equal(lab, labels[::-1, ::-1])
            seen.add(2)
    assert seen == {0, 2}


def test_rot90_square_uses_all_rotations() -> None:
    labels = np.arange(16, dtype=np.int32).reshape(4, 4)
    image = labels[None].astype(np.float32)
    seen = set()
    for seed in range(40):
        _, lab = RandomRot90()(image, labels, np.random.default_rng(seed))
        seen.add(next(k for k in range(4) if np.array_equal(lab, np.rot90(labels, k))))
    assert seen == {0, 1, 2, 3}


def test_flip_p1_flips_every_axis_and_p0_nothing() -> None:
    labels = blocky_labels((5, 6, 7), 0, block=2)
    image = image_from_labels(labels)
    rng = np.random.default_rng(0)
    img, lab = RandomFlip(p=1.0)(image, labels, rng)
    np.testing.assert_array_equal(lab, labels[::-1, ::-1, ::-1])
    np.testing.assert_array_equal(img, image[:, ::-1, ::-1, ::-1])
    assert img.flags.c_contiguous and lab.flags.c_contiguous
    img, lab = RandomFlip(p=0.0)(image, labels, rng)
    np.testing.assert_array_equal(lab, labels)
    np.testing.assert_array_equal(img, image)


def all_transforms() -> list:
    return [
        RandomFlip(),
        RandomRot90(),
        ElasticDeform(alpha=2, sigma=5, p=1.0),
        GaussianNoise(p=1.0),
        GaussianBlur(p=1.0),
        IntensityJitter(gamma=(0.5, 2.0), per_channel=True, p=1.0),
        build_augmentation(ALL_SPEC, 2),
    ]


@pytest.mark.parametrize("t", all_transforms(), ids=lambda t: type(t).__name__)
def test_same_seed_same_output_and_inputs_untouched(t) -> None:
    labels = blocky_labels((24, 24), 5)
    image = image_from_labels(labels)
    img_copy, lab_copy = image.copy(), labels.copy()
    a = t(image, labels, np.random.default_rng(123))
    b = t(image, labels, np.random.default_rng(123))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(image, img_copy)
    np.testing.assert_array_equal(labels, lab_copy)
    assert a[0] is not image and a[1] is not labels


@pytest.mark.parametrize(
    "t",
    [ElasticDeform(p=1.0), GaussianNoise(p=1.0), GaussianBlur(p=1.0), IntensityJitter(p=1.0)],
    ids=lambda t: type(t).__name__,
)
def test_different_seeds_differ(t) -> None:
    labels = blocky_labels((32, 32), 5)
    image = image_from_labels(labels)
    a, _ = t(image, labels, np.random.default_rng(1))
    b, _ = t(image, labels, np.random.default_rng(2))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(
    "t",
    [
        GaussianNoise(p=1.0),
        GaussianBlur(p=1.0),
        IntensityJitter(gamma=(0.5, 2.0), p=1.0),
        Compose([IntensityJitter(p=1.0), GaussianBlur(p=1.0), GaussianNoise(p=1.0)]),
    ],
    ids=lambda t: type(t).__name__,
)
@pytest.mark.parametrize("shape", [(20, 24), (8, 12, 10)])
def test_intensity_transforms_leave_labels(t, shape: tuple[int, ...]) -> None:
    labels = blocky_labels(shape, 1).astype(np.uint16)
    image = image_from_labels(labels)
    img, lab = t(image, labels, np.random.default_rng(0))
    np.testing.assert_array_equal(lab, labels)
    assert lab.dtype == np.uint16 and img.dtype == np.float32 and img.shape == image.shape
    assert np.isfinite(img).all()
    assert t(image, None, np.random.default_rng(0))[1] is None


@pytest.mark.parametrize("t", all_transforms(), ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("label_dtype", [np.uint8, np.int64, bool])
def test_dtypes_3d_none_labels_no_nan(t, label_dtype) -> None:
    labels = blocky_labels((12, 16, 16), 3)
    labels = (labels % 2 if label_dtype is bool else labels).astype(label_dtype)
    image = image_from_labels(labels.astype(np.int32)).astype(np.float64)  # float64 in, float32 out
    if isinstance(t, Compose):
        t = build_augmentation(ALL_SPEC, 3)
    img, lab = t(image, labels, np.random.default_rng(7))
    assert img.dtype == np.float32 and lab.dtype == labels.dtype
    assert img.shape == image.shape and lab.shape == labels.shape
    assert np.isfinite(img).all()
    img2, lab2 = t(image, None, np.random.default_rng(7))
    assert lab2 is None and img2.shape == image.shape
    np.testing.assert_array_equal(img2, img)  # labels do not change the random draws


def test_constant_image_no_nan() -> None:
    image = np.full((2, 16, 16), 3.0, dtype=np.float32)
    img, _ = build_augmentation(ALL_SPEC, 2)(image, None, np.random.default_rng(0))
    assert np.isfinite(img).all()


def test_blur_does_not_mix_channels() -> None:
    image = np.zeros((2, 16, 16), dtype=np.float32)
    image[1] = np.random.default_rng(0).random((16, 16))
    img, _ = GaussianBlur(sigma=(1.0, 2.0), p=1.0)(image, None, np.random.default_rng(0))
    np.testing.assert_array_equal(img[0], 0.0)
    assert img[1].std() < image[1].std()


def test_noise_level_and_jitter_formula() -> None:
    image = np.zeros((1, 128, 128), dtype=np.float32)
    img, _ = GaussianNoise(sigma=(0.2, 0.2), p=1.0)(image, None, np.random.default_rng(0))
    assert img.std() == pytest.approx(0.2, rel=0.05)
    x = np.random.default_rng(1).random((2, 8, 8)).astype(np.float32)
    out, _ = IntensityJitter(scale=2.0, shift=1.0, p=1.0)(x, None, np.random.default_rng(0))
    np.testing.assert_allclose(out, 2 * x + 1, rtol=1e-6)
    out, _ = IntensityJitter(scale=1.0, shift=0.0, gamma=(2.0, 2.0), p=1.0)(x, None, np.random.default_rng(0))
    lo, hi = x.min(axis=(1, 2), keepdims=True), x.max(axis=(1, 2), keepdims=True)  # per channel
    np.testing.assert_allclose(out, lo + (hi - lo) * ((x - lo) / (hi - lo)) ** 2, rtol=1e-5, atol=1e-6)


def test_build_augmentation() -> None:
    ident = build_augmentation(None, 2)
    assert isinstance(ident, Compose) and len(ident) == 0
    labels = blocky_labels((8, 8), 0)
    image = image_from_labels(labels)
    img, lab = ident(image, labels, np.random.default_rng(0))
    np.testing.assert_array_equal(img, image)
    np.testing.assert_array_equal(lab, labels)

    # order is fixed (geometric first), True = defaults, False = off, lists -> tuples
    spec = {"noise": {"sigma": [0, 0.05]}, "flip": True, "rot90": False, "elastic": {"alpha": [0, 2, 2], "sigma": 4}}
    aug = build_augmentation(spec, 3)
    assert [type(t) for t in aug] == [RandomFlip, ElasticDeform, GaussianNoise]
    assert aug[2].sigma == (0.0, 0.05)
    assert aug[1].alpha == (0.0, 2.0, 2.0)
    full = build_augmentation(ALL_SPEC, 2)
    expected = [RandomFlip, RandomRot90, ElasticDeform, IntensityJitter, GaussianBlur, GaussianNoise]
    assert [type(t) for t in full] == expected
    assert set(AUGMENTATION_KEYS) == set(ALL_SPEC) | {"scale_jitter"}  # scale_jitter: tests/data/test_scale_jitter.py


def test_build_augmentation_errors() -> None:
    with pytest.raises(InputError, match=r"'warp'.*flip, rot90, elastic, intensity, blur, noise"):
        build_augmentation({"warp": True}, 2)
    with pytest.raises(InputError, match=r"'elastic'.*'?strength'?.*alpha, sigma, p"):
        build_augmentation({"elastic": {"strength": 3}}, 2)
    with pytest.raises(InputError, match="alpha"):
        build_augmentation({"elastic": {"alpha": [1, 2, 3]}}, 2)
    with pytest.raises(InputError, match="ndim"):
        build_augmentation({}, 4)
    with pytest.raises(InputError, match="true, false or a dict"):
        build_augmentation({"flip": 3}, 2)
    with pytest.raises(InputError, match="p="):
        build_augmentation({"noise": {"p": 1.5}}, 2)
    with pytest.raises(InputError, match="flip axis 2"):
        build_augmentation({"flip": {"axes": [2]}}, 2)


def test_bad_call_arguments() -> None:
    labels = blocky_labels((8, 8), 0)
    image = image_from_labels(labels)
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="does not fit labels shape"):
        RandomFlip()(image[:, :4], labels, rng)
    with pytest.raises(InputError, match="spatial axes"):
        RandomFlip()(image[0, 0], None, rng)
    with pytest.raises(InputError, match="integer"):
        RandomFlip()(image, labels.astype(np.float32), rng)
    with pytest.raises(InputError, match="Generator"):
        RandomFlip()(image, labels, 0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="sigma"):
        GaussianNoise(sigma=(0.2, 0.1))
    with pytest.raises(InputError, match="gamma"):
        IntensityJitter(gamma=(0.0, 1.0))
    with pytest.raises(InputError, match="sigma"):
        ElasticDeform(sigma=0)
    with pytest.raises(InputError, match="axes"):
        RandomRot90(axes=(0, 1, 2))
    with pytest.raises(InputError, match="same axis"):
        RandomRot90(axes=(1, -1))(image, labels, rng)


def test_elastic_speed() -> None:
    t = ElasticDeform(alpha=4, sigma=10, p=1.0)
    image = np.random.default_rng(0).random((1, 256, 256)).astype(np.float32)
    labels = np.zeros((256, 256), dtype=np.int32)
    rng = np.random.default_rng(0)
    t(image, labels, rng)
    start = time.perf_counter()
    for _ in range(5):
        t(image, labels, rng)
    per_call = (time.perf_counter() - start) / 5
    assert per_call < 0.15, f"elastic 256x256 took {per_call * 1000:.1f} ms (target 50 ms)"

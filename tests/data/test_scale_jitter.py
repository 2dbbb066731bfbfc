"""Scale-jitter augmentation: shapes kept, identity at factor 1, labels from the input set."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.data.datasets import PatchSampler, Sample
from unetkit.data.transforms import ScaleJitter, build_augmentation
from unetkit.errors import InputError


@settings(max_examples=40, deadline=None)
@given(r=st.floats(1.01, 4.0), shape=st.lists(st.integers(1, 24), min_size=2, max_size=3),
       seed=st.integers(0, 2**16), unsigned=st.booleans())
def test_shape_kept_and_labels_from_input(r: float, shape: list[int], seed: int, unsigned: bool) -> None:
    rng = np.random.default_rng(seed)
    image = rng.random((2, *shape)).astype(np.float32)
    labels = rng.integers(0, 3, shape).astype(np.uint8 if unsigned else np.int64)
    t = ScaleJitter(r)
    out_img, out_lab = t(image, labels, rng)
    assert out_img.shape == image.shape and out_img.dtype == np.float32
    assert out_lab is not None and out_lab.shape == labels.shape and out_lab.dtype == labels.dtype
    fill = 0 if unsigned else -1
    assert set(np.unique(out_lab)) <= set(np.unique(labels)) | {fill}
    assert np.isfinite(out_img).all()


@pytest.mark.parametrize("factor", [0.3, 0.5, 0.77, 1.3, 2.0, 3.5])
def test_explicit_factors(factor: float) -> None:
    rng = np.random.default_rng(0)
    image = rng.random((1, 20, 16)).astype(np.float32)
    labels = rng.integers(0, 4, (20, 16))
    out_img, out_lab = ScaleJitter(4.0).zoom(image, labels, factor)
    assert out_img.shape == image.shape and out_lab is not None and out_lab.shape == labels.shape
    if factor > 1:  # zoomed in: every label is an input label, none padded
        assert set(np.unique(out_lab)) <= set(np.unique(labels))
    else:  # zoomed out: the border is padded with the ignore value
        assert out_lab[0, 0] == -1 and (out_lab == -1).any()


def test_factor_one_is_identity() -> None:
    rng = np.random.default_rng(1)
    image = rng.random((2, 6, 9, 7)).astype(np.float32)
    labels = rng.integers(0, 5, (6, 9, 7))
    out_img, out_lab = ScaleJitter(2.0).zoom(image, labels, 1.0)
    np.testing.assert_array_equal(out_img, image)
    np.testing.assert_array_equal(out_lab, labels)
    # factors too close to 1 to change any size are the identity too
    out_img, _ = ScaleJitter(2.0).zoom(image, labels, 1.01)
    np.testing.assert_array_equal(out_img, image)


def test_factor_distribution_log_uniform() -> None:
    t = ScaleJitter(2.0)
    rng = np.random.default_rng(0)
    f = np.array([t.draw(rng) for _ in range(4000)])
    assert f.min() >= 0.5 and f.max() <= 2.0
    assert abs(np.mean(f < 1.0) - 0.5) < 0.03  # log-uniform: half the draws shrink


def test_config_and_composition() -> None:
    aug = build_augmentation({"scale_jitter": 1.5, "flip": True, "noise": True}, ndim=2)
    assert isinstance(aug[0], ScaleJitter) and aug[0].r == 1.5
    aug2 = build_augmentation({"scale_jitter": {"r": 2, "p": 0.5}}, ndim=3)
    assert aug2[0].r == 2.0 and aug2[0].p == 0.5
    with pytest.raises(InputError, match="r=1.0 must be a finite number > 1"):
        build_augmentation({"scale_jitter": 1.0}, ndim=2)
    with pytest.raises(InputError, match="a number"):
        build_augmentation({"scale_jitter": "big"}, ndim=2)
    # inside the patch sampler: batches keep the patch shape, targets stay class ids or ignore
    rng = np.random.default_rng(0)
    img = rng.random((1, 40, 40)).astype(np.float32)
    lab = rng.integers(0, 3, (40, 40)).astype(np.int64)
    sampler = PatchSampler([Sample(img, lab)], (24, 24), (20, 20), batch_size=4, rng=rng, augment=aug)
    for _ in range(5):
        x, y = sampler.sample()
        assert x.shape == (4, 1, 24, 24) and y.shape == (4, 20, 20)
        assert set(np.unique(y)) <= {-1, 0, 1, 2}

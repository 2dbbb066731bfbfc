"""Samples, patch sampling (alignment of targets), splits, folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from unetkit.data.datasets import (
    PatchSampler,
    Sample,
    load_folder,
    make_sample,
    split_samples,
)
from unetkit.data.io import write_image
from unetkit.data.normalize import normalize
from unetkit.data.synthetic import write_dataset
from unetkit.errors import InputError
from unetkit.models import UNet

# ----------------------------------------------------------------------------- PatchSampler


def _label_sample(shape: tuple[int, ...], seed: int = 0, k: int = 7) -> Sample:
    labels = np.random.default_rng(seed).integers(0, k, shape).astype(np.int64)
    return Sample(labels[None].astype(np.float32), labels, name=f"s{seed}")


def _geometry(ndim: int = 2) -> tuple[tuple[int, ...], tuple[int, ...]]:
    net = UNet(1, 1, ndim=ndim, depth=2 if ndim == 2 else 1, base_features=1)
    i = net.valid_input_shapes((52,) * ndim)[0] if ndim == 2 else net.geometry.min_input_shape()
    return i, net.output_shape(i)


def _check_alignment(x: np.ndarray, y: np.ndarray, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
    halo = tuple((i - o) // 2 for i, o in zip(in_shape, out_shape))
    centre = x[(slice(None), 0, *(slice(h, h + o) for h, o in zip(halo, out_shape)))]
    known = y != -1
    np.testing.assert_array_equal(np.round(centre)[known], y[known])


def test_patch_shapes_dtypes_and_centre_alignment() -> None:
    in_shape, out_shape = _geometry()
    assert in_shape != out_shape
    samples = [_label_sample((37, 61), 0), _label_sample((70, 45), 1)]
    sampler = PatchSampler(samples, in_shape, out_shape, batch_size=5, rng=np.random.default_rng(0))
    for _ in range(20):
        x, y = sampler.sample()
        assert x.shape == (5, 1, *in_shape) and x.dtype == np.float32
        assert y.shape == (5, *out_shape) and y.dtype == np.int64
        assert (y != -1).all()  # images are larger than the output patch: every target is real
        _check_alignment(x, y, in_shape, out_shape)


def test_patch_alignment_3d_and_multichannel() -> None:
    in_shape, out_shape = _geometry(3)
    labels = np.random.default_rng(3).integers(0, 5, (9, 11, 10))
    image = np.stack([labels, -labels]).astype(np.float32)
    sampler = PatchSampler([Sample(image, labels)], in_shape, out_shape, batch_size=4, rng=np.random.default_rng(1))
    for _ in range(5):
        x, y = sampler.sample()
        assert x.shape == (4, 2, *in_shape)
        assert y.shape == (4, *out_shape)
        _check_alignment(x, y, in_shape, out_shape)
        np.testing.assert_array_equal(x[:, 1], -x[:, 0])  # channels travel together


def test_targets_outside_small_images_are_ignored() -> None:
    in_shape, out_shape = _geometry()
    small = _label_sample((out_shape[0] - 5, out_shape[1] + 10), 2)
    sampler = PatchSampler([small], in_shape, out_shape, batch_size=8, rng=np.random.default_rng(5), ignore_index=-1)
    seen_offsets = set()
    for _ in range(10):
        x, y = sampler.sample()
        _check_alignment(x, y, in_shape, out_shape)
        for patch in y:
            known_rows = np.flatnonzero((patch != -1).all(axis=1))
            # exactly the image's rows are known, as one contiguous block; all columns are inside
            assert len(known_rows) == small.labels.shape[0]
            assert np.array_equal(known_rows, np.arange(known_rows[0], known_rows[0] + len(known_rows)))
            assert ((patch == -1).all(axis=1) | (patch != -1).all(axis=1)).all()
            seen_offsets.add(int(known_rows[0]))
    assert len(seen_offsets) > 1  # the image is placed at random positions inside the patch


def test_augmentation_is_applied_before_the_centre_crop() -> None:
    in_shape, out_shape = _geometry()
    calls = []

    def flip(image: np.ndarray, labels: np.ndarray | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        calls.append((image.shape, None if labels is None else labels.shape))
        assert labels is not None
        return image[..., ::-1, :], labels[::-1, :]

    sampler = PatchSampler([_label_sample((40, 40))], in_shape, out_shape, batch_size=3,
                           rng=np.random.default_rng(0), augment=flip)
    x, y = sampler.sample()
    assert calls == [((1, *in_shape), in_shape)] * 3
    _check_alignment(x, y, in_shape, out_shape)


def test_sampler_is_deterministic_given_the_generator() -> None:
    in_shape, out_shape = _geometry()
    samples = [_label_sample((40, 50), 0), _label_sample((60, 33), 1)]

    def batches(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        s = PatchSampler(samples, in_shape, out_shape, batch_size=3, rng=np.random.default_rng(seed))
        return [s.sample() for _ in range(4)]

    a, b, c = batches(7), batches(7), batches(8)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert any(not np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))


def test_sampler_picks_images_by_size() -> None:
    big, tiny = _label_sample((60, 60), 0, k=2), _label_sample((6, 6), 1, k=2)
    big.labels[:] = 0
    tiny.labels[:] = 1
    sampler = PatchSampler([big, tiny], (8, 8), (8, 8), batch_size=400, rng=np.random.default_rng(0))
    _, y = sampler.sample()
    frac_tiny = float(np.mean([(p == 1).any() for p in y]))
    assert frac_tiny == pytest.approx(36 / 3636, abs=0.02)
    assert np.array_equal(sampler.weights, [3600 / 3636, 36 / 3636])


def test_sampler_rejects_bad_configuration() -> None:
    with pytest.raises(InputError):
        PatchSampler([], (8, 8), (8, 8), batch_size=1, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="centre-aligned"):
        PatchSampler([_label_sample((9, 9))], (9, 9), (8, 8), batch_size=1, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="centre-aligned"):
        PatchSampler([_label_sample((9, 9))], (8, 8), (10, 8), batch_size=1, rng=np.random.default_rng(0))


# ----------------------------------------------------------------------------- split_samples


@pytest.mark.parametrize(
    ("n", "fraction", "n_val"),
    [(10, 0.2, 2), (10, 0.0, 0), (10, 0.04, 1), (2, 0.1, 1), (2, 0.9, 1), (1, 0.5, 0), (5, 1.0, 4), (7, 0.5, 4)],
)
def test_split_counts_and_disjointness(n: int, fraction: float, n_val: int) -> None:
    samples = [Sample(np.zeros((1, 2, 2), np.float32), np.zeros((2, 2), np.int64), name=str(i)) for i in range(n)]
    train, val = split_samples(samples, fraction, np.random.default_rng(0))
    assert len(val) == n_val
    assert len(train) == n - n_val
    names_t, names_v = [s.name for s in train], [s.name for s in val]
    assert not set(names_t) & set(names_v)
    assert sorted(names_t + names_v, key=int) == [str(i) for i in range(n)]
    assert names_t == sorted(names_t, key=int)  # original order kept
    again = split_samples(samples, fraction, np.random.default_rng(0))
    assert [s.name for s in again[1]] == names_v


def test_split_empty() -> None:
    with pytest.raises(InputError, match="no training samples"):
        split_samples([], 0.2, np.random.default_rng(0))


# ----------------------------------------------------------------------------- make_sample


def test_make_sample_normalises_and_converts() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 1000, (12, 13)).astype(np.uint16)
    labels = rng.integers(0, 3, (12, 13)).astype(np.uint8)
    s = make_sample(image, labels, ndim=2, name="x")
    assert s.image.shape == (1, 12, 13) and s.image.dtype == np.float32
    assert s.labels.dtype == np.int64 and s.image.flags.c_contiguous
    np.testing.assert_allclose(s.image, normalize(image[None].astype(np.float32), "percentile", channel_axis=0))
    np.testing.assert_array_equal(s.labels, labels)
    assert s.name == "x"
    ms = make_sample(image, labels, ndim=2, normalize_mode="meanstd")
    assert abs(float(ms.image.mean())) < 1e-4 and float(ms.image.std()) == pytest.approx(1.0, abs=1e-3)
    raw = make_sample(image, labels, ndim=2, normalize_mode="none")
    np.testing.assert_array_equal(raw.image[0], image.astype(np.float32))


def test_make_sample_channels_and_prepare_labels() -> None:
    rng = np.random.default_rng(1)
    image = rng.normal(size=(2, 6, 7, 8))
    labels = rng.integers(0, 5, (6, 7, 8))
    s = make_sample(image, labels, ndim=3, channels=2, prepare_labels=lambda lab: (lab > 2).astype(np.uint8))
    assert s.image.shape == (2, 6, 7, 8)
    np.testing.assert_array_equal(s.labels, labels > 2)
    # per-channel normalisation
    np.testing.assert_allclose(s.image, normalize(image.astype(np.float32), "percentile", channel_axis=0), rtol=1e-6)
    # explicit axes say there is no channel axis
    s2 = make_sample(image[0], labels, ndim=3, image_axes="ZYX")
    assert s2.image.shape == (1, 6, 7, 8)


def test_make_sample_errors() -> None:
    image = np.zeros((10, 10), np.float32)
    with pytest.raises(InputError, match=r"\(10, 10\).*\(10, 9\)"):
        make_sample(image, np.zeros((10, 9), int), ndim=2)
    with pytest.raises(InputError, match="2 channel.*in_channels is 1"):
        make_sample(np.zeros((2, 10, 10), np.float32), np.zeros((10, 10), int), ndim=2)
    with pytest.raises(InputError, match="1 channel.*in_channels is 3"):
        make_sample(image, np.zeros((10, 10), int), ndim=2, channels=3)
    bad = image.copy()
    bad[3, 4] = np.nan
    with pytest.raises(InputError, match="NaN"):
        make_sample(bad, np.zeros((10, 10), int), ndim=2, name="bad.tif")
    with pytest.raises(InputError, match="3-D"):
        make_sample(np.zeros((4, 10, 10), np.float32), np.zeros((4, 10, 10), int), ndim=2, image_axes="ZYX")


# ----------------------------------------------------------------------------- load_folder


def test_load_folder_synthetic(tmp_path: Path) -> None:
    image_dir, label_dir = write_dataset(tmp_path, 3, (32, 40), kind="discs", semantic=True, seed=4)
    samples = load_folder(image_dir, label_dir, ndim=2)
    assert [s.name for s in samples] == ["img_000.tif", "img_001.tif", "img_002.tif"]
    for s in samples:
        raw = tifffile.imread(image_dir / s.name)
        lab = tifffile.imread(label_dir / s.name)
        assert s.image.shape == (1, 32, 40) and s.image.dtype == np.float32
        np.testing.assert_array_equal(s.labels, lab)
        assert set(np.unique(s.labels)) <= {0, 1}
        np.testing.assert_allclose(s.image[0], normalize(raw, "percentile"), rtol=1e-6)
    assert any(s.labels.any() for s in samples)


def test_load_folder_all_empty_labels(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_image(tmp_path / "img" / f"{name}.tif", np.random.default_rng(0).random((8, 8)).astype(np.float32), axes="YX")
        write_image(tmp_path / "lab" / f"{name}.tif", np.zeros((8, 8), np.uint8), axes="YX")
    with pytest.raises(InputError, match="empty"):
        load_folder(tmp_path / "img", tmp_path / "lab", ndim=2)
    # one non-empty label image is enough
    write_image(tmp_path / "lab" / "b.tif", np.eye(8, dtype=np.uint8), axes="YX")
    assert len(load_folder(tmp_path / "img", tmp_path / "lab", ndim=2)) == 2

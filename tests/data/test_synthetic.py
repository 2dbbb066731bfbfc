"""Tests of unetkit.data.synthetic."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from unetkit.data.synthetic import (
    blobs,
    disc_grid,
    make_dataset,
    semantic_from_instances,
    write_dataset,
)
from unetkit.errors import InputError


def touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of distinct object ids that are face neighbours (shifted comparison)."""
    pairs: set[tuple[int, int]] = set()
    for ax in range(labels.ndim):
        a = np.moveaxis(labels, ax, 0)[1:].ravel()
        b = np.moveaxis(labels, ax, 0)[:-1].ravel()
        m = (a != b) & (a > 0) & (b > 0)
        pairs |= {(min(x, y), max(x, y)) for x, y in zip(a[m].tolist(), b[m].tolist())}
    return pairs


def components_per_object(labels: np.ndarray) -> np.ndarray:
    k = int(labels.max())
    return np.array([ndi.label(labels == i)[1] for i in range(1, k + 1)])


# --------------------------------------------------------------------------- disc_grid


def reference_discs(shape, spacing, radius, offset) -> np.ndarray:
    """Brute force: every lattice point whose disc lies fully inside, drawn one by one."""
    ndim = len(shape)
    spacing = (spacing,) * ndim if np.isscalar(spacing) else spacing
    offset = (offset,) * ndim if np.isscalar(offset) else offset
    axes = [np.arange(n) for n in shape]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"))
    centres_per_axis = [
        [o + k * s for k in range(int((n + radius) // s) + 2)] for n, s, o in zip(shape, spacing, offset)
    ]
    labels = np.zeros(shape, dtype=np.int32)
    next_id = 1
    for centre in itertools.product(*centres_per_axis):  # row-major lattice order
        c = np.array(centre, dtype=float).reshape((ndim,) + (1,) * ndim)
        mask = ((grid - c) ** 2).sum(axis=0) <= radius**2
        # fits: every lattice point within radius of the centre is inside the image
        lo = [math.ceil(ci - radius) for ci in centre]
        hi = [math.floor(ci + radius) for ci in centre]
        if all(l >= 0 for l in lo) and all(h <= n - 1 for h, n in zip(hi, shape)):
            labels[mask] = next_id
            next_id += 1
    return labels


@pytest.mark.parametrize(
    ("shape", "spacing", "radius", "offset"),
    [
        ((64, 64), 13, 5.0, 0),
        ((64, 70), 13, 5.0, 5),
        ((50, 61), (15, 16), 5.0, (6, 9)),
        ((40, 40), 11, 4.5, (4, 3)),
        ((40, 44), 12, 5.0, (2.5, 7.25)),  # non-integer centres still exact
        ((24, 30, 28), 11, 4.0, (4, 5, 6)),
        ((20, 33, 33), (9, 12, 12), 3.5, 3),
    ],
)
def test_disc_grid_matches_brute_force(shape, spacing, radius, offset) -> None:
    image, labels = disc_grid(shape, spacing=spacing, radius=radius, offset=offset)
    ref = reference_discs(shape, spacing, radius, offset)
    np.testing.assert_array_equal(labels, ref)
    assert labels.dtype == np.int32 and image.dtype == np.float32
    np.testing.assert_array_equal(image, (labels > 0).astype(np.float32))


def test_disc_grid_count_size_centres_and_shape() -> None:
    shape, spacing, radius, offset = (100, 90), 16, 5.0, (7, 5)
    image, labels = disc_grid(shape, spacing=spacing, radius=radius, offset=offset)
    # centres that fit: per axis c - r >= 0 and c + r <= n - 1
    cy = [c for c in range(offset[0], shape[0], spacing) if c - radius >= 0 and c + radius <= shape[0] - 1]
    cx = [c for c in range(offset[1], shape[1], spacing) if c - radius >= 0 and c + radius <= shape[1] - 1]
    assert labels.max() == len(cy) * len(cx) == len(np.unique(labels)) - 1
    lattice = sum(1 for v in itertools.product(range(-5, 6), repeat=2) if v[0] ** 2 + v[1] ** 2 <= radius**2)
    sizes = np.bincount(labels.ravel())[1:]
    assert (sizes == lattice).all() and lattice == 81
    centres = np.array(ndi.center_of_mass(labels > 0, labels, range(1, labels.max() + 1)))
    expected = np.array(list(itertools.product(cy, cx)), dtype=float)  # row-major ids
    np.testing.assert_allclose(centres, expected, atol=1e-9)
    crops = [labels[s] == i + 1 for i, s in enumerate(ndi.find_objects(labels))]
    assert all(np.array_equal(c, crops[0]) for c in crops)
    assert (components_per_object(labels) == 1).all()


def test_disc_grid_3d_ball_volume() -> None:
    _, labels = disc_grid((30, 30, 30), spacing=14, radius=4.0, offset=5)
    lattice = sum(1 for v in itertools.product(range(-4, 5), repeat=3) if sum(x * x for x in v) <= 16)
    assert labels.max() == 8
    assert (np.bincount(labels.ravel())[1:] == lattice).all()


def test_disc_grid_shift_equivariance() -> None:
    """Moving the lattice by d moves the image by d (where both discs fit)."""
    kw = dict(spacing=13, radius=5.0)
    a, la = disc_grid((80, 80), offset=(8, 8), **kw)
    b, lb = disc_grid((80, 80), offset=(11, 10), **kw)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(b[16 + 3 : 64 + 3, 16 + 2 : 64 + 2], a[16:64, 16:64])


def test_disc_grid_noise_and_seed() -> None:
    kw = dict(spacing=13, radius=5.0, offset=6)
    clean, labels = disc_grid((40, 40), **kw)
    n1, l1 = disc_grid((40, 40), noise=0.1, seed=1, **kw)
    n1b, _ = disc_grid((40, 40), noise=0.1, seed=1, **kw)
    n2, _ = disc_grid((40, 40), noise=0.1, seed=2, **kw)
    np.testing.assert_array_equal(l1, labels)
    np.testing.assert_array_equal(n1, n1b)
    assert not np.array_equal(n1, n2)
    assert np.std(n1 - clean) == pytest.approx(0.1, rel=0.15)
    np.testing.assert_array_equal(disc_grid((40, 40), seed=5, **kw)[0], clean)  # no noise: seed unused


def test_disc_grid_no_fitting_disc_and_errors() -> None:
    image, labels = disc_grid((8, 8), spacing=13, radius=5.0)
    assert labels.max() == 0 and image.max() == 0
    with pytest.raises(InputError, match=r"spacing.*2 \* radius"):
        disc_grid((40, 40), spacing=10, radius=5.0)
    with pytest.raises(InputError, match="radius"):
        disc_grid((40, 40), spacing=10, radius=0)
    with pytest.raises(InputError, match="shape"):
        disc_grid((40,), spacing=13, radius=5)
    with pytest.raises(InputError, match="spacing"):
        disc_grid((40, 40), spacing=(13, 13, 13), radius=5)
    with pytest.raises(InputError, match="noise"):
        disc_grid((40, 40), spacing=13, radius=5, noise=-1)


# --------------------------------------------------------------------------- blobs


@pytest.fixture(scope="module")
def blob2d() -> tuple[np.ndarray, np.ndarray]:
    return blobs((128, 128), seed=3)


def test_blobs_deterministic_and_seeded() -> None:
    a = blobs((64, 64), seed=7)
    b = blobs((64, 64), seed=7)
    c = blobs((64, 64), seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    g = blobs((64, 64), seed=np.random.default_rng(7))
    np.testing.assert_array_equal(g[1], a[1])


def test_blobs_types_consecutive_and_connected(blob2d) -> None:
    image, labels = blob2d
    assert image.shape == labels.shape == (128, 128)
    assert image.dtype == np.float32 and labels.dtype == np.int32
    k = int(labels.max())
    assert k >= 10
    np.testing.assert_array_equal(np.unique(labels), np.arange(k + 1))
    assert (components_per_object(labels) == 1).all()
    assert np.isfinite(image).all()


def test_blobs_touch_and_look_like_cells(blob2d) -> None:
    image, labels = blob2d
    pairs = touching_pairs(labels)
    assert len(pairs) >= 5
    fg = (labels > 0).mean()
    assert 0.3 < fg < 0.8
    assert image[labels > 0].mean() > image[labels == 0].mean() + 0.3


def test_blobs_membranes_are_darker() -> None:
    image, labels = blobs((128, 128), noise=0.0, blur=0.0, seed=4)
    boundary = np.zeros(labels.shape, dtype=bool)
    for ax in range(2):
        a = [slice(None)] * 2
        b = [slice(None)] * 2
        a[ax], b[ax] = slice(1, None), slice(None, -1)
        diff = (labels[tuple(a)] != labels[tuple(b)]) & (labels[tuple(a)] > 0) & (labels[tuple(b)] > 0)
        boundary[tuple(a)] |= diff
    assert boundary.any()
    assert image[boundary].mean() < 0.6 * image[(labels > 0) & ~boundary].mean()


@pytest.mark.parametrize("shape", [(96, 80), (40, 48, 44)])
def test_blobs_exact_object_count(shape) -> None:
    image, labels = blobs(shape, n_objects=12, radius=(5, 8), seed=0)
    assert labels.max() == 12
    np.testing.assert_array_equal(np.unique(labels), np.arange(13))
    assert (components_per_object(labels) == 1).all()


def test_blobs_not_touching() -> None:
    _, labels = blobs((128, 128), touching=False, seed=1)
    assert labels.max() >= 10
    assert not touching_pairs(labels)
    assert (components_per_object(labels) == 1).all()


def test_blobs_3d() -> None:
    image, labels = blobs((32, 48, 48), radius=(5, 9), seed=2)
    assert image.shape == labels.shape == (32, 48, 48)
    assert image.dtype == np.float32 and labels.dtype == np.int32
    k = int(labels.max())
    assert k >= 5
    np.testing.assert_array_equal(np.unique(labels), np.arange(k + 1))
    assert (components_per_object(labels) == 1).all()
    assert touching_pairs(labels)
    assert 0.2 < (labels > 0).mean() < 0.8
    assert image[labels > 0].mean() > image[labels == 0].mean() + 0.3


def test_blobs_options_and_errors() -> None:
    image, labels = blobs((64, 64), photons=20.0, noise=0.0, seed=0)
    assert np.isfinite(image).all() and image.min() >= 0
    np.testing.assert_array_equal(blobs((64, 64), photons=20.0, noise=0.0, seed=0)[0], image)
    empty_img, empty = blobs((32, 32), n_objects=0, seed=0)
    assert empty.max() == 0 and np.isfinite(empty_img).all()
    with pytest.raises(InputError, match="n_objects=500"):
        blobs((32, 32), n_objects=500, seed=0)
    with pytest.raises(InputError, match="radius"):
        blobs((32, 32), radius=(5, 2))
    with pytest.raises(InputError, match="seed"):
        blobs((32, 32), seed="abc")  # type: ignore[arg-type]


def test_keep_largest_piece() -> None:
    from unetkit.data.synthetic import _keep_largest_piece

    labels = np.array([[1, 1, 0, 1], [0, 0, 0, 0], [2, 0, 2, 2]], dtype=np.int32)
    out = _keep_largest_piece(labels)
    np.testing.assert_array_equal(out, [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 2, 2]])
    ok = np.array([[1, 1, 2], [0, 0, 2]], dtype=np.int32)
    np.testing.assert_array_equal(_keep_largest_piece(ok), ok)


def test_blobs_speed() -> None:
    blobs((256, 256), seed=0)  # warm-up (imports)
    start = time.perf_counter()
    for s in range(3):
        blobs((256, 256), seed=s)
    t2 = (time.perf_counter() - start) / 3
    start = time.perf_counter()
    blobs((64, 64, 64), seed=0)
    t3 = time.perf_counter() - start
    assert t2 < 0.3, f"blobs 256x256 took {t2:.3f} s (target 0.1 s)"
    assert t3 < 3.0, f"blobs 64^3 took {t3:.3f} s (target 1 s)"


def test_semantic_from_instances() -> None:
    labels = np.array([[0, 3, 3], [7, 0, 1]], dtype=np.int64)
    sem = semantic_from_instances(labels)
    assert sem.dtype == np.uint8
    np.testing.assert_array_equal(sem, [[0, 1, 1], [1, 0, 1]])
    with pytest.raises(InputError, match="integer"):
        semantic_from_instances(labels.astype(float))


# --------------------------------------------------------------------------- datasets


def test_make_dataset_seeding() -> None:
    a = make_dataset(3, (48, 48), seed=5)
    b = make_dataset(3, (48, 48), seed=5)
    longer = make_dataset(4, (48, 48), seed=5)
    other = make_dataset(3, (48, 48), seed=6)
    assert len(a) == 3
    for (ia, la), (ib, lb), (ic, lc) in zip(a, b, longer):
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_array_equal(la, lc)  # sample i does not depend on n
    assert not np.array_equal(a[0][1], a[1][1])  # samples differ from each other
    assert not np.array_equal(a[0][1], other[0][1])
    assert make_dataset(0, (16, 16)) == []


def test_make_dataset_discs_random_offsets() -> None:
    data = make_dataset(4, (64, 64), kind="discs", seed=0, radius=4.0, spacing=12)
    assert all(lab.max() > 0 for _, lab in data)
    assert len({lab.tobytes() for _, lab in data}) > 1
    fixed = make_dataset(2, (64, 64), kind="discs", seed=0, radius=4.0, spacing=12, offset=5)
    np.testing.assert_array_equal(fixed[0][1], fixed[1][1])
    with pytest.raises(InputError, match=r"'cells'.*blobs, discs"):
        make_dataset(2, (32, 32), kind="cells")  # type: ignore[arg-type]


@pytest.mark.parametrize("semantic", [False, True])
def test_write_dataset(tmp_path, semantic: bool) -> None:
    image_dir, label_dir = write_dataset(tmp_path / "ds", 3, (40, 40), seed=1, semantic=semantic)
    assert image_dir == tmp_path / "ds" / "images" and label_dir == tmp_path / "ds" / "labels"
    names = sorted(p.name for p in image_dir.iterdir())
    assert names == ["img_000.tif", "img_001.tif", "img_002.tif"]
    assert sorted(p.name for p in label_dir.iterdir()) == names
    expected = make_dataset(3, (40, 40), seed=1)
    for name, (img, lab) in zip(names, expected):
        np.testing.assert_array_equal(tifffile.imread(image_dir / name), img)
        read = tifffile.imread(label_dir / name)
        if semantic:
            assert read.dtype == np.uint8 and set(np.unique(read)) <= {0, 1}
            np.testing.assert_array_equal(read, lab > 0)
        else:
            assert read.dtype == np.int32
            np.testing.assert_array_equal(read, lab)


def test_write_dataset_3d(tmp_path) -> None:
    image_dir, label_dir = write_dataset(tmp_path, 1, (12, 24, 24), kind="discs", radius=3.0, spacing=8)
    img = tifffile.imread(image_dir / "img_000.tif")
    lab = tifffile.imread(label_dir / "img_000.tif")
    assert img.shape == lab.shape == (12, 24, 24) and lab.max() > 0


# --------------------------------------------------------------------------- textured_objects


def test_textured_objects_labels_ring_and_intensity() -> None:
    from unetkit.data.synthetic import textured_objects

    image, labels = textured_objects((96, 96), radius=8.0, seed=0)
    assert image.shape == labels.shape == (96, 96)
    assert image.dtype == np.float32 and labels.dtype == np.int32
    assert set(np.unique(labels)) == {0, 1, 2}
    # the ring surrounds the interior: every interior pixel's face neighbours are interior or ring
    interior = labels == 2
    grown = ndi.binary_dilation(interior)
    assert not np.any(grown & (labels == 0))
    # intensity alone does not separate the classes
    means = [float(image[labels == k].mean()) for k in range(3)]
    assert max(means) - min(means) < 0.05


def test_textured_objects_one_size_and_ring_scales() -> None:
    from unetkit.data.synthetic import textured_objects

    for radius in (6.0, 12.0):
        _, labels = textured_objects((160, 160), radius=radius, boundary=0.25, seed=3)
        objects, n = ndi.label(labels > 0)
        sizes = np.bincount(objects.ravel())[1:]
        # objects that do not touch the border have the area of a disc of radius 0.9r..1.1r
        border = set(np.unique(np.r_[objects[0], objects[-1], objects[:, 0], objects[:, -1]]))
        inner = [s for i, s in enumerate(sizes, 1) if i not in border]
        assert inner and min(inner) >= math.pi * (0.9 * radius - 1) ** 2
        assert max(inner) <= math.pi * (1.1 * radius + 1) ** 2
        ring_fraction = (labels == 1).sum() / (labels > 0).sum()
        assert 0.3 < ring_fraction < 0.55  # 1 - 0.75^2 = 0.44 of a disc's area


def test_textured_objects_seed_and_3d() -> None:
    from unetkit.data.synthetic import textured_objects

    a = textured_objects((48, 40), seed=5)
    b = textured_objects((48, 40), seed=5)
    c = textured_objects((48, 40), seed=6)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    image, labels = textured_objects((24, 24, 24), radius=5.0, seed=1)
    assert image.shape == (24, 24, 24) and set(np.unique(labels)) <= {0, 1, 2} and (labels == 2).any()


@pytest.mark.parametrize("kwargs, match", [
    ({"radius": 1.0}, "radius"), ({"radius": -3}, "radius"), ({"density": 0.0}, "density"),
    ({"density": 1.5}, "density"), ({"boundary": 1.0}, "boundary"), ({"boundary": 0}, "boundary"),
    ({"noise": -1.0}, "noise"), ({"seed": "x"}, "seed"),
])
def test_textured_objects_errors(kwargs, match) -> None:
    from unetkit.data.synthetic import textured_objects
    from unetkit.errors import InputError

    with pytest.raises(InputError, match=match):
        textured_objects((32, 32), **kwargs)
    with pytest.raises(InputError, match="shape"):
        textured_objects((32,))

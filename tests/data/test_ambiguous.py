"""Tests of unetkit.data.ambiguous (ambiguous_objects, sample_truth, instance_colouring)."""

from __future__ import annotations

import numpy as np
import pytest

from unetkit.data.ambiguous import AmbiguousObjects, InstanceColouring
from unetkit.data.synthetic import ambiguous_objects, instance_colouring, sample_truth
from unetkit.errors import InputError
from unetkit.metrics import ged

# --------------------------------------------------------------------------- ambiguous_objects


def reference_probability(data: AmbiguousObjects, i: int) -> np.ndarray:
    """Brute force: sum over objects and radius offsets of p_j q_k [||x - c_j|| <= r_j + o_k]."""
    shape = data.images.shape[1:]
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")).astype(float)
    out = np.zeros(shape)
    for j in range(int(data.n_objects[i])):
        c = data.centres[i, j].reshape((-1,) + (1,) * len(shape))
        d = np.sqrt(((grid - c) ** 2).sum(axis=0))
        for o, q in zip(data.offsets, data.offset_probs):
            out += data.presence[i, j] * q * (d <= data.radii[i, j] + o)
    return out


def test_shapes_dtypes_and_exact_probability() -> None:
    d = ambiguous_objects(3, (48, 40), 5, seed=0)
    assert d.images.shape == (3, 48, 40) and d.images.dtype == np.float32
    assert d.graders.shape == (3, 5, 48, 40) and d.graders.dtype == np.int64
    assert d.probability.shape == (3, 48, 40) and d.probability.dtype == np.float64
    assert set(np.unique(d.graders).tolist()) <= {0, 1}
    assert d.centres.shape[:2] == d.radii.shape == d.presence.shape == d.contrast.shape
    assert np.all(d.n_objects >= 1)
    assert set(d.presence[d.presence > 0].tolist()) <= {0.25, 0.5, 0.75, 1.0}
    for i in range(3):
        np.testing.assert_allclose(d.probability[i], reference_probability(d, i), atol=1e-12)
        # graders never mark a pixel of probability 0, always mark pixels of probability 1
        assert not d.graders[i][:, d.probability[i] == 0].any()
        assert d.graders[i][:, d.probability[i] == 1].all()
    # the objects are visible in the image, faint ones too
    inside = d.probability > 0
    assert d.images[inside].mean() > d.images[~inside].mean() + 0.2


def test_deterministic_per_seed_and_independent_of_n_images() -> None:
    a = ambiguous_objects(3, (32, 32), seed=7)
    b = ambiguous_objects(3, (32, 32), seed=7)
    c = ambiguous_objects(2, (32, 32), seed=7)
    e = ambiguous_objects(3, (32, 32), seed=8)
    for name in ("images", "graders", "probability", "centres", "presence"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.images[:2], c.images)
    np.testing.assert_array_equal(a.graders[:2], c.graders)
    assert not np.array_equal(a.images, e.images)


def test_probability_matches_monte_carlo_of_sample_truth() -> None:
    d = ambiguous_objects(1, (32, 32), seed=3, n_objects=3, radius=(4.0, 6.0))
    draws = sample_truth(d, 0, 2000, rng=1)
    assert draws.shape == (2000, 32, 32) and draws.dtype == np.int64
    freq = draws.mean(axis=0)
    assert np.abs(freq - d.probability[0]).max() < 0.05
    assert np.abs(freq - d.probability[0]).mean() < 0.005
    np.testing.assert_array_equal(d.sample(0, 4, 9), sample_truth(d, 0, 4, 9))


def test_graders_are_draws_of_the_same_distribution() -> None:
    d = ambiguous_objects(2, (32, 32), n_graders=1500, seed=4, n_objects=3, radius=(4.0, 6.0))
    for i in range(2):
        assert np.abs(d.graders[i].mean(axis=0) - d.probability[i]).max() < 0.06
    # the oracle: true samples against the graders have a GED close to 0 (only sampling noise)
    true = sample_truth(d, 0, 100, rng=0)
    assert ged(true, d.graders[0, :100]) < 0.05
    # a deterministic prediction (threshold 0.5) is farther from the graders than the truth
    thresholded = (d.probability[0] > 0.5).astype(np.int64)[None].repeat(100, axis=0)
    assert ged(thresholded, d.graders[0, :100]) > ged(true, d.graders[0, :100])


def test_3d() -> None:
    d = ambiguous_objects(1, (16, 24, 24), 3, seed=0, radius=(3.0, 5.0))
    assert d.images.shape == (1, 16, 24, 24) and d.graders.shape == (1, 3, 16, 24, 24)
    assert d.centres.shape[-1] == 3
    np.testing.assert_allclose(d.probability[0], reference_probability(d, 0), atol=1e-12)


def test_no_objects_and_no_images() -> None:
    d = ambiguous_objects(1, (16, 16), seed=0, n_objects=0)
    assert not d.graders.any() and not d.probability.any()
    assert ambiguous_objects(0, seed=0).images.shape == (0, 64, 64)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_images": -1}, "n_images=-1"),
    ({"n_graders": 0}, "n_graders=0"),
    ({"shape": (8,)}, "shape"),
    ({"presence": (0.0, 0.5)}, "presence"),
    ({"offset_probs": (0.5, 0.6, 0.1)}, "offset_probs"),
    ({"offset_probs": (0.5, 0.5)}, "offset_probs"),
    ({"radius": (1.0, 3.0)}, r"radius=\(1.0, 3.0\).*offset"),
    ({"noise": -1.0}, "noise=-1.0"),
    ({"seed": "x"}, "seed='x'"),
])
def test_ambiguous_objects_bad_arguments(kwargs, match) -> None:
    args = {"n_images": 1, "seed": 0, **kwargs}
    n = args.pop("n_images")
    with pytest.raises(InputError, match=match):
        ambiguous_objects(n, **args)


def test_sample_truth_bad_arguments() -> None:
    d = ambiguous_objects(2, (16, 16), seed=0)
    with pytest.raises(InputError, match="i=2"):
        sample_truth(d, 2, 3)
    with pytest.raises(InputError, match="n=0"):
        sample_truth(d, 0, 0)
    with pytest.raises(InputError, match="AmbiguousObjects"):
        sample_truth(d.images, 0, 3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- instance_colouring


def test_instance_colouring_shapes_and_colours() -> None:
    c = instance_colouring(2, (48, 48), n_graders=5, n_colours=3, seed=0)
    assert isinstance(c, InstanceColouring)
    assert c.images.shape == (2, 48, 48) and c.images.dtype == np.float32
    assert c.graders.shape == (2, 5, 48, 48) and c.graders.dtype == np.int64
    assert c.instances.shape == (2, 48, 48) and c.instances.dtype == np.int64
    assert c.graders.min() >= 0 and c.graders.max() <= 3
    for i in range(2):
        inst = c.instances[i]
        k = int(inst.max())
        assert k >= 3
        assert not c.graders[i][:, inst == 0].any()
        assert (c.graders[i][:, inst > 0] >= 1).all()
        for g in range(5):
            # one colour per true instance (pairs (instance, colour) are unique per instance)
            pairs = np.unique(np.stack([inst.ravel(), c.graders[i, g].ravel()]), axis=1)
            assert pairs.shape[1] == k + 1
            np.testing.assert_array_equal(c.graders[i, g], c.colours[i, g][inst])
        # colours are redrawn per grader
        assert len({c.graders[i, g].tobytes() for g in range(5)}) > 1


def test_instance_colouring_neighbours_may_share_a_colour() -> None:
    c = instance_colouring(1, (64, 64), n_graders=4, n_colours=2, seed=1)
    inst, gr = c.instances[0], c.graders[0]
    a, b = inst[:, 1:].ravel(), inst[:, :-1].ravel()
    touching = (a != b) & (a > 0) & (b > 0)
    same = (gr[:, :, 1:].reshape(4, -1) == gr[:, :, :-1].reshape(4, -1))[:, touching]
    assert same.any() and not same.all()


def test_instance_colouring_deterministic_and_errors() -> None:
    a = instance_colouring(2, (32, 32), seed=5)
    b = instance_colouring(2, (32, 32), seed=5)
    np.testing.assert_array_equal(a.graders, b.graders)
    np.testing.assert_array_equal(a.images, b.images)
    c = instance_colouring(3, (24, 20, 20), 2, seed=0, radius=(4.0, 6.0))
    assert c.graders.shape == (3, 2, 24, 20, 20)
    with pytest.raises(InputError, match="n_colours=0"):
        instance_colouring(1, seed=0, n_colours=0)
    with pytest.raises(InputError, match="n_graders=0"):
        instance_colouring(1, seed=0, n_graders=0)
    with pytest.raises(InputError, match="radius"):
        instance_colouring(1, seed=0, radius=(3.0, 1.0))

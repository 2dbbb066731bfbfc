"""Sampling a probabilistic model through the tiling path (unetkit.inference.sampling)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from unetkit.errors import InputError
from unetkit.inference import InexactTilingWarning
from unetkit.inference.sampling import SamplingPredictor, entropy_of, sample_image
from unetkit.models import UNet, create_model


@pytest.fixture(scope="module")
def hpu() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("hpunet", levels=3, base_channels=4, max_channels=8, blocks_per_level=1, latent_scales=2,
                        out_channels=3).eval()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((32, 40)).astype(np.float32)


def test_one_tile_summary_equals_the_models_own_samples(hpu: torch.nn.Module, image: np.ndarray) -> None:
    out = sample_image(hpu, image, 5, seed=3, memory_budget=None)
    assert out.n_tiles == 1
    assert out.samples.shape == (5, 32, 40) and out.mean.shape == (3, 32, 40) and out.std.shape == (3, 32, 40)
    with torch.no_grad():
        logits = hpu.sample(torch.from_numpy(image)[None, None], 5, generator=torch.Generator().manual_seed(3))[0]
    probs = torch.softmax(logits, dim=1).numpy()
    np.testing.assert_array_equal(out.samples, logits.argmax(dim=1).numpy())
    np.testing.assert_allclose(out.mean, probs.mean(0), atol=1e-6)
    np.testing.assert_allclose(out.std, probs.std(0), atol=1e-6)
    np.testing.assert_allclose(out.mean.sum(0), 1.0, atol=1e-5)
    np.testing.assert_allclose(out.entropy, entropy_of(out.mean), atol=1e-6)
    assert len(np.unique(out.samples.reshape(5, -1), axis=0)) > 1  # the samples differ


def test_every_scale_at_its_mean_gives_the_point_prediction(hpu: torch.nn.Module, image: np.ndarray) -> None:
    out = sample_image(hpu, image, 4, mean_scales=(0, 1), memory_budget=None)
    assert (out.samples == out.samples[0]).all()
    np.testing.assert_allclose(out.std, 0.0, atol=1e-6)
    with torch.no_grad():
        point = torch.softmax(hpu(torch.from_numpy(image)[None, None]), dim=1)[0].numpy()
    np.testing.assert_allclose(out.mean, point, atol=1e-5)


def test_same_seed_same_samples_and_seeds_differ(hpu: torch.nn.Module, image: np.ndarray) -> None:
    a = sample_image(hpu, image, 3, seed=1, memory_budget=None)
    b = sample_image(hpu, image, 3, seed=1, memory_budget=None)
    c = sample_image(hpu, image, 3, seed=2, memory_budget=None)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)


def test_several_tiles_warn_and_cover_the_image(hpu: torch.nn.Module) -> None:
    big = np.random.default_rng(1).standard_normal((120, 124)).astype(np.float32)  # halo 36: tiles of 80
    with pytest.warns(InexactTilingWarning, match="latent"):
        out = sample_image(hpu, big, 3, tile_shape=(80, 80))
    assert out.n_tiles > 1
    assert out.samples.shape == (3, 120, 124)
    np.testing.assert_allclose(out.mean.sum(0), 1.0, atol=1e-5)  # every pixel written by some tile


def test_entropy_by_hand() -> None:
    p = np.array([[[0.5, 1.0]], [[0.5, 0.0]]], dtype=np.float32)  # (C=2, 1, 2)
    np.testing.assert_allclose(entropy_of(p), [[np.log(2), 0.0]], atol=1e-6)
    np.testing.assert_allclose(entropy_of(np.array([[[0.5]]], dtype=np.float32)), [[np.log(2)]], atol=1e-6)


def test_bad_requests_name_the_value(hpu: torch.nn.Module, image: np.ndarray) -> None:
    with pytest.raises(InputError, match="got 0"):
        SamplingPredictor(hpu, 0)
    with pytest.raises(InputError, match=r"\[2\].*0 \(most global\) to 1"):
        sample_image(hpu, image, 2, mean_scales=(2,))
    with pytest.raises(InputError, match="hpunet or probunet"):
        sample_image(UNet(1, 2, depth=1, base_features=2, padding="same"), image, 2)
    with pytest.raises(InputError, match="one image"):
        sample_image(hpu, np.zeros((2, 1, 32, 40), np.float32), 2)


def test_probunet_samples_too() -> None:
    torch.manual_seed(0)
    model = create_model("probunet", depth=2, base_features=4, latent_dim=2).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = sample_image(model, np.zeros((16, 24), np.float32), 3, memory_budget=None)
    assert out.samples.shape == (3, 16, 24) and out.mean.shape == (2, 16, 24)

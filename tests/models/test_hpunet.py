"""HPU-Net and the shared probabilistic pieces: KL and one-hot helpers, shapes in 2-D and 3-D,
sampling control (mean scales, generator, encoder once), gradients through the ELBO pass,
orthogonal init, architecture details, config validation and the Tileable members."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from probabilistic_cases import (
    check_generator,
    check_gradients,
    check_mean_sampling,
    check_orthogonal_init,
    check_shapes,
    count_calls,
    inputs,
)

from unetkit.errors import ConfigError, ShapeError
from unetkit.models import (
    HPUNet,
    ProbabilisticSegmenter,
    as_tileable,
    create_model,
    gaussian_kl,
    one_hot_labels,
)
from unetkit.models.hpunet import ResBlock
from unetkit.models.probabilistic import IGNORE


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(ndim: int = 2, **kw: int) -> HPUNet:
    torch.manual_seed(0)
    cfg = {"levels": 3, "base_channels": 4, "max_channels": 6, "blocks_per_level": 1, "latent_scales": 2,
           "latent_channels": 1}
    return HPUNet(1, 3, ndim, **{**cfg, **kw})


# ---------------------------------------------------------------- shared helpers
def test_gaussian_kl_hand_values() -> None:
    zero, one = torch.tensor(0.0), torch.tensor(1.0)
    assert gaussian_kl(one, zero, zero, zero).item() == pytest.approx(0.5)  # KL(N(1,1) || N(0,1))
    assert gaussian_kl(zero, torch.tensor(math.log(2.0)), zero, zero).item() == pytest.approx(
        -math.log(2.0) + 2.0 - 0.5)  # sigma_q = 2
    assert gaussian_kl(zero, zero, zero, one).item() == pytest.approx(1.0 + 0.5 * math.exp(-2.0) - 0.5)
    mu, ls = torch.randn(5, 3), torch.randn(5, 3)
    assert torch.allclose(gaussian_kl(mu, ls, mu, ls), torch.zeros(5, 3), atol=1e-6)
    q = torch.distributions.Normal(mu, ls.exp())
    mu_p, ls_p = torch.randn(5, 3), torch.randn(5, 3)
    ref = torch.distributions.kl_divergence(q, torch.distributions.Normal(mu_p, ls_p.exp()))
    torch.testing.assert_close(gaussian_kl(mu, ls, mu_p, ls_p), ref, atol=1e-5, rtol=1e-5)
    assert (gaussian_kl(mu, ls, mu_p, ls_p) >= 0).all()


def test_one_hot_labels_ignore_rows_are_zero() -> None:
    from unetkit.tasks.base import IGNORE as TASK_IGNORE

    assert IGNORE == TASK_IGNORE
    labels = torch.tensor([[[0, 2], [-1, 1]]])  # (1, 2, 2)
    hot = one_hot_labels(labels, 3)
    assert hot.shape == (1, 3, 2, 2) and hot.dtype == torch.float32
    assert hot[0, :, 1, 0].tolist() == [0, 0, 0]
    assert hot[0, :, 0, 0].tolist() == [1, 0, 0] and hot[0, :, 0, 1].tolist() == [0, 0, 1]
    assert hot.sum(1).tolist() == [[[1, 1], [0, 1]]]
    with pytest.raises(ShapeError, match=r"\[0, 3\)"):
        one_hot_labels(torch.tensor([[3]]), 3)


# ---------------------------------------------------------------- the model
@pytest.mark.parametrize(("ndim", "shape"), [(2, (8, 12)), (3, (4, 4, 8))])
def test_shapes(ndim: int, shape: tuple[int, ...]) -> None:
    model = tiny(ndim)
    assert isinstance(model, ProbabilisticSegmenter) and model.latent_scales == 2
    check_shapes(model, shape)
    x, _ = inputs(model, shape)
    skips = model.prior.encoder(x)
    assert [s.shape[2:] for s in skips] == [tuple(n // 2**i for n in shape) for i in range(3)]
    _, params, zs = model.prior.decode(skips)
    # latent scale s sits at level levels - 1 - s: 0 = coarsest
    assert [z.shape for z in zs] == [(2, 1, *(n // 2 ** (2 - s) for n in shape)) for s in range(2)]
    assert params[0].mu.shape == params[0].logsigma.shape == zs[0].shape


def test_mean_scales() -> None:
    check_mean_sampling(tiny(), (8, 8), some=(0,))
    check_mean_sampling(tiny(), (8, 8), some=(1,))
    with pytest.raises(ValueError, match="mean_scales"):
        tiny().sample(torch.zeros(1, 1, 8, 8), 2, mean_scales=(2,))


def test_generator_reproducible() -> None:
    check_generator(tiny(), (8, 8))


def test_sample_runs_encoder_once_and_no_posterior() -> None:
    model = tiny()
    enc, post = count_calls(model.prior.encoder), count_calls(model.posterior.encoder)
    with torch.no_grad():
        model.sample(torch.randn(2, 1, 8, 8), 5)
    assert enc == [1] and post == [0]


def test_elbo_feeds_posterior_latents_to_prior() -> None:
    """The prior core decodes with the posterior's latents at every scale (computing its own
    distributions there): rebuilt by hand from the parts, with the same generator."""
    model = tiny()
    x, labels = inputs(model, (8, 8))
    with torch.no_grad():
        q_skips = model.posterior.encoder(torch.cat([x, one_hot_labels(labels, 3)], 1))
        skips = model.prior.encoder(x)
        # reconstruct: posterior MEAN latents
        _, _, means = model.posterior.decode(q_skips, mean_scales=(0, 1))
        h, _, used = model.prior.decode(skips, latents=means)
        assert all(u is z for u, z in zip(used, means))
        torch.testing.assert_close(model.reconstruct(x, labels), model.stitching(h, skips), atol=0, rtol=0)
        # elbo_forward: posterior SAMPLES, KL per scale summed over space and channels
        _, q_params, zs = model.posterior.decode(q_skips, generator=torch.Generator().manual_seed(1))
        h, p_params, _ = model.prior.decode(skips, latents=zs)
        out = model.elbo_forward(x, labels, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out.logits, model.stitching(h, skips), atol=0, rtol=0)
    kl = torch.stack([gaussian_kl(q.mu, q.logsigma, p.mu, p.logsigma).sum((1, 2, 3))
                      for q, p in zip(q_params, p_params)], 1)
    torch.testing.assert_close(out.kl, kl)
    assert (kl > 0).all()  # posterior and prior differ (different inputs and weights)


def test_gradients_reach_prior_and_posterior() -> None:
    check_gradients(tiny(), (8, 8))


def test_orthogonal_init() -> None:
    check_orthogonal_init(tiny(base_channels=6, max_channels=12))


def test_architecture_details() -> None:
    model = HPUNet(1, 2, levels=4, base_channels=3, max_channels=10, blocks_per_level=2, latent_scales=2)
    assert model.channels == [3, 6, 10, 10]
    assert len(model.prior.encoder.stages) == 4 and all(len(s) == 2 for s in model.prior.encoder.stages)
    assert len(model.stitching.stages) == 2  # levels 1 and 0 after the latent scales at levels 3 and 2
    assert not hasattr(model.posterior, "stitching")
    same, change = ResBlock(8, 8, 2), ResBlock(4, 8, 2)
    assert isinstance(same.skip, torch.nn.Identity) and isinstance(change.skip, torch.nn.Conv2d)
    assert [c.out_channels for c in same.convs] == [4, 4, 4] and same.project.out_channels == 8
    assert not any(isinstance(m, torch.nn.modules.batchnorm._NormBase) for m in model.modules())
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in model.modules())


def test_config_validation() -> None:
    model = create_model("hpunet", levels=3, latent_scales=2, base_channels=2, max_channels=2)
    assert isinstance(model, HPUNet)
    with pytest.raises(ConfigError, match=r"latent_scales \(3\).*levels = 3"):
        create_model("hpunet", levels=3, latent_scales=3)
    with pytest.raises(ConfigError, match="model.levels"):
        create_model("hpunet", levels=1)
    with pytest.raises(ConfigError, match="model.latent_channels"):
        create_model("hpunet", latent_channels=0)
    with pytest.raises(ValueError, match="latent_scales"):
        HPUNet(1, 2, levels=2, latent_scales=2)


def test_tileable_members() -> None:
    model = tiny()
    assert as_tileable(model) is model
    assert model.padding == "same" and not model.tiling_exact
    assert "same padding" in model.tiling_inexact_reason and "latent" in model.tiling_inexact_reason
    assert model.shift_period == (4, 4) and model.min_input_shape() == (4, 4)
    assert model.valid_input_shapes((8, 9))[0] == (8, 8)
    with pytest.raises(ShapeError, match=r"not valid for this HPUNet"):
        model(torch.zeros(1, 1, 8, 10))
    with pytest.raises(ShapeError, match="channels"):
        model(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ShapeError, match="labels"):
        model.elbo_forward(torch.zeros(1, 1, 8, 8), torch.zeros(1, 8, 4, dtype=torch.long))
    # halo: levels 3, one block of three 3x3 convs: encoder 3*(1+2+4) + pools 1+2, decoder 3*(1+2) + ups 1+2
    assert model.halo == (36, 36)
    assert HPUNet(1, 2).halo == (306, 306)  # defaults: 5 levels, 2 blocks
    small, big = model.activation_bytes((32, 32)), model.activation_bytes((64, 64), batch_size=2)
    assert 0 < small < big == pytest.approx(8 * small, rel=1e-6)
    assert tiny(3).halo == (36, 36, 36)


SIZE_MODEL = tiny(latent_scales=1)


@settings(max_examples=8, deadline=None)
@given(h=st.integers(1, 4), w=st.integers(1, 4))
def test_output_shape_matches_forward(h: int, w: int) -> None:
    shape = (4 * h, 4 * w)
    with torch.no_grad():
        y = SIZE_MODEL(torch.zeros(1, 1, *shape))
    assert tuple(y.shape[2:]) == SIZE_MODEL.output_shape(shape) == shape

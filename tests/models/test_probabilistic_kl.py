"""KL of the probabilistic models: zero when the posterior equals the prior, positive otherwise."""

from __future__ import annotations

import pytest
import torch

from unetkit.models import create_model

CASES = {
    "hpunet": {"levels": 3, "base_channels": 4, "max_channels": 8, "blocks_per_level": 1, "latent_scales": 2},
    "probunet": {"depth": 2, "base_features": 4, "latent_dim": 3},
}


def posterior_as_prior(model: torch.nn.Module) -> None:
    """Copy the prior net's weights into the posterior net; the posterior's extra input channels
    (the one-hot labels) get zero weights, so it computes exactly the prior's distributions."""
    prior = model.prior.state_dict()
    with torch.no_grad():
        for name, value in model.posterior.state_dict().items():
            source = prior[name]
            value.zero_()
            value[tuple(slice(0, s) for s in source.shape)] = source


@pytest.mark.parametrize("name", sorted(CASES))
def test_kl_is_zero_when_the_posterior_equals_the_prior(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, **CASES[name])
    x = torch.randn(2, 1, 16, 16)
    y = torch.randint(0, 2, (2, 16, 16))
    kl = model.elbo_forward(x, y).kl
    assert kl.shape == (2, model.latent_scales) and (kl > 0).all()  # independent random nets differ
    posterior_as_prior(model)
    kl = model.elbo_forward(x, y, generator=torch.Generator().manual_seed(1)).kl
    torch.testing.assert_close(kl, torch.zeros_like(kl), atol=1e-5, rtol=0)

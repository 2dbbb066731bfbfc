"""Building blocks: centre crop, sampling, norm factory."""

from __future__ import annotations

import pytest
import torch

from unetkit.layers import ConvBlock, Downsample, Upsample, center_crop, make_norm


def test_center_crop_takes_the_middle() -> None:
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    y = center_crop(x, (2, 4))
    torch.testing.assert_close(y[0, 0], x[0, 0, 2:4, 1:5])
    with pytest.raises(ValueError, match="even"):
        center_crop(x, (3, 3))


def test_downsample_refuses_remainder() -> None:
    pool = Downsample((2, 2))
    assert pool(torch.zeros(1, 1, 4, 6)).shape[-2:] == (2, 3)
    with pytest.raises(ValueError, match="divisible"):
        pool(torch.zeros(1, 1, 5, 6))


def test_nearest_upsample_repeats_values() -> None:
    up = Upsample((2, 3), "nearest", 1, 1)
    x = torch.tensor([[[[1.0, 2.0]]]])
    y = up(x)
    assert y.shape == (1, 1, 2, 6)
    torch.testing.assert_close(y[0, 0, 1], torch.tensor([1.0, 1, 1, 2, 2, 2]))


def test_transposed_upsample_channels() -> None:
    up = Upsample((1, 2, 2), "transposed", 8, 4)
    assert up(torch.zeros(1, 8, 2, 3, 3)).shape == (1, 4, 2, 6, 6)


@pytest.mark.parametrize("norm", [None, "batch", "group", "instance"])
def test_conv_block_shapes(norm: str | None) -> None:
    block = ConvBlock(3, 6, 3, n_convs=2, padding="valid", norm=norm)  # type: ignore[arg-type]
    assert block(torch.randn(2, 3, 7, 8, 9)).shape == (2, 6, 3, 4, 5)
    same = ConvBlock(3, 6, 2, padding="same", norm=norm)  # type: ignore[arg-type]
    assert same(torch.randn(2, 3, 7, 8)).shape == (2, 6, 7, 8)


def test_group_norm_groups_divide() -> None:
    assert make_norm("group", 12, 2).num_groups == 6
    with pytest.raises(ValueError, match="norm"):
        make_norm("weird", 4, 2)  # type: ignore[arg-type]

"""A hand-set embedding U-Net whose output is known exactly, for tests of whole-image post-processing."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unetkit.models import UNet

SCALES = (1.0, -0.5)
"""Embedding channel e is ``SCALES[e] * x`` for an input pixel value x >= 0."""


def identity_embedding_unet(ndim: int = 2) -> UNet:
    """A depth-2 valid U-Net (no norm) whose embedding ``(2, *S)`` is ``SCALES[e] * x`` at every pixel.

    All weights are zero except the centre taps that pass input channel 0 through the top
    encoder block (the skip connection), the top decoder block (whose first input channels are
    the skip) and the head, so the output is the centre-cropped input, exactly (sums of zeros and
    one product by 1), aligned with the image as every valid U-Net output is.
    """
    net = UNet(1, len(SCALES), ndim=ndim, depth=2, base_features=2, norm=None).eval()
    centre = (0, 0) + (1,) * ndim
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        for block in (net.encoders[0], net.decoders[-1]):
            convs = [m for m in block if isinstance(m, (nn.Conv2d, nn.Conv3d))]
            for conv in convs:
                conv.weight[centre] = 1.0
        for e, s in enumerate(SCALES):
            net.head.weight[(e, 0) + (0,) * ndim] = s
    return net


def objects_image() -> tuple[np.ndarray, dict[str, tuple[slice, slice]]]:
    """A 100 x 100 float32 image: background 0 and four rectangles of values 5, 10, 15, 20.

    With tiles whose cores are 52 px (tile 92, depth 2), ``"A"`` and ``"C"`` cross the column
    border at 52, ``"D"`` the row border; ``"B"`` lies in the first tile and comes first in C
    order there, ``"A"`` first in the second tile: tile-wise clustering numbers ``"A"`` differently.
    """
    boxes = {"B": (slice(5, 20), slice(5, 25)), "A": (slice(10, 40), slice(30, 80)),
             "D": (slice(45, 62), slice(10, 20)), "C": (slice(60, 90), slice(40, 70))}
    img = np.zeros((100, 100), np.float32)
    for value, box in zip((10, 5, 20, 15), boxes.values()):
        img[box] = value
    return img, boxes

"""Samples of a probabilistic segmentation model (HPU-Net, probabilistic U-Net) for images of any size.

A model implementing :class:`~unetkit.models.probabilistic.ProbabilisticSegmenter` draws ``n``
segmentations per image with :meth:`sample` (encoder once, decoder ``n`` times). This module
runs it through the core's tiling path (:func:`~unetkit.inference.predict.run_plan` with a
predictor callable), so an image larger than one tile is predicted tile by tile with bounded
memory, and summarises the samples per pixel:

* ``samples``: ``(n, *S)`` label maps (argmax over classes of each sample);
* ``mean``: ``(C, *S)`` mean over samples of the softmax probabilities;
* ``std``: ``(C, *S)`` standard deviation over samples of those probabilities;
* ``entropy``: ``(*S)`` entropy (nats) of ``mean``, the total predictive uncertainty.

One tile covers the image whenever the activations of ``n`` samples fit the memory budget;
then the samples are coherent over the whole image. With several tiles every tile draws its
own latents (the same seed per tile), so a sample is not one coherent segmentation across tile
borders: :class:`~unetkit.inference.tiling.InexactTilingWarning` says so. The per-pixel mean,
standard deviation and entropy stay meaningful, since they only depend on each pixel's own
distribution.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from unetkit.errors import InputError
from unetkit.inference.predict import Transform, _check_dtype, _layout, run_plan
from unetkit.inference.tiling import DEFAULT_MEMORY_BUDGET, plan_tiles
from unetkit.models.probabilistic import ProbabilisticSegmenter


@dataclass(frozen=True)
class SampleSummary:
    """Samples of one image and their per-pixel summary (see the module docstring).

    Attributes:
        samples: ``(n, *S)`` int64 class labels, one map per sample.
        mean: ``(C, *S)`` float32 mean softmax probability per class.
        std: ``(C, *S)`` float32 standard deviation over samples of the probabilities.
        entropy: ``(*S)`` float32 entropy of ``mean`` in nats (0 = all samples certain and equal).
        n_tiles: tiles the image was cut into (1: samples coherent over the whole image).
    """

    samples: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    entropy: np.ndarray
    n_tiles: int


def check_probabilistic(model: Any) -> ProbabilisticSegmenter:
    """``model`` if it draws samples (HPU-Net, probabilistic U-Net); ``InputError`` otherwise."""
    if not isinstance(model, ProbabilisticSegmenter):
        raise InputError(f"{type(model).__name__} draws no samples; sampling needs a probabilistic model "
                         "(model.name hpunet or probunet)")
    return model


def check_mean_scales(mean_scales: Sequence[int], latent_scales: int) -> tuple[int, ...]:
    """Validated scale indices (0 = most global); ``InputError`` naming a bad one and the valid range."""
    out = tuple(int(s) for s in mean_scales)
    bad = [s for s in out if not 0 <= s < latent_scales]
    if bad:
        raise InputError(f"mean scale(s) {bad} do not exist: the model has {latent_scales} latent scale(s), "
                         f"0 (most global) to {latent_scales - 1} (most local)")
    return tuple(sorted(set(out)))


class SamplingPredictor:
    """Predictor callable for :func:`~unetkit.inference.predict.run_plan`: a batch of tiles
    ``(B, C_in, *I)`` -> ``(B, n + 2C, *I)``: the ``n`` samples' labels (as floats), then the
    mean and the standard deviation over samples of the class probabilities.

    Args:
        model: a probabilistic model in eval mode.
        n: samples per tile.
        mean_scales: latent scales fixed to their prior mean (0 = most global).
        seed: seed of the latent noise; every tile (and call) starts from it, so a run is
            reproducible whatever the tiling.
    """

    def __init__(self, model: nn.Module, n: int, mean_scales: Sequence[int] = (), seed: int = 0) -> None:
        self.model = check_probabilistic(model)
        if n < 1:
            raise InputError(f"the number of samples must be >= 1, got {n}")
        self.n, self.seed = int(n), int(seed)
        self.mean_scales = check_mean_scales(mean_scales, model.latent_scales)
        self.classes = int(model.out_channels)
        self.out_channels = self.n + 2 * self.classes

    def __call__(self, x: Tensor) -> Tensor:
        generator = torch.Generator(device=x.device).manual_seed(self.seed)
        logits = self.model.sample(x, self.n, mean_scales=self.mean_scales, generator=generator)  # (B, n, C, *I)
        if self.classes == 1:
            probs = torch.sigmoid(logits)  # (B, n, 1, *I): the foreground probability
            labels = (probs[:, :, 0] > 0.5).to(x.dtype)
        else:
            probs = torch.softmax(logits, dim=2)
            labels = logits.argmax(dim=2).to(x.dtype)
        mean = probs.mean(dim=1)
        std = probs.std(dim=1, unbiased=False)
        return torch.cat([labels, mean, std], dim=1)


def entropy_of(mean: np.ndarray) -> np.ndarray:
    """Entropy (nats) over the class axis 0 of probabilities ``(C, *S)`` (``C = 1``: a binary
    foreground probability) -> ``(*S)`` float32."""
    p = np.clip(mean.astype(np.float64), 1e-12, 1.0)
    if mean.shape[0] == 1:
        q = np.clip(1.0 - mean[0].astype(np.float64), 1e-12, 1.0)
        return (-(p[0] * np.log(p[0]) + q * np.log(q))).astype(np.float32)
    return (-(p * np.log(p)).sum(axis=0)).astype(np.float32)


@torch.no_grad()
def sample_image(
    model: nn.Module,
    array: Any,
    n: int,
    *,
    mean_scales: Sequence[int] = (),
    seed: int = 0,
    tile_shape: tuple[int, ...] | None = None,
    memory_budget: int | None = DEFAULT_MEMORY_BUDGET,
    transform: Transform | None = None,
    progress: bool = False,
) -> SampleSummary:
    """Draw ``n`` segmentations of one image and summarise them per pixel.

    Args:
        model: a probabilistic model (:class:`~unetkit.models.probabilistic.ProbabilisticSegmenter`).
        array: ``([C,] [Z,] Y, X)`` image (NumPy, or lazy Zarr / HDF5, read tile by tile).
        n: number of samples.
        mean_scales: latent scales fixed to their prior mean (0 = most global): e.g. all but
            the most global one to see what the global latent alone varies.
        seed: seed of the latent noise.
        tile_shape: network input tile (default: one tile if ``n`` samples of the whole image
            fit ``memory_budget``, else the largest tile that does).
        memory_budget: bytes for the ``n`` samples of one tile; ``None``: one tile.
        transform: intensity normalisation applied to every input tile.
        progress: progress bar over tiles.
    """
    shape = tuple(int(s) for s in array.shape)
    stacked, channels = _layout(model, shape)
    if stacked:
        raise InputError(f"sample_image takes one image, got a stack of shape {shape}; sample the images one by one")
    _check_dtype(array)
    predictor = SamplingPredictor(model, n, mean_scales, seed)
    spatial = shape[1:] if channels else shape
    plan = plan_tiles(model, spatial, tile_shape=tile_shape, memory_budget=memory_budget, batch_size=predictor.n)
    out = run_plan(model, array, plan, channels=channels, transform=transform, progress=progress, predictor=predictor)
    c = predictor.classes
    samples = out[:n].astype(np.int64)
    mean, std = out[n : n + c], out[n + c :]
    return SampleSummary(samples, mean, std, entropy_of(mean), plan.n_tiles)


SAMPLE_FILES = ("samples.tif", "mean.tif", "std.tif", "entropy.tif", "samples.png")
"""What :func:`sample_file` writes into its output folder (and nothing else)."""


def sample_file(
    model: nn.Module,
    cfg: Any,
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    n: int,
    *,
    mean_scales: Sequence[int] = (),
    seed: int = 0,
    axes: str | None = None,
    overwrite: bool = False,
    tile_shape: tuple[int, ...] | None = None,
    memory_budget: int | None = DEFAULT_MEMORY_BUDGET,
    figure: bool = True,
    progress: bool = False,
) -> SampleSummary:
    """Sample one image file with a trained run and write the results into the folder ``out_dir``.

    Files (:data:`SAMPLE_FILES`): ``samples.tif`` ``(n, [Z,] Y, X)`` uint8/uint16 labels (the
    sample index is stored as the channel axis), ``mean.tif`` and ``std.tif`` ``(C, [Z,] Y, X)``
    float32, ``entropy.tif`` ``([Z,] Y, X)`` float32, and ``samples.png`` (image, mean, standard
    deviation, entropy and the first samples). An existing file of these names is an error
    unless ``overwrite``; other files in the folder are never touched; every file is written
    only after all samples are computed, each atomically.

    Args:
        model, cfg: as returned by :func:`unetkit.runs.load_run` (normalisation from ``cfg.data``).
        source: image path (``file.h5:key`` for a dataset inside a container).
        n, mean_scales, seed, tile_shape, memory_budget, progress: see :func:`sample_image`.
        axes: axes of the source file (inferred when None).
        figure: also write ``samples.png``.
    """
    from unetkit.data.io import write_image
    from unetkit.inference.files import normalizer_for, open_source

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"-o {out} is a file; sample writes a folder of files ({', '.join(SAMPLE_FILES)})")
    names = SAMPLE_FILES if figure else SAMPLE_FILES[:-1]
    existing = [name for name in names if (out / name).exists()]
    if existing and not overwrite:
        raise InputError(f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them, or choose "
                         "another output folder")
    check_probabilistic(model)
    array, has_c = open_source(source, axes, ndim=cfg.model.ndim, channels=cfg.model.in_channels)
    normalizer = normalizer_for(array, has_c, cfg, name=str(source))
    summary = sample_image(model, array, n, mean_scales=mean_scales, seed=seed, tile_shape=tile_shape,
                           memory_budget=memory_budget, transform=normalizer, progress=progress)
    spatial = "ZYX"[3 - cfg.model.ndim :]
    out.mkdir(parents=True, exist_ok=True)
    labels = summary.samples.astype(np.uint8 if summary.samples.max(initial=0) <= 255 else np.uint16)
    write_image(out / "samples.tif", labels, axes="C" + spatial)
    write_image(out / "mean.tif", summary.mean, axes="C" + spatial)
    write_image(out / "std.tif", summary.std, axes="C" + spatial)
    write_image(out / "entropy.tif", summary.entropy, axes=spatial)
    if figure:
        from unetkit.report import save_samples_figure

        image = np.asarray(array[0] if has_c else array, dtype=np.float32)
        save_samples_figure(out / "samples.png", image, summary.samples, summary.mean, summary.std, summary.entropy)
    return summary

"""In-memory datasets of image/label pairs and random patch sampling sized by the model.

A :class:`Sample` is one image ``(C, *S)`` float32 (normalised) with its labels ``(*S)`` and,
optionally, an annotated background mask ``(*S)`` bool (sparse labels; the task turns it into
labelled background in the training target, see :meth:`unetkit.tasks.Task.prepare_background`).
:class:`PatchSampler` draws batches of input patches of a valid input shape I together with
the label patches of the matching output shape O (the centre of the input window): with
valid padding the labels are the centre crop, so no label pixel is wasted or misaligned.
Input context outside the image is mirrored; target pixels outside the image are
``ignore_index``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unetkit.data.io import (
    check_image,
    pair_images_labels,
    pair_masks,
    read_image,
    read_labels,
)
from unetkit.data.normalize import normalize
from unetkit.data.sparse import check_background
from unetkit.data.windows import read_window
from unetkit.errors import InputError

Augment = Callable[[np.ndarray, np.ndarray | None, np.random.Generator], tuple[np.ndarray, np.ndarray | None]]


@dataclass
class Sample:
    """One training image.

    Attributes:
        image: ``(C, *S)`` float32, normalised.
        labels: ``(*S)`` int64 training target (after the task's label preparation).
        name: file stem or generator id, for messages and outputs.
        background: ``(*S)`` bool annotated background mask (True = background painted by the
            annotator; it never overlaps an object of ``labels``), or None (no mask).
    """

    image: np.ndarray
    labels: np.ndarray
    name: str = ""
    background: np.ndarray | None = None


def to_channels_first(array: np.ndarray, axes: str, *, ndim: int, channels: int, name: str) -> np.ndarray:
    """``[C]ZYX``/``[C]YX`` array with canonical ``axes`` -> ``(C, *spatial)``, checking ndim and C."""
    spatial = axes.replace("C", "")
    if len(spatial) != ndim:
        raise InputError(
            f"{name}: axes {axes!r} give a {len(spatial)}-D image but the model is {ndim}-D "
            f"(expected {'ZYX' if ndim == 3 else 'YX'} spatial axes); pass the right axes or set model.ndim"
        )
    out = array if "C" in axes else array[None]
    if out.shape[0] != channels:
        raise InputError(f"{name}: image has {out.shape[0]} channel(s) but model.in_channels is {channels}")
    return out


def make_sample(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    ndim: int,
    channels: int = 1,
    normalize_mode: str = "percentile",
    normalize_kwargs: dict[str, Any] | None = None,
    prepare_labels: Callable[[np.ndarray], np.ndarray] | None = None,
    name: str = "",
    image_axes: str | None = None,
    background: np.ndarray | None = None,
    background_name: str | None = None,
) -> Sample:
    """Validate and normalise one image/label pair given as arrays.

    Args:
        image: ``([C,] *S)``; ``image_axes`` (canonical order, e.g. ``"CYX"``) says whether C is present;
            when None, a C axis is assumed iff ``image.ndim == ndim + 1``.
        labels: ``(*S)`` integer labels.
        background: optional ``(*S)`` annotated background mask (nonzero = background); checked
            against the prepared labels (same shape, no overlap with objects,
            :func:`unetkit.data.sparse.check_background`) and kept as bool.
        background_name: how messages name the mask (its file); default ``name``.
    """
    check_image(image, name=name or "image")
    axes = image_axes or (("C" if image.ndim == ndim + 1 else "") + "ZYX"[3 - ndim :])
    if len(axes) != image.ndim:
        raise InputError(f"{name or 'image'}: shape {image.shape} does not match axes {axes!r}")
    img = to_channels_first(image, axes, ndim=ndim, channels=channels, name=name or "image")
    if labels.shape != img.shape[1:]:
        raise InputError(
            f"{name or 'sample'}: image spatial shape {img.shape[1:]} differs from label shape {labels.shape}"
        )
    kwargs = dict(normalize_kwargs or {})
    img = normalize(img.astype(np.float32, copy=False), normalize_mode, channel_axis=0, **kwargs)  # type: ignore[arg-type]
    lab = prepare_labels(labels) if prepare_labels else labels.astype(np.int64, copy=False)
    mask = None
    if background is not None:
        mask = check_background(lab, background, name=background_name or name or "background mask")
    return Sample(np.ascontiguousarray(img, dtype=np.float32), np.ascontiguousarray(lab, dtype=np.int64), name,
                  mask)


def load_folder(
    image_dir: str | Path,
    label_dir: str | Path,
    *,
    ndim: int,
    channels: int = 1,
    axes: str | None = None,
    label_axes: str | None = None,
    normalize_mode: str = "percentile",
    normalize_kwargs: dict[str, Any] | None = None,
    prepare_labels: Callable[[np.ndarray], np.ndarray] | None = None,
    background: str | Path | None = None,
) -> list[Sample]:
    """Read all image/label pairs of two folders (paired by file stem) into memory.

    ``background``: optional annotated background masks (a folder paired with the images by
    file stem like the labels, or one file for a single image; read like labels, with
    ``label_axes``; nonzero = background). Images without a mask get ``Sample.background = None``.
    The files are only read, never modified.

    Raises ``InputError`` when every label image is empty (all 0): there is nothing to learn.
    """
    pairs = pair_images_labels(image_dir, label_dir)
    masks = pair_masks([img for img, _ in pairs], background) if background is not None else {}
    samples = []
    for img_path, lab_path in pairs:
        image, img_axes = read_image(img_path, axes=axes)
        labels, _ = read_labels(lab_path, axes=label_axes)
        mask_path = masks.get(img_path)
        mask = read_labels(mask_path, axes=label_axes)[0] if mask_path is not None else None
        samples.append(
            make_sample(image, labels, ndim=ndim, channels=channels, normalize_mode=normalize_mode,
                        normalize_kwargs=normalize_kwargs, prepare_labels=prepare_labels,
                        name=img_path.name, image_axes=img_axes, background=mask,
                        background_name=f"'{mask_path}'" if mask_path is not None else None)
        )
    if all(not s.labels.any() for s in samples):
        raise InputError(f"all label images in {label_dir} are empty (only 0 = background): nothing to learn")
    return samples


def split_samples(samples: Sequence[Sample], fraction: float, rng: np.random.Generator) -> tuple[list[Sample], list[Sample]]:
    """Random train/validation split; at least one of each when there are two or more samples."""
    n = len(samples)
    if n == 0:
        raise InputError("no training samples")
    if not 0 <= fraction <= 1:
        raise InputError(f"validation fraction must be in [0, 1], got {fraction}")
    n_val = int(round(fraction * n))
    if fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    order = rng.permutation(n)
    val = [samples[i] for i in sorted(order[:n_val])]
    train = [samples[i] for i in sorted(order[n_val:])]
    return train, val


class PatchSampler:
    """Random training batches from in-memory samples.

    Args:
        samples: training samples.
        input_shape: valid spatial input shape I of the model.
        output_shape: the model's output shape O for I (O = I for same padding).
        batch_size: patches per batch.
        rng: the generator all randomness comes from (its state is checkpointed for resuming).
        augment: ``augment(image (C, *I), labels (*I), rng) -> (image, labels)`` applied before the
            labels are centre-cropped to O.
        ignore_index: target value for pixels outside the image.

    Images are picked with probability proportional to their number of pixels.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        input_shape: Sequence[int],
        output_shape: Sequence[int],
        *,
        batch_size: int,
        rng: np.random.Generator,
        augment: Augment | None = None,
        ignore_index: int = -1,
    ) -> None:
        if not samples:
            raise InputError("no training samples")
        self.samples = list(samples)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.output_shape = tuple(int(s) for s in output_shape)
        margins = [i - o for i, o in zip(self.input_shape, self.output_shape)]
        if any(m < 0 or m % 2 for m in margins):
            raise ValueError(f"input {self.input_shape} and output {self.output_shape} are not centre-aligned")
        self.halo = tuple(m // 2 for m in margins)
        self.batch_size = batch_size
        self.rng = rng
        self.augment = augment
        self.ignore_index = ignore_index
        sizes = np.array([s.labels.size for s in self.samples], dtype=np.float64)
        self.weights = sizes / sizes.sum()

    def _one(self) -> tuple[np.ndarray, np.ndarray]:
        sample = self.samples[int(self.rng.choice(len(self.samples), p=self.weights))]
        spatial = sample.labels.shape
        start = []
        for size, o, h in zip(spatial, self.output_shape, self.halo):
            lo, hi = (0, size - o) if size >= o else (size - o, 0)
            start.append(int(self.rng.integers(lo, hi + 1)) - h)
        image = read_window(sample.image, start, self.input_shape, fill=None)
        labels = read_window(sample.labels, start, self.input_shape, fill=self.ignore_index)
        if self.augment is not None:
            image, labels = self.augment(image, labels, self.rng)
        crop = tuple(slice(h, h + o) for h, o in zip(self.halo, self.output_shape))
        return np.asarray(image, dtype=np.float32), np.asarray(labels[crop], dtype=np.int64)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One batch: images ``(B, C, *I)`` float32 and targets ``(B, *O)`` int64."""
        pairs = [self._one() for _ in range(self.batch_size)]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

"""Augmentations applied consistently to an image and its labels, in 2-D and 3-D.

Every transform is a small callable class::

    image, labels = transform(image, labels, rng)

* ``image``: ``(C, *spatial)`` array (``(C, Y, X)`` or ``(C, Z, Y, X)``); returned as a new
  C-contiguous ``float32`` array (inputs are never modified in place).
* ``labels``: ``(*spatial)`` integer array, or ``None`` (then ``None`` is returned). Geometric
  transforms move labels with the image (nearest-neighbour where interpolation is needed);
  intensity transforms return them untouched. The label dtype is kept.
* ``rng``: a :class:`numpy.random.Generator`, the only source of randomness, so the same
  seed reproduces the same output exactly.

The number of spatial axes is inferred from ``labels`` when given, else ``image.ndim - 1``;
only 2 or 3 spatial axes are accepted. Spatial axis indices (``axes`` arguments) count the
spatial axes only: ``0`` is the first spatial axis (Z in 3-D, Y in 2-D) and ``-1`` is X.

:func:`build_augmentation` builds a :class:`Compose` from a plain (YAML-friendly) dict.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from unetkit.data.rescale import resize_to
from unetkit.errors import InputError

__all__ = [
    "AUGMENTATION_KEYS",
    "Compose",
    "ElasticDeform",
    "GaussianBlur",
    "GaussianNoise",
    "IntensityJitter",
    "RandomFlip",
    "RandomRot90",
    "ScaleJitter",
    "Transform",
    "build_augmentation",
]

Pair = tuple[np.ndarray, "np.ndarray | None"]


# --------------------------------------------------------------------------- helpers


def _check_p(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) or not 0.0 <= p <= 1.0:
        raise InputError(f"p={p!r} must be a probability in [0, 1]")
    return float(p)


def _check_range(value: float | Sequence[float], name: str, *, lower: float | None = None) -> tuple[float, float]:
    """A ``(lo, hi)`` range with ``lo <= hi``; a single number means ``(v, v)``."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        lo = hi = float(value)
    else:
        try:
            seq = [float(v) for v in value]  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise InputError(f"{name}={value!r} must be a number or a (low, high) pair") from None
        if len(seq) != 2:
            raise InputError(f"{name}={value!r} must be a number or a (low, high) pair")
        lo, hi = seq
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise InputError(f"{name}={value!r} must be a finite (low, high) pair with low <= high")
    if lower is not None and lo < lower:
        raise InputError(f"{name}={value!r} must have both ends >= {lower}")
    return lo, hi


def _per_axis(value: float | Sequence[float], name: str, *, positive: bool = False) -> tuple[float, ...]:
    """A non-negative scalar or a tuple of them (one per spatial axis)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        vals: tuple[float, ...] = (float(value),)
    else:
        try:
            vals = tuple(float(v) for v in value)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise InputError(f"{name}={value!r} must be a number or one number per spatial axis") from None
        if len(vals) not in (1, 2, 3):
            raise InputError(f"{name}={value!r} must be a number or one number per spatial axis (2 or 3)")
    bad = [v for v in vals if not math.isfinite(v) or v < 0 or (positive and v == 0)]
    if bad:
        which = "> 0" if positive else ">= 0"
        raise InputError(f"{name}={value!r} must be finite and {which}")
    return vals


def _expand(vals: tuple[float, ...], ndim: int, name: str) -> tuple[float, ...]:
    if len(vals) == 1:
        return vals * ndim
    if len(vals) != ndim:
        raise InputError(f"{name}={vals!r} has {len(vals)} values but the data has {ndim} spatial axes")
    return vals


def _prepare(image: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Validate shapes, return a float32 image, the labels and the number of spatial axes."""
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.number) and image.dtype != bool:
        raise InputError(f"image dtype {image.dtype} is not numeric; expected a float32 (C, *spatial) array")
    image = image.astype(np.float32, copy=False)
    if labels is not None:
        labels = np.asarray(labels)
        if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
            raise InputError(f"labels dtype {labels.dtype} is not an integer type; expected integer label ids")
        ndim = labels.ndim
        if image.ndim != ndim + 1 or image.shape[1:] != labels.shape:
            raise InputError(
                f"image shape {image.shape} does not fit labels shape {labels.shape}; "
                f"expected image shape (C, {', '.join(map(str, labels.shape))})"
            )
    else:
        ndim = image.ndim - 1
    if ndim not in (2, 3):
        raise InputError(
            f"image of shape {image.shape} has {ndim} spatial axes; expected (C, Y, X) or (C, Z, Y, X)"
        )
    return image, labels, ndim


def _spatial_axis(ax: int, ndim: int, name: str) -> int:
    if not -ndim <= ax < ndim:
        raise InputError(f"{name} axis {ax} is out of range for {ndim} spatial axes; expected [{-ndim}, {ndim - 1}]")
    return ax % ndim


def _check_rng(rng: np.random.Generator) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise InputError(
            f"rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


# --------------------------------------------------------------------------- base


class Transform(ABC):
    """Base class: applies :meth:`apply` with probability ``p``.

    Subclasses implement ``apply(image, labels, ndim, rng) -> (image, labels)`` on a validated
    float32 image ``(C, *spatial)`` and labels ``(*spatial)`` or ``None``.
    """

    p: float = 1.0

    def __call__(self, image: np.ndarray, labels: np.ndarray | None, rng: np.random.Generator) -> Pair:
        """Transform ``image`` ``(C, *spatial)`` and ``labels`` ``(*spatial)`` or ``None``."""
        _check_rng(rng)
        image, labels, ndim = _prepare(image, labels)
        if self.p < 1.0 and not rng.random() < self.p:
            return image.copy(), (None if labels is None else labels.copy())
        out_img, out_lab = self.apply(image, labels, ndim, rng)
        out_img = np.ascontiguousarray(out_img, dtype=np.float32)
        if out_img is image:
            out_img = out_img.copy()
        if out_lab is not None:
            out_lab = np.ascontiguousarray(out_lab)
            if out_lab is labels:
                out_lab = out_lab.copy()
        return out_img, out_lab

    @abstractmethod
    def apply(self, image: np.ndarray, labels: np.ndarray | None, ndim: int, rng: np.random.Generator) -> Pair:
        """The transform itself, applied with probability ``p`` by :meth:`__call__`."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


# --------------------------------------------------------------------------- geometric


class RandomFlip(Transform):
    """Flip each spatial axis independently with probability ``p``.

    Args:
        axes: spatial axes that may be flipped (0 = first spatial axis, -1 = X); ``None``
            means all spatial axes.
        p: probability of flipping each axis (drawn independently per axis).
    """

    def __init__(self, axes: Sequence[int] | None = None, p: float = 0.5) -> None:
        self.axes = None if axes is None else tuple(int(a) for a in axes)
        self.p_axis = _check_p(p)

    def __call__(self, image: np.ndarray, labels: np.ndarray | None, rng: np.random.Generator) -> Pair:
        _check_rng(rng)
        image, labels, ndim = _prepare(image, labels)
        return self.apply(image, labels, ndim, rng)

    def apply(self, image: np.ndarray, labels: np.ndarray | None, ndim: int, rng: np.random.Generator) -> Pair:
        axes = range(ndim) if self.axes is None else [_spatial_axis(a, ndim, "flip") for a in self.axes]
        axes = sorted(set(axes))
        draws = rng.random(len(axes)) < self.p_axis
        flip = tuple(a for a, d in zip(axes, draws) if d)
        out_img = np.flip(image, axis=tuple(a + 1 for a in flip)) if flip else image
        out_lab = None if labels is None else (np.flip(labels, axis=flip) if flip else labels)
        out_img = np.array(out_img, dtype=np.float32, order="C", copy=True)
        out_lab = None if out_lab is None else np.array(out_lab, order="C", copy=True)
        return out_img, out_lab

    def __repr__(self) -> str:
        return f"RandomFlip(axes={self.axes!r}, p={self.p_axis!r})"


class RandomRot90(Transform):
    """Rotate by ``k * 90`` degrees in the plane of two spatial axes, ``k`` uniform in 0..3.

    Shapes never change: when the two axes have different sizes, only ``k`` in ``{0, 2}``
    (identity or 180 degrees) is drawn, since a 90 degree rotation would swap the sizes. The
    patch samplers give patches that are square in YX, where all four rotations occur.

    Args:
        axes: the two spatial axes spanning the rotation plane (default YX: ``(-2, -1)``).
        p: probability of applying a rotation at all.
    """

    def __init__(self, axes: Sequence[int] = (-2, -1), p: float = 1.0) -> None:
        axes = tuple(int(a) for a in axes)
        if len(axes) != 2:
            raise InputError(f"axes={axes!r} must name exactly two spatial axes")
        self.axes = axes
        self.p = _check_p(p)

    def apply(self, image: np.ndarray, labels: np.ndarray | None, ndim: int, rng: np.random.Generator) -> Pair:
        a0 = _spatial_axis(self.axes[0], ndim, "rot90")
        a1 = _spatial_axis(self.axes[1], ndim, "rot90")
        if a0 == a1:
            raise InputError(f"rot90 axes={self.axes!r} name the same axis twice; expected two different axes")
        k = int(rng.integers(4))
        shape = image.shape[1:]
        if shape[a0] != shape[a1]:
            k = 2 * (k // 2)  # 0 or 2 (identity or 180 degrees), equally likely
        if k == 0:
            return image, labels
        out_img = np.rot90(image, k=k, axes=(a0 + 1, a1 + 1))
        out_lab = None if labels is None else np.rot90(labels, k=k, axes=(a0, a1))
        return out_img, out_lab


def _kernel_l2(sigma: float) -> float:
    """L2 norm of scipy's 1-D Gaussian kernel of width ``sigma`` (default truncation)."""
    radius = int(4.0 * sigma + 0.5)
    impulse = np.zeros(2 * radius + 1)
    impulse[radius] = 1.0
    kernel = ndi.gaussian_filter1d(impulse, sigma, mode="constant")
    return float(np.sqrt(np.sum(kernel**2)))


class ElasticDeform(Transform):
    """Smooth random elastic deformation of image and labels.

    A displacement field is drawn per spatial axis as white Gaussian noise smoothed by a
    Gaussian of width ``sigma`` px and scaled so that the displacement along that axis has a
    standard deviation of ``alpha`` px (``alpha`` is in pixels, independent of ``sigma``; the
    largest displacements are about ``3 * alpha``). Output pixel ``x`` takes the value at
    ``x + d(x)``: the image is interpolated linearly (``order=1``), the labels by nearest
    neighbour (``order=0``) at the same coordinates, both with ``mode='reflect'``, so image
    and labels stay aligned. The deformation folds (is not one-to-one) where the field's
    gradient exceeds 1, i.e. when ``alpha`` is large compared to ``sigma`` (its gradient has a
    standard deviation of about ``alpha / (sqrt(2) * sigma)``).

    For speed the noise is smoothed on a grid subsampled by ``max(1, floor(sigma / 2))`` and
    upsampled linearly to full resolution (exact for ``sigma < 4``; otherwise the
    subsampling is finer than the smoothing, so the field is still smooth).

    Args:
        alpha: displacement standard deviation in pixels; a number for all spatial axes or
            one per axis (e.g. ``(0, 8, 8)`` for anisotropic 3-D: no displacement along Z).
        sigma: smoothing width in pixels (> 0); a number or one per axis.
        p: probability of applying the deformation.
    """

    def __init__(
        self,
        alpha: float | Sequence[float] = 4.0,
        sigma: float | Sequence[float] = 10.0,
        p: float = 0.5,
    ) -> None:
        self.alpha = _per_axis(alpha, "alpha")
        self.sigma = _per_axis(sigma, "sigma", positive=True)
        self.p = _check_p(p)

    def displacement(self, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
        """Draw a displacement field of shape ``(ndim, *shape)`` (float32, in pixels)."""
        shape = tuple(int(s) for s in shape)
        ndim = len(shape)
        alpha = _expand(self.alpha, ndim, "alpha")
        sigma = _expand(self.sigma, ndim, "sigma")
        step = tuple(max(1, int(s // 2)) for s in sigma)
        # coarse grid that covers 0..n-1 after the zoom (no subsampling where step is 1)
        coarse = tuple(n if f == 1 else -(-n // f) + 1 for n, f in zip(shape, step))
        fine_sigma = tuple(s / f for s, f in zip(sigma, step))
        # Std of unit white noise after the (separable, discrete) Gaussian filter: the root of
        # the product over axes of the sum of squared kernel weights.
        noise_std = float(np.prod([_kernel_l2(s) for s in fine_sigma]))
        field = np.zeros((ndim, *shape), dtype=np.float32)
        for ax in range(ndim):
            if alpha[ax] == 0:
                continue
            noise = rng.standard_normal(coarse, dtype=np.float32)
            smooth = ndi.gaussian_filter(noise, fine_sigma, mode="wrap")
            smooth *= np.float32(alpha[ax] / noise_std)
            if coarse != shape:
                # output shape round(coarse * step) >= shape; the extra margin is cropped
                up = ndi.zoom(smooth, step, order=1, mode="nearest", grid_mode=False)
                smooth = up[tuple(slice(0, n) for n in shape)]
            field[ax] = smooth
        return field

    def apply(self, image: np.ndarray, labels: np.ndarray | None, ndim: int, rng: np.random.Generator) -> Pair:
        shape = image.shape[1:]
        if all(a == 0 for a in _expand(self.alpha, ndim, "alpha")):
            _expand(self.sigma, ndim, "sigma")
            return image, labels
        coords = self.displacement(shape, rng)
        grid = np.indices(shape, dtype=np.float32)
        coords += grid
        out_img = np.empty_like(image)
        for c in range(image.shape[0]):
            ndi.map_coordinates(image[c], coords, output=out_img[c], order=1, mode="reflect")
        out_lab = None
        if labels is not None:
            src = labels.view(np.uint8) if labels.dtype == bool else labels
            out_lab = ndi.map_coordinates(src, coords, output=src.dtype, order=0, mode="reflect")
            if labels.dtype == bool:
                out_lab = out_lab.view(bool)
        return out_img, out_lab


class ScaleJitter(Transform):
    """Random zoom of image and labels by a factor in ``[1 / r, r]``, then centre crop or pad back.

    The factor is drawn **log-uniformly** (``exp(uniform(-log r, log r))``), so zooming in and out
    by the same amount are equally likely. The image is rescaled like
    :func:`unetkit.data.rescale.rescale_image` (bilinear / trilinear, antialiased when shrinking),
    the labels by nearest neighbour (values always taken from the input), both to
    ``max(1, round(n * factor))`` per spatial axis. The result is then centre-cropped (zoom in)
    or centre-padded (zoom out) back to the input shape, so the patch shape never changes and
    the transform composes with the others. Padding: the image is mirrored (``reflect``, so
    intensity statistics stay natural and no artificial edge appears), the labels get
    ``label_fill`` (default ``-1``, the trainer's ignore value :data:`unetkit.tasks.IGNORE`, so
    padded pixels do not count in the loss; ``0`` is used for unsigned or bool labels, which
    cannot hold ``-1``).

    Args:
        r: largest zoom factor (> 1); config: ``augment: {scale_jitter: r}`` or
            ``{scale_jitter: {r: 1.5, p: 0.5}}``.
        p: probability of applying the zoom.
        label_fill: label value of padded pixels.
    """

    def __init__(self, r: float = 1.5, p: float = 1.0, label_fill: int = -1) -> None:
        if isinstance(r, bool) or not isinstance(r, (int, float, np.integer, np.floating)) \
                or not (math.isfinite(float(r)) and float(r) > 1.0):
            raise InputError(f"scale_jitter r={r!r} must be a finite number > 1 (factors are drawn in [1/r, r])")
        if isinstance(label_fill, bool) or not isinstance(label_fill, (int, np.integer)):
            raise InputError(f"scale_jitter label_fill={label_fill!r} must be an integer label value")
        self.r = float(r)
        self.p = _check_p(p)
        self.label_fill = int(label_fill)

    def draw(self, rng: np.random.Generator) -> float:
        """One zoom factor, log-uniform in ``[1 / r, r]``."""
        return float(np.exp(rng.uniform(-math.log(self.r), math.log(self.r))))

    def apply(self, image: np.ndarray, labels: np.ndarray | None, ndim: int, rng: np.random.Generator) -> Pair:
        return self.zoom(image, labels, self.draw(rng))

    def zoom(self, image: np.ndarray, labels: np.ndarray | None, factor: float) -> Pair:
        """Zoom ``image`` ``(C, *S)`` and ``labels`` ``(*S)`` by ``factor``, then crop / pad back to ``S``."""
        shape = image.shape[1:]
        scaled = tuple(max(1, round(n * factor)) for n in shape)
        if scaled == shape:
            return image, labels
        out_img = _fit(resize_to(image, scaled), shape, mode="reflect")
        if labels is None:
            return out_img, None
        fill = self.label_fill
        if labels.dtype == bool or (np.issubdtype(labels.dtype, np.unsignedinteger) and fill < 0):
            fill = 0
        out_lab = _fit(resize_to(labels[None], scaled)[0][None], shape, mode="constant", fill=fill)[0]
        return out_img, out_lab


def _fit(data: np.ndarray, shape: tuple[int, ...], *, mode: str, fill: int = 0) -> np.ndarray:
    """Centre-crop or centre-pad ``(C, *S)`` data to ``(C, *shape)`` (``mode``: np.pad mode)."""
    crop = [slice(None)]
    pad = [(0, 0)]
    for n, m in zip(shape, data.shape[1:]):
        if m >= n:
            start = (m - n) // 2
            crop.append(slice(start, start + n))
            pad.append((0, 0))
        else:
            crop.append(slice(None))
            pad.append(((n - m) // 2, n - m - (n - m) // 2))
    out = data[tuple(crop)]
    if any(p != (0, 0) for p in pad):
        if mode == "constant":
            out = np.pad(out, pad, mode="constant", constant_values=fill)
        else:
            out = np.pad(out, pad, mode=mode)  # type: ignore[call-overload]
    return out


# --------------------------------------------------------------------------- intensity


class GaussianNoise(Transform):
    """Add Gaussian noise to the image (labels untouched).

    Args:
        sigma: noise standard deviation, drawn uniformly from this ``(low, high)`` range
            once per call (same for all channels).
        p: probability of adding noise.
    """

    def __init__(self, sigma: float | Sequence[float] = (0.0, 0.1), p: float = 0.5) -> None:
        self.sigma = _check_range(sigma, "sigma", lower=0.0)
        self.p = _check_p(p)

    def apply(self, image: np.ndarray, labels: np.ndarray | None, ndim: int, rng: np.random.Generator) -> Pair:
        s = rng.uniform(*self.sigma)
        noise = rng.standard_normal(image.shape, dtype=np.float32)
        noise *= np.float32(s)
        return image + noise, labels


class GaussianBlur(Transform):
    """Blur the image along its spatial axes (never across channels; labels untouched).

    Args:
        sigma: blur width in pixels, drawn uniformly from this ``(low, high)`` range once per
            call and used for every spatial axis.
        p: probability of blurring.
    """

    def __init__(self, sigma: float | Sequence[float] = (0.0, 1.0), p: float = 0.5) -> None:
        self.sigma = _check_range(sigma, "sigma", lower=0.0)
        self.p = _check_p(p)

    def apply(self, image: np.ndarray, labels: np.ndarray | None, ndim: int, rng: np.random.Generator) -> Pair:
        s = float(rng.uniform(*self.sigma))
        if s == 0.0:
            return image, labels
        return ndi.gaussian_filter(image, sigma=(0.0,) + (s,) * ndim, mode="reflect"), labels


class IntensityJitter(Transform):
    """Random gamma, contrast scale and brightness shift of the image (labels untouched).

    ``out = scale * g(image) + shift`` where ``g`` is the identity, or, with ``gamma`` given,
    a gamma correction on the image's own range: ``g(x) = lo + (hi - lo) * ((x - lo) / (hi -
    lo)) ** gamma`` with ``lo, hi`` the channel's min and max (a constant channel is left as
    it is).

    Args:
        scale: multiplicative factor range ``(low, high)``.
        shift: additive offset range ``(low, high)``.
        gamma: exponent range ``(low, high)`` with ``low > 0``, or ``None`` for no gamma.
        per_channel: draw scale, shift and gamma per channel instead of once per image.
        p: probability of applying the jitter.
    """

    def __init__(
        self,
        scale: float | Sequence[float] = (0.8, 1.2),
        shift: float | Sequence[float] = (-0.1, 0.1),
        gamma: float | Sequence[float] | None = None,
        per_channel: bool = False,
        p: float = 0.5,
    ) -> None:
        self.scale = _check_range(scale, "scale")
        self.shift = _check_range(shift, "shift")
        self.gamma = None if gamma is None else _check_range(gamma, "gamma")
        if self.gamma is not None and self.gamma[0] <= 0:
            raise InputError(f"gamma={gamma!r} must be a range of positive exponents")
        self.per_channel = bool(per_channel)
        self.p = _check_p(p)

    def apply(self, image: np.ndarray, labels: np.ndarray | None, ndim: int, rng: np.random.Generator) -> Pair:
        n = image.shape[0] if self.per_channel else 1
        bshape = (n,) + (1,) * ndim
        out = image
        if self.gamma is not None:
            g = rng.uniform(*self.gamma, size=n).reshape(bshape).astype(np.float32)
            axes = tuple(range(1, ndim + 1))
            lo = image.min(axis=axes, keepdims=True)
            hi = image.max(axis=axes, keepdims=True)
            rng_ = hi - lo
            safe = np.where(rng_ > 0, rng_, np.float32(1))
            t = np.clip((image - lo) / safe, 0.0, 1.0)
            out = np.where(rng_ > 0, lo + rng_ * t**g, image).astype(np.float32)
        scale = rng.uniform(*self.scale, size=n).reshape(bshape).astype(np.float32)
        shift = rng.uniform(*self.shift, size=n).reshape(bshape).astype(np.float32)
        return out * scale + shift, labels


# --------------------------------------------------------------------------- composition


class Compose:
    """Apply transforms in order: ``Compose([t1, t2])(image, labels, rng)``.

    An empty ``Compose`` is the identity (it still returns copies, as ``float32``).
    """

    def __init__(self, transforms: Sequence[Any] = ()) -> None:
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise InputError(f"Compose got {t!r}, which is not callable; expected transforms")

    def __call__(self, image: np.ndarray, labels: np.ndarray | None, rng: np.random.Generator) -> Pair:
        """Apply every transform to ``image`` ``(C, *spatial)`` and ``labels`` ``(*spatial)``."""
        _check_rng(rng)
        image, labels, _ = _prepare(image, labels)
        if not self.transforms:
            return image.copy(), (None if labels is None else labels.copy())
        for t in self.transforms:
            image, labels = t(image, labels, rng)
        return image, labels

    def __len__(self) -> int:
        return len(self.transforms)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.transforms)

    def __getitem__(self, i: int) -> Any:
        return self.transforms[i]

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


# Application order is fixed (geometric first, noise last), whatever the dict order.
_BUILDERS: dict[str, type[Transform]] = {
    "scale_jitter": ScaleJitter,
    "flip": RandomFlip,
    "rot90": RandomRot90,
    "elastic": ElasticDeform,
    "intensity": IntensityJitter,
    "blur": GaussianBlur,
    "noise": GaussianNoise,
}
AUGMENTATION_KEYS: tuple[str, ...] = tuple(_BUILDERS)

_SCALAR_OPTION = {"scale_jitter": "r"}
"""Keys whose value may be a bare number, the given option: ``scale_jitter: 1.5`` means ``{r: 1.5}``."""


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def build_augmentation(spec: Mapping[str, Any] | None, ndim: int) -> Compose:
    """Build a :class:`Compose` from a plain dict (e.g. a YAML config section).

    Keys (all optional) and their transforms: ``scale_jitter`` (:class:`ScaleJitter`; a bare
    number is its ``r``), ``flip`` (:class:`RandomFlip`), ``rot90``
    (:class:`RandomRot90`, in the YX plane by default), ``elastic`` (:class:`ElasticDeform`),
    ``intensity`` (:class:`IntensityJitter`), ``blur`` (:class:`GaussianBlur`), ``noise``
    (:class:`GaussianNoise`). A value ``True`` uses the defaults, ``False`` / ``None`` turns
    the transform off, a dict gives keyword arguments (lists become tuples). Transforms are
    applied in the order above, whatever the order of the keys.

    Example::

        build_augmentation({"flip": True, "rot90": True,
                            "elastic": {"alpha": 3, "sigma": 8, "p": 0.5},
                            "noise": {"sigma": [0, 0.05]}}, ndim=2)

    Args:
        spec: the dict, or ``None`` for no augmentation (an identity ``Compose``).
        ndim: number of spatial axes of the data (2 or 3); per-axis options are checked
            against it.

    Raises:
        InputError: an unknown key, an unknown option of a transform, a bad value or ndim.
    """
    if isinstance(ndim, bool) or ndim not in (2, 3):
        raise InputError(f"ndim={ndim!r} must be 2 or 3 (number of spatial axes)")
    if spec is None:
        return Compose([])
    if not isinstance(spec, Mapping):
        raise InputError(f"augmentation spec must be a dict or None, got {type(spec).__name__}")
    unknown = [k for k in spec if k not in _BUILDERS]
    if unknown:
        raise InputError(
            f"unknown augmentation key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(AUGMENTATION_KEYS)}"
        )
    transforms: list[Transform] = []
    for key, cls in _BUILDERS.items():
        value = spec.get(key)
        if value is None or value is False:
            continue
        if value is True:
            kwargs: dict[str, Any] = {}
        elif isinstance(value, Mapping):
            kwargs = {str(k): _tuples(v) for k, v in value.items()}
        elif key in _SCALAR_OPTION and isinstance(value, (int, float)):
            kwargs = {_SCALAR_OPTION[key]: value}
        else:
            number = f", a number ({_SCALAR_OPTION[key]})" if key in _SCALAR_OPTION else ""
            raise InputError(f"augmentation {key!r}: value {value!r} must be true, false{number} or a dict of options")
        params = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
        bad = sorted(set(kwargs) - set(params))
        if bad:
            raise InputError(
                f"augmentation {key!r}: unknown option(s) {', '.join(bad)}; valid options: {', '.join(params)}"
            )
        t = cls(**kwargs)
        if isinstance(t, ElasticDeform):
            _expand(t.alpha, ndim, "alpha")
            _expand(t.sigma, ndim, "sigma")
        if isinstance(t, (RandomFlip, RandomRot90)) and t.axes is not None:
            for a in t.axes:
                _spatial_axis(a, ndim, key)
        transforms.append(t)
    return Compose(transforms)

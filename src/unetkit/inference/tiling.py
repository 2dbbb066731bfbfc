"""Tiling plans: which input windows to run through a U-Net and which output pixels to keep.

Valid padding ("exact" mode). Let h be the halo, P = f^l the shift period, O the network
output for an input tile I. Put the image on a virtual canvas padded by B = ceil(h / P) * P
pixels (a multiple of P) on the left, so that the network's pooling grid starts at image pixel
0. Output pixel k of a tile whose input starts at canvas position a (a multiple of P) then sits
on image pixel a + k - d, with d = B - h, and equals the whole-image output there: the network
is equivariant to shifts by multiples of P and valid convolutions see only real data. Each tile
keeps a core of C = n * P output pixels (n >= 1, the largest that fits into O - d), so cores sit
on the P-grid of the image, cover it without overlap, and the stitched result equals the
whole-image prediction exactly (up to float rounding). Context outside the image is mirrored,
the same way in both.

Same padding. Zero padding makes the network location-aware near tile borders, so no tiling
reproduces the whole-image prediction exactly. Two modes reduce the damage:
"halo-crop" keeps the centre of each tile, discarding a margin of ceil(h / P) * P pixels on
each side; "blend" runs overlapping tiles and averages them with Gaussian weights (the
sliding-window scheme of MONAI and others).

Statistics per tile. Group and instance normalisation normalise each input by its own mean and
variance, so a tile's output depends on the whole tile, not only on the halo around each pixel:
even valid padding does not tile exactly then. The model says so (``tiling_exact`` of the
:class:`~unetkit.models.protocol.Tileable` protocol, which is all this module reads of a model);
the plan keeps the grid placement and prefers one tile covering the whole image whenever it fits
the memory budget (that *is* the whole-image prediction), and :func:`warn_if_inexact` warns with
an :class:`InexactTilingWarning` naming the cause when a plan has several tiles.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from unetkit.errors import InputError, ShapeError
from unetkit.models.protocol import CONV_WORKSPACE_FACTOR, Tileable, as_tileable

__all__ = [
    "CONV_WORKSPACE_FACTOR", "DEFAULT_MEMORY_BUDGET", "AxisTile", "InexactTilingWarning", "Mode", "Tile", "TilePlan",
    "blend_weights", "estimate_tile_bytes", "plan_tiles", "warn_if_inexact",
]

Mode = Literal["exact", "halo-crop", "blend"]
DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of activations per batch of tiles (1 GiB)


class InexactTilingWarning(UserWarning):
    """A prediction is stitched from several tiles of a model that does not tile exactly
    (same padding, or statistics per tile); the message names the cause."""


@dataclass(frozen=True)
class AxisTile:
    """Placement of one tile along one axis (image coordinates)."""

    input_start: int  # first image pixel of the input window (may be < 0: mirrored context)
    keep_start: int  # first output pixel of the tile that is kept
    image_start: int  # image pixel where the kept part goes
    image_stop: int


@dataclass(frozen=True)
class Tile:
    """One tile: the input window and where its kept output goes (per spatial axis)."""

    index: tuple[int, ...]
    input_start: tuple[int, ...]
    keep: tuple[slice, ...]  # slices into the tile's network output
    target: tuple[slice, ...]  # slices into the image / prediction


@dataclass(frozen=True)
class TilePlan:
    """A complete tiling of an image of ``image_shape`` for one network.

    Attributes:
        image_shape: spatial shape S of the image.
        input_shape: network input tile I (a valid input shape).
        output_shape: network output O for I.
        mode: ``"exact"`` (valid padding), ``"halo-crop"`` or ``"blend"`` (same padding).
        axes: per axis, the list of :class:`AxisTile` placements.
    """

    image_shape: tuple[int, ...]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    mode: Mode
    axes: tuple[tuple[AxisTile, ...], ...]

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.image_shape)

    @property
    def grid(self) -> tuple[int, ...]:
        """Number of tiles per axis."""
        return tuple(len(a) for a in self.axes)

    @property
    def n_tiles(self) -> int:
        return int(np.prod(self.grid))

    @property
    def core_shape(self) -> tuple[int, ...]:
        """Kept output size of an interior tile per axis (the stitching period)."""
        return tuple(a[0].image_stop - a[0].image_start for a in self.axes)

    def tiles(self) -> Iterator[Tile]:
        """All tiles in C order."""
        for index in itertools.product(*(range(n) for n in self.grid)):
            parts = [self.axes[ax][i] for ax, i in enumerate(index)]
            yield Tile(
                index=index,
                input_start=tuple(p.input_start for p in parts),
                keep=tuple(slice(p.keep_start, p.keep_start + p.image_stop - p.image_start) for p in parts),
                target=tuple(slice(p.image_start, p.image_stop) for p in parts),
            )


def estimate_tile_bytes(model: Tileable, input_shape: Sequence[int], batch_size: int = 1) -> int:
    """Upper estimate of the activation memory (bytes, float32) of one inference batch of
    ``batch_size`` tiles of spatial shape ``input_shape``: the model's
    :meth:`~unetkit.models.protocol.Tileable.activation_bytes` (for :class:`~unetkit.models.UNet`
    counted tensors times :data:`CONV_WORKSPACE_FACTOR`, calibrated as peak resident memory of CPU
    inference with PyTorch 2.13 by ``benchmarks/tiling_memory.py``; GPU libraries may need more).
    """
    return int(as_tileable(model).activation_bytes(tuple(int(s) for s in input_shape), batch_size))


def _exact_axis(size: int, out: int, halo: int, period: int) -> tuple[AxisTile, ...]:
    before = _before(halo, period)
    d = before - halo
    if size <= out - d:  # one tile covers the axis: no stitching along it
        return (AxisTile(-before, d, 0, size),)
    core = (out - d) // period * period
    return tuple(
        AxisTile(t * core - before, d, t * core, min((t + 1) * core, size)) for t in range(math.ceil(size / core))
    )


def _halo_crop_axis(size: int, tile: int, halo: int, period: int) -> tuple[AxisTile, ...]:
    if size <= tile:
        return (AxisTile(0, 0, 0, size),)
    margin = _before(halo, period)
    core = tile - 2 * margin
    return tuple(
        AxisTile(t * core - margin, margin, t * core, min((t + 1) * core, size)) for t in range(math.ceil(size / core))
    )


def _blend_axis(size: int, tile: int, period: int, overlap: float) -> tuple[AxisTile, ...]:
    if size <= tile:
        return (AxisTile(0, 0, 0, size),)
    step = max(period, int(tile * (1 - overlap)) // period * period)
    n = math.ceil((size - tile) / step) + 1
    return tuple(AxisTile(t * step, 0, t * step, min(t * step + tile, size)) for t in range(n))


def _before(halo: int, period: int) -> int:
    """Left padding of the virtual canvas: the halo rounded up to a multiple of the period."""
    return -(-halo // period) * period


def _input_for_output_at_least(net: Tileable, need: Sequence[int]) -> tuple[int, ...]:
    """Input shape of the smallest valid output that is >= ``need`` on every axis."""
    near = net.valid_output_shapes(tuple(need))
    covering = [o for o in near if all(a >= n for a, n in zip(o, need))]
    out = min(covering, key=lambda o: float(np.prod(o))) if covering else tuple(max(o) for o in zip(*near))
    return net.input_shape_for(out)


def _min_tile(net: Tileable, mode: Mode) -> tuple[int, ...]:
    """Smallest input tile that keeps at least one shift period of output per axis."""
    if mode == "exact":
        need = [_before(h, p) - h + p for h, p in zip(net.halo, net.shift_period)]
        return _input_for_output_at_least(net, need)
    if mode == "halo-crop":
        return tuple(2 * _before(h, p) + p for h, p in zip(net.halo, net.shift_period))
    return tuple(net.shift_period)


def _check_tile(net: Tileable, tile: tuple[int, ...], mode: Mode) -> None:
    if not net.is_valid_input(tile):
        near = ", ".join(str(s) for s in net.valid_input_shapes(tile)[:4])
        raise ShapeError(f"tile shape {tile} is not a valid input for this {type(net).__name__}; "
                         f"nearest valid tile shapes: {near}")
    smallest = _min_tile(net, mode)
    if any(t < m for t, m in zip(tile, smallest)):
        raise ShapeError(
            f"tile shape {tile} is too small for {mode!r} tiling: each tile must keep at least one shift period "
            f"{net.shift_period} of output after removing the halo; the smallest valid tile is {smallest}"
        )


def available_memory() -> int | None:
    """Bytes of memory the machine can still give (``MemAvailable``), or None when unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil missing or unsupported platform
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return None


def _check_tile_memory(net: Tileable, tile: tuple[int, ...], batch_size: int, budget: int | None) -> None:
    """Refuse an explicit tile whose estimated activations exceed the budget or the free memory."""
    need = net.activation_bytes(tile, batch_size)
    free = available_memory()
    for limit, what in ((budget, "the memory budget"), (free, "the memory available on this machine")):
        if limit is not None and need > limit:
            raise ShapeError(
                f"tile shape {tile} (batch of {batch_size}) needs about {need / 2**20:,.0f} MiB of activations, more "
                f"than {what} ({limit / 2**20:,.0f} MiB); choose a smaller tile shape"
                + (" or raise --memory-budget" if limit is budget else "")
                + ", or leave the tile shape out to pick the largest that fits"
            )


def _covering_tile(net: Tileable, image_shape: Sequence[int], mode: Mode) -> tuple[int, ...]:
    """Input shape of the single tile that predicts the whole image (the smallest that covers it)."""
    if mode == "exact":
        need = [n + _before(h, p) - h for n, h, p in zip(image_shape, net.halo, net.shift_period)]
        return _input_for_output_at_least(net, need)
    return tuple(-(-s // p) * p for s, p in zip(image_shape, net.shift_period))


def _largest_tile(net: Tileable, image_shape: tuple[int, ...], mode: Mode, budget: int, batch_size: int) -> tuple[int, ...]:
    """The tile for a memory budget: the single tile covering the image if it fits (it runs alone,
    as a batch of one), else the largest valid tile whose batch of ``batch_size`` fits."""
    smallest = _min_tile(net, mode)
    whole = tuple(max(w, m) for w, m in zip(_covering_tile(net, image_shape, mode), smallest))
    if net.activation_bytes(whole, 1) <= budget:
        return whole

    def tile_for(edge: int) -> tuple[int, ...]:
        want = tuple(min(max(edge, m), w) for m, w in zip(smallest, whole))
        cands = [c for c in net.valid_input_shapes(want) if all(a <= b for a, b in zip(c, whole))]
        below = [c for c in cands if all(a <= b for a, b in zip(c, want))]
        pick = max(below or cands or [smallest], key=lambda c: float(np.prod(c)))
        return tuple(max(a, m) for a, m in zip(pick, smallest))

    lo, hi = 1, max(whole)
    best = smallest
    if net.activation_bytes(smallest, batch_size) > budget:
        warnings.warn(
            f"memory budget {budget} bytes is below the smallest tile {smallest} "
            f"(~{net.activation_bytes(smallest, batch_size)} bytes); using the smallest tile",
            stacklevel=3,
        )
        return smallest
    while lo <= hi:  # binary search on the edge length
        mid = (lo + hi) // 2
        t = tile_for(mid)
        if net.activation_bytes(t, batch_size) <= budget:
            best, lo = t, mid + 1
        else:
            hi = mid - 1
    return best


def plan_tiles(
    model: Tileable,
    image_shape: Sequence[int],
    *,
    tile_shape: Sequence[int] | None = None,
    memory_budget: int | None = DEFAULT_MEMORY_BUDGET,
    batch_size: int = 1,
    mode: Mode | None = None,
    overlap: float = 0.25,
) -> TilePlan:
    """Plan the tiles for predicting an image of ``image_shape`` (spatial axes only).

    Args:
        model: a :class:`~unetkit.models.protocol.Tileable` model (a unetkit U-Net); an
            ``InputError`` names the members of the protocol that another object lacks.
        image_shape: spatial shape of the image.
        tile_shape: network input tile; must be a valid input shape large enough to keep one
            shift period of output (a ``ShapeError`` names the nearest valid ones otherwise).
            Default: one tile covering the image if its activations fit ``memory_budget``,
            otherwise the largest tile whose batch of ``batch_size`` fits.
        memory_budget: bytes for one batch of tiles; ``None``: one tile covers the image.
        batch_size: tiles per forward pass (enters the memory estimate).
        mode: ``"exact"`` (valid padding; the only mode for it), ``"halo-crop"`` (default for
            same padding) or ``"blend"``.
        overlap: tile overlap fraction for ``"blend"``.

    A model that does not tile exactly (``model.tiling_exact`` False: same padding, group or
    instance normalisation) is planned the same way; :func:`warn_if_inexact` says when the
    result has more than one tile.
    """
    net = as_tileable(model)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != net.ndim or any(s < 1 for s in shape):
        raise InputError(f"image shape {shape} does not fit a {net.ndim}-D model (need {net.ndim} positive sizes)")
    if net.padding == "valid":
        if mode not in (None, "exact"):
            raise InputError(f"a valid-padding model is tiled on its shift-period grid (mode 'exact'); mode {mode!r} "
                             "is for same-padding models")
        mode = "exact"
    else:
        mode = mode or "halo-crop"
        if mode not in ("halo-crop", "blend"):
            raise InputError(f"mode must be 'halo-crop' or 'blend' for a same-padding model, got {mode!r}")
    if not 0 <= overlap < 1:
        raise InputError(f"overlap must be in [0, 1), got {overlap}")
    if tile_shape is not None:
        tile = tuple(int(t) for t in tile_shape)
        if len(tile) != net.ndim:
            raise ShapeError(f"tile shape {tile} needs {net.ndim} values")
        _check_tile(net, tile, mode)
        _check_tile_memory(net, tile, batch_size, memory_budget)
    elif memory_budget is None:
        tile = _covering_tile(net, shape, mode)
    else:
        tile = _largest_tile(net, shape, mode, int(memory_budget), batch_size)
    out = net.output_shape(tile)
    if mode == "exact":
        axes = tuple(_exact_axis(s, o, h, p) for s, o, h, p in zip(shape, out, net.halo, net.shift_period))
    elif mode == "halo-crop":
        axes = tuple(_halo_crop_axis(s, t, h, p) for s, t, h, p in zip(shape, tile, net.halo, net.shift_period))
    else:
        axes = tuple(_blend_axis(s, t, p, overlap) for s, t, p in zip(shape, tile, net.shift_period))
    return TilePlan(shape, tile, out, mode, axes)


def warn_if_inexact(model: Tileable, plan: TilePlan, *, stacklevel: int = 2) -> bool:
    """Warn (:class:`InexactTilingWarning`) if ``plan`` stitches several tiles of a model that does
    not tile exactly; the message names the cause and the budget of one covering tile. Returns
    whether it warned. A one-tile plan is the whole-image prediction: no warning."""
    net = as_tileable(model)
    if plan.n_tiles == 1 or net.tiling_exact:
        return False
    whole = _covering_tile(net, plan.image_shape, plan.mode)
    need = net.activation_bytes(whole, 1)
    hint = (f"one tile covering the image (~{need / 2**20:.0f} MiB of activations) gives the whole-image "
            "prediction: raise memory_budget to that or pass memory_budget=None")
    warnings.warn(
        f"tiled prediction ({plan.n_tiles} {'grid-aligned' if plan.mode == 'exact' else plan.mode} tiles) is not "
        f"exact for this {type(net).__name__}: "
        f"{net.tiling_inexact_reason}; {hint}",
        InexactTilingWarning,
        stacklevel=stacklevel + 1,
    )
    return True


def blend_weights(shape: Sequence[int], sigma_scale: float = 0.125) -> np.ndarray:
    """Separable Gaussian importance map ``(*shape)`` (peak 1 at the centre, sigma = scale * size)."""
    w = np.ones((), dtype=np.float32)
    for n in shape:
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2
        g = np.exp(-0.5 * (x / max(sigma_scale * n, 1e-6)) ** 2).astype(np.float32)
        w = np.multiply.outer(w, np.maximum(g, 1e-3))
    return w

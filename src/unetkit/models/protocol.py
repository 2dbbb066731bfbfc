"""The tileable-model protocol: everything inference needs to know about a model's sizes.

Inference (:mod:`unetkit.inference`: tiling plans, in-process, file and dask prediction) reads a
model only through :class:`Tileable`. A new architecture (SEU-Net with its scale axis, HPU-Net,
...) becomes predictable on images of any size, tile by tile, by implementing these members; it
needs no change in inference. :func:`as_tileable` checks a model and names what is missing.

Conventions
-----------
* Tensors are ``(N, C, *S)`` with spatial axes ``S = ([D,] H, W)`` (``ndim`` of them). Every
  shape below is a *spatial* shape: a tuple of ``ndim`` ints in that axis order, without the
  batch and channel axes. A model with an extra internal axis (SEU-Net's scales) hides it: it
  takes ``(N, in_channels, *S)`` and returns ``(N, out_channels, *output_shape(S))``; a scale
  axis lives inside the network or is folded into the channels.
* Valid input sizes need not be contiguous: a valid-padding U-Net accepts sizes on a grid of
  step ``shift_period`` per axis. ``output_shape`` raises :class:`~unetkit.errors.ShapeError`
  (naming the nearest valid shapes) for an invalid input.

Members
-------
``ndim: int``
    number of spatial axes (2 or 3).
``in_channels: int``, ``out_channels: int``
    C_in of the input, C_out of the raw output (logits, embeddings).
``padding: "valid" | "same"``
    ``"valid"``: no zero padding; the output is smaller than the input by ``2 * halo`` per
    axis and output pixel k of an input window starting at image pixel a sits on image pixel
    ``a + halo + k``; tiles are placed on the ``shift_period`` grid (tiling mode ``"exact"``).
    ``"same"``: output shape = input shape; zero padding makes the output depend on where the
    window's border is, so tiles overlap (tiling modes ``"halo-crop"``, ``"blend"``).
``halo: tuple[int, ...]``
    context per side and axis that one output pixel depends on, ``(input - output) / 2`` of
    the valid network (for same padding: the margin to discard when tiling).
``shift_period: tuple[int, ...]``
    per axis, the shift (in pixels) that commutes with the network (f^l for a U-Net with l
    poolings by f); tiles start on this grid.
``tiling_exact: bool``
    True when stitching tiles gives the whole-image prediction (up to float rounding) in
    eval mode: valid padding and no statistics computed over a tile (no group or instance
    normalisation; batch normalisation uses its running statistics in eval mode).
``tiling_inexact_reason: str``
    why tiling is not exact, e.g. ``"group normalisation computes statistics per tile"``;
    ``""`` when ``tiling_exact``. Inference puts it into its warning.
``output_shape(spatial) -> tuple``
    output spatial shape for a valid input spatial shape.
``input_shape_for(output) -> tuple``
    the input spatial shape that yields ``output`` (``ShapeError`` if none does).
``valid_input_shapes(near) -> list[tuple]``, ``valid_output_shapes(near) -> list[tuple]``
    valid shapes nearest to ``near`` (``near`` first if valid; up to 2^ndim, nearest first).
``is_valid_input(spatial) -> bool``, ``min_input_shape() -> tuple``
    whether the network accepts an input shape; the smallest one it accepts.
``activation_bytes(input_shape, batch_size=1) -> int``
    upper estimate of the memory (bytes) of one inference forward pass on a batch of
    ``batch_size`` inputs ``(batch_size, in_channels, *input_shape)``, float32, including the
    convolution workspace; the tiling plan picks the largest tile whose estimate fits the
    memory budget. Convolutional models can scale their counted tensor bytes by
    :data:`CONV_WORKSPACE_FACTOR`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from unetkit.errors import InputError

CONV_WORKSPACE_FACTOR = 2.25
"""Measured peak resident memory over counted tensor bytes, CPU inference with PyTorch 2.13
(``benchmarks/tiling_memory.py``): the convolution buffers (unfolded inputs, workspaces) that the
tensors alone do not show. GPU libraries may need more."""


@runtime_checkable
class Tileable(Protocol):
    """A model that inference can tile (see the module docstring for each member's meaning)."""

    ndim: int
    in_channels: int
    out_channels: int

    @property
    def padding(self) -> Literal["valid", "same"]: ...

    @property
    def halo(self) -> tuple[int, ...]: ...

    @property
    def shift_period(self) -> tuple[int, ...]: ...

    @property
    def tiling_exact(self) -> bool: ...

    @property
    def tiling_inexact_reason(self) -> str: ...

    def output_shape(self, spatial_shape: Sequence[int]) -> tuple[int, ...]: ...

    def input_shape_for(self, output_shape: Sequence[int]) -> tuple[int, ...]: ...

    def valid_input_shapes(self, near: Sequence[int]) -> list[tuple[int, ...]]: ...

    def valid_output_shapes(self, near: Sequence[int]) -> list[tuple[int, ...]]: ...

    def is_valid_input(self, spatial_shape: Sequence[int]) -> bool: ...

    def min_input_shape(self) -> tuple[int, ...]: ...

    def activation_bytes(self, input_shape: Sequence[int], batch_size: int = 1) -> int: ...


TILEABLE_MEMBERS: tuple[str, ...] = (
    "ndim", "in_channels", "out_channels", "padding", "halo", "shift_period", "tiling_exact",
    "tiling_inexact_reason", "output_shape", "input_shape_for", "valid_input_shapes", "valid_output_shapes",
    "is_valid_input", "min_input_shape", "activation_bytes",
)
"""The members of :class:`Tileable`, in the order its docstring lists them."""


def missing_members(model: Any) -> list[str]:
    """Names of the :class:`Tileable` members that ``model`` lacks (empty: it is tileable)."""
    return [name for name in TILEABLE_MEMBERS if not hasattr(model, name)]


def as_tileable(model: Any) -> Tileable:
    """``model`` itself if it implements :class:`Tileable`; otherwise an ``InputError`` naming the
    missing members."""
    missing = missing_members(model)
    if missing:
        raise InputError(
            f"{type(model).__name__} cannot be tiled: it lacks {', '.join(missing)} of the Tileable protocol "
            "(unetkit.models.protocol); use a unetkit model, or implement the protocol"
        )
    return model  # type: ignore[no-any-return]

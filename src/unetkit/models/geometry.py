"""Size arithmetic of U-Nets: which input sizes are valid, the output size, halo and shift period.

Every size rule is computed here, never assumed. A U-Net with ``depth`` = l pooling steps of
factor f (kernel = stride = f), ``convs_per_level`` = c convolutions of kernel k per level and
centre-cropped skip connections is parametrised by the size b of its bottleneck output on each
axis (b >= b_min). With r = c (k - 1) the shrinkage of one conv block:

* valid padding:  input(b)  = f (... f (f (b + r) + r) ...) + r    (l times)
                  output(b) = f (... f (f b - r) - r ...) - r      (l times, every step >= 1)
  so valid inputs and outputs are arithmetic progressions of step f^l, and
  ``halo`` = (input - output) / 2 is the same for every valid size (e.g. l=4, f=2, c=2, k=3:
  204 -> 20, 236 -> 52, halo 92; l=3: 220 -> 132).
* same padding:   input = output = f^l b, any b >= 1.

``shift_period`` is f^l per axis: the network is equivariant to input shifts by multiples of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import product
from typing import Literal

from unetkit.errors import ShapeError

Padding = Literal["valid", "same"]


def as_tuple(value: int | Sequence[int], ndim: int, name: str) -> tuple[int, ...]:
    """Broadcast an int or check a per-axis sequence of length ``ndim`` (positive ints)."""
    if isinstance(value, int):
        out = (value,) * ndim
    else:
        out = tuple(int(v) for v in value)
        if len(out) != ndim:
            raise ValueError(f"{name} must be an int or {ndim} values (one per spatial axis), got {value!r}")
    if any(v < 1 for v in out):
        raise ValueError(f"{name} must be >= 1 on every axis, got {value!r}")
    return out


@dataclass(frozen=True)
class UNetGeometry:
    """Size arithmetic for a U-Net (per spatial axis; axes in tensor order ``[D,] H, W``).

    Attributes:
        ndim: number of spatial axes (2 or 3).
        depth: number of pooling steps l (>= 1).
        factor: pooling factor f per axis.
        convs_per_level: convolutions per conv block c.
        kernel_size: convolution kernel size k (odd).
        padding: ``"valid"`` or ``"same"``.
        label: the network's name in error messages (``"U-Net"``; SEU-Net and SResNet reuse these
            same-padding rules).
    """

    ndim: int
    depth: int
    factor: tuple[int, ...]
    convs_per_level: int = 2
    kernel_size: int = 3
    padding: Padding = "valid"
    label: str = "U-Net"

    def __post_init__(self) -> None:
        if self.ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {self.ndim!r}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth!r}")
        if len(self.factor) != self.ndim:
            raise ValueError(f"factor needs {self.ndim} values, got {self.factor!r}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {self.kernel_size!r}")
        if self.convs_per_level < 1:
            raise ValueError(f"convs_per_level must be >= 1, got {self.convs_per_level!r}")
        if self.padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {self.padding!r}")

    # ------------------------------------------------------------------ per axis
    @property
    def shrink(self) -> int:
        """Pixels one valid conv block removes from an axis: c (k - 1)."""
        return self.convs_per_level * (self.kernel_size - 1) if self.padding == "valid" else 0

    @property
    def shift_period(self) -> tuple[int, ...]:
        """f^l per axis: shifts by multiples of this commute with the network."""
        return tuple(f**self.depth for f in self.factor)

    def _input_for_bottom(self, b: int, f: int) -> int:
        x = b + self.shrink
        for _ in range(self.depth):
            x = x * f + self.shrink
        return x if self.padding == "valid" else b * f**self.depth

    def _output_for_bottom(self, b: int, f: int) -> int | None:
        """Output size for bottleneck size b, or None if some decoder stage would be empty."""
        if self.padding == "same":
            return b * f**self.depth if b >= 1 else None
        if b < 1:
            return None
        y = b
        for _ in range(self.depth):
            y = y * f - self.shrink
            if y < 1:
                return None
        return y

    def _min_bottom(self, f: int) -> int:
        b = 1
        while self._output_for_bottom(b, f) is None:
            b += 1
        return b

    def _bottom_for_input(self, n: int, f: int) -> int | None:
        """Bottleneck size for input size n, or None if n is not a valid input size."""
        if self.padding == "same":
            p = f**self.depth
            return n // p if n % p == 0 and n >= p else None
        x = n
        for _ in range(self.depth):
            e = x - self.shrink
            if e < 1 or e % f:
                return None
            x = e // f
        b = x - self.shrink
        return b if b >= self._min_bottom(f) else None

    def _bottom_for_output(self, m: int, f: int) -> int | None:
        if self.padding == "same":
            p = f**self.depth
            return m // p if m % p == 0 and m >= p else None
        y = m
        for _ in range(self.depth):
            u = y + self.shrink
            if u % f:
                return None
            y = u // f
        return y if y >= self._min_bottom(f) and self._output_for_bottom(y, f) == m else None

    def _neighbours(self, n: int, f: int, *, of: Literal["input", "output"]) -> list[int]:
        """Valid sizes closest to n from below and above (one or two values, sorted by distance)."""
        size = self._input_for_bottom if of == "input" else self._output_for_bottom
        b_min = self._min_bottom(f)
        step = f**self.depth
        base = size(b_min, f)
        assert base is not None
        k = max(0, (n - base) // step)
        candidates = {base + k * step, base + (k + 1) * step}
        return sorted(candidates, key=lambda v: (abs(v - n), v))

    # ------------------------------------------------------------------ shapes
    def _check_len(self, shape: Sequence[int], what: str) -> tuple[int, ...]:
        shape = tuple(int(s) for s in shape)
        if len(shape) != self.ndim:
            raise ShapeError(
                f"{what} {shape} has {len(shape)} axes but this {self.ndim}-D {self.label} needs {self.ndim} spatial axes"
            )
        return shape

    @property
    def halo(self) -> tuple[int, ...]:
        """Context per side: (input - output) / 2 of the valid network, per axis.

        For valid padding it is exact and size-independent. For same padding it is the context
        the equivalent valid network would consume, i.e. the margin to discard when tiling.
        """
        if self.padding == "same":
            return replace(self, padding="valid").halo
        out = []
        for f in self.factor:
            b = self._min_bottom(f)
            o = self._output_for_bottom(b, f)
            assert o is not None
            out.append((self._input_for_bottom(b, f) - o) // 2)
        return tuple(out)

    def is_valid_input(self, spatial_shape: Sequence[int]) -> bool:
        """True if the network can process an input of this spatial shape."""
        shape = self._check_len(spatial_shape, "input shape")
        return all(self._bottom_for_input(n, f) is not None for n, f in zip(shape, self.factor))

    def _nearest_shapes(self, near: Sequence[int], of: Literal["input", "output"]) -> list[tuple[int, ...]]:
        shape = self._check_len(near, "shape")
        is_valid = self._bottom_for_input if of == "input" else self._bottom_for_output
        per_axis = [
            [n] if is_valid(n, f) is not None else self._neighbours(n, f, of=of) for n, f in zip(shape, self.factor)
        ]
        combos = [tuple(c) for c in product(*per_axis)]
        return sorted(combos, key=lambda c: (sum(abs(a - b) for a, b in zip(c, shape)), c))

    def valid_input_shapes(self, near: Sequence[int]) -> list[tuple[int, ...]]:
        """Valid input shapes closest to ``near`` (up to 2^ndim), nearest first.

        ``near`` itself comes first when it is valid.
        """
        return self._nearest_shapes(near, "input")

    def valid_output_shapes(self, near: Sequence[int]) -> list[tuple[int, ...]]:
        """Achievable output shapes closest to ``near`` (up to 2^ndim), nearest first."""
        return self._nearest_shapes(near, "output")

    def output_shape(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        """Output spatial shape for a valid input shape; ``ShapeError`` naming the nearest valid ones otherwise."""
        shape = self._check_len(spatial_shape, "input shape")
        bottoms = [self._bottom_for_input(n, f) for n, f in zip(shape, self.factor)]
        if any(b is None for b in bottoms):
            raise ShapeError(self._invalid_message(shape, "input"))
        out = [self._output_for_bottom(b, f) for b, f in zip(bottoms, self.factor)]  # type: ignore[arg-type]
        return tuple(int(o) for o in out)  # type: ignore[arg-type]

    def input_shape_for(self, output_shape: Sequence[int]) -> tuple[int, ...]:
        """Input spatial shape that yields ``output_shape``; ``ShapeError`` if no input does."""
        shape = self._check_len(output_shape, "output shape")
        bottoms = [self._bottom_for_output(m, f) for m, f in zip(shape, self.factor)]
        if any(b is None for b in bottoms):
            raise ShapeError(self._invalid_message(shape, "output"))
        return tuple(self._input_for_bottom(b, f) for b, f in zip(bottoms, self.factor))  # type: ignore[arg-type]

    def min_input_shape(self) -> tuple[int, ...]:
        """Smallest valid input shape."""
        return tuple(self._input_for_bottom(self._min_bottom(f), f) for f in self.factor)

    def _invalid_message(self, shape: tuple[int, ...], of: Literal["input", "output"]) -> str:
        near = self.valid_input_shapes(shape) if of == "input" else self.valid_output_shapes(shape)
        listed = ", ".join(str(s) for s in near[:4])
        smallest = self.min_input_shape() if of == "input" else self.output_shape(self.min_input_shape())
        rule = (
            f"sizes divisible by the shift period {self.shift_period}"
            if self.padding == "same"
            else f"valid sizes form steps of {self.shift_period} from {smallest}"
        )
        return (
            f"{of} shape {shape} is not valid for this {self.label} (padding={self.padding!r}, depth={self.depth}, "
            f"factor={self.factor}; {rule}). Nearest valid {of} shapes: {listed}"
        )



class GeometrySizes:
    """The size members of the :class:`~unetkit.models.protocol.Tileable` protocol, read from a
    model's ``geometry`` (a :class:`UNetGeometry`); mixed into every model built on one."""

    geometry: UNetGeometry

    @property
    def shift_period(self) -> tuple[int, ...]:
        """f^l per axis: shifts of this period shift the output by the same amount."""
        return self.geometry.shift_period

    def output_shape(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        """Output spatial shape for an input spatial shape; ``ShapeError`` naming the nearest valid ones."""
        return self.geometry.output_shape(spatial_shape)

    def input_shape_for(self, output_shape: Sequence[int]) -> tuple[int, ...]:
        """Input spatial shape that produces ``output_shape``."""
        return self.geometry.input_shape_for(output_shape)

    def valid_input_shapes(self, near: Sequence[int]) -> list[tuple[int, ...]]:
        """Valid input shapes nearest to ``near``, closest first."""
        return self.geometry.valid_input_shapes(near)

    def valid_output_shapes(self, near: Sequence[int]) -> list[tuple[int, ...]]:
        """Achievable output shapes nearest to ``near``, closest first."""
        return self.geometry.valid_output_shapes(near)

    def is_valid_input(self, spatial_shape: Sequence[int]) -> bool:
        """True if the network accepts an input of this spatial shape."""
        return self.geometry.is_valid_input(spatial_shape)

    def min_input_shape(self) -> tuple[int, ...]:
        """Smallest valid input spatial shape."""
        return self.geometry.min_input_shape()


class SamePaddingSizes(GeometrySizes):
    """The Tileable members of a same-padding model that never tiles exactly (SEU-Net, SResNet,
    HPU-Net, ProbUNet): output shape = input shape, sizes multiples of ``geometry.shift_period``.

    Subclasses set ``geometry`` (a same-padding :class:`UNetGeometry`), ``ndim``,
    :attr:`TILING_INEXACT_REASON`, and implement :meth:`_halo_radius` and ``activation_bytes``.
    """

    ndim: int
    TILING_INEXACT_REASON: str = ""

    def _halo_radius(self) -> int:
        """Upper bound of the receptive-field radius in pixels (the same on every axis)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _halo_radius")

    @property
    def padding(self) -> str:
        """Always ``"same"``: output shape = input shape."""
        return "same"

    @property
    def halo(self) -> tuple[int, ...]:
        """Upper bound of the receptive-field radius per axis (:meth:`_halo_radius`)."""
        return (self._halo_radius(),) * self.ndim

    @property
    def tiling_exact(self) -> bool:
        """Never: see :attr:`tiling_inexact_reason`."""
        return False

    @property
    def tiling_inexact_reason(self) -> str:
        """Why stitched tiles differ from the whole-image prediction."""
        return self.TILING_INEXACT_REASON

"""A lazy view that hides singleton dimensions (a singleton T) of an on-disk array."""

from __future__ import annotations

from typing import Any

import numpy as np


class DropAxes:
    """Lazy view of an array-like with some singleton dimensions removed (basic indexing only)."""

    def __init__(self, base: Any, drop: tuple[int, ...]) -> None:
        self.base = base
        self.drop = tuple(sorted(drop))
        self.shape = tuple(n for i, n in enumerate(base.shape) if i not in self.drop)
        self.dtype = base.dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _expand(self, index: Any) -> tuple[Any, ...]:
        if not isinstance(index, tuple):
            index = (index,)
        if any(i is Ellipsis for i in index):
            at = next(n for n, i in enumerate(index) if i is Ellipsis)
            fill = self.ndim - (len(index) - 1)
            index = index[:at] + (slice(None),) * fill + index[at + 1 :]
        index = index + (slice(None),) * (self.ndim - len(index))
        if len(index) != self.ndim:
            raise IndexError(f"too many indices for an array of shape {self.shape}")
        full: list[Any] = list(index)
        for pos in self.drop:
            full.insert(pos, 0)
        return tuple(full)

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.asarray(self.base[self._expand(index)])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype)

"""Device auto-selection: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

from unetkit.errors import ConfigError


def select_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks cuda > mps > cpu; an explicit device that is unavailable is a ``ConfigError``."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if has_mps else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device=cuda but no CUDA device is available; use auto or cpu")
    if name == "mps" and not has_mps:
        raise ConfigError("training.device=mps but MPS is not available; use auto or cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {name!r}; valid: auto, cpu, cuda, mps")
    return torch.device(name)

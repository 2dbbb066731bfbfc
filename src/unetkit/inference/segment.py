"""Instance segmentation of an image file with an embedding run (``unetkit segment``).

The image is read and normalised as in training (:func:`~unetkit.inference.files.open_source`,
:func:`~unetkit.inference.files.normalizer_for`), its embeddings ``(E, *S)`` are predicted with
the exact tiling (:func:`~unetkit.inference.predict`; identical to a whole-image prediction for
valid-padding U-Nets), and clustered into instance labels by one of :data:`METHODS`:

* ``mws``: :func:`~unetkit.clustering.mutex_watershed` with the task's ``delta_d``;
* ``mean-shift``: :func:`~unetkit.clustering.mean_shift` with the task's bandwidth and kernel
  (EmbeddingTask: ``bandwidth`` / ``delta_v``, its kernel; SpocoTask: flat kernel of radius
  ``delta_v``, as their own post-processing);
* ``hdbscan``: :func:`~unetkit.clustering.hdbscan` (``min_size`` 200 pixels);
* ``consistency``: :func:`~unetkit.clustering.consistency_clustering` with ``delta_v``, needing the
  g-embeddings of SPOCO's momentum network (task state ``"g"`` of the checkpoint); both
  networks see the same image.

Parameters not in the run's task config default to ``delta_v = 0.5`` and ``delta_d = 1.5``.
With a ``mask`` only its pixels are clustered and the rest is 0; without one the largest object
is the background (0).

When the embeddings (``4 E prod(S)`` bytes, twice that for ``consistency``) fit ``cluster_budget``
they are held in memory and clustered at once. Otherwise they are predicted into a temporary
memory-mapped file beside the output and clustered blockwise
(:func:`~unetkit.clustering.blockwise.blockwise_cluster`, blocks sized so that one block's
clustering needs about ``cluster_budget``); the labels ``(*S)`` are held in memory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch import nn

from unetkit.data.io import open_array, parse_location, target_exists, write_image
from unetkit.errors import InputError
from unetkit.inference.files import normalizer_for, open_source
from unetkit.inference.predict import predict
from unetkit.inference.tiling import DEFAULT_MEMORY_BUDGET

Method = Literal["mws", "mean-shift", "hdbscan", "consistency"]
METHODS = ("mws", "mean-shift", "hdbscan", "consistency")
DEFAULT_DELTA_V = 0.5
DEFAULT_DELTA_D = 1.5


def cluster_function(method: str, task: Any, cfg: Any, embedding_dim: int) -> Any:
    """``fn(emb (E or 2E, *S), mask or None, background: bool) -> (*S)`` labels for ``method``
    with the run's parameters (module docstring)."""
    from unetkit import clustering as cl

    tcfg = getattr(cfg, "task", None)
    delta_v = float(getattr(tcfg, "delta_v", None) or DEFAULT_DELTA_V)
    delta_d = float(getattr(tcfg, "delta_d", None) or DEFAULT_DELTA_D)
    if method == "mws":
        return lambda e, m, bg: cl.mutex_watershed(e, mask=m, delta_d=delta_d, largest_is_background=bg)
    if method == "mean-shift":
        bandwidth = float(getattr(task, "bandwidth", delta_v))
        kernel = getattr(task, "kernel", "flat")
        return lambda e, m, bg: cl.mean_shift(e, bandwidth=bandwidth, kernel=kernel, mask=m,
                                              largest_is_background=bg)
    if method == "hdbscan":
        return lambda e, m, bg: cl.hdbscan(e, mask=m, largest_is_background=bg)
    if method == "consistency":
        n = embedding_dim
        return lambda e, m, bg: cl.consistency_clustering(e[:n], e[n:], delta_v=delta_v, mask=m,
                                                          largest_is_background=bg)
    raise InputError(f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")


def momentum_network(task: Any, model: nn.Module, checkpoint: str | os.PathLike) -> nn.Module:
    """SPOCO's momentum network g restored from the checkpoint's task state, or ``InputError``."""
    from unetkit.runs import load_checkpoint

    name = getattr(task, "name", type(task).__name__)
    if not hasattr(task, "setup") or name != "spoco":
        raise InputError(f"--method consistency needs the g-embeddings of SPOCO's momentum network, but the run's "
                         f"task is {name!r} (only spoco runs keep one); choose mws, mean-shift or hdbscan")
    state = load_checkpoint(checkpoint, map_location=next(model.parameters()).device)
    g_state = state.get("task", {}) if isinstance(state, dict) else {}
    if not isinstance(g_state, dict) or "g" not in g_state:
        raise InputError(f"--method consistency needs the momentum network g, but checkpoint {checkpoint} holds no "
                         "task state 'g'; choose mws, mean-shift or hdbscan")
    task.setup(model)
    task.load_state_dict(g_state)
    return task.g.net.eval()


def read_mask(path: str | os.PathLike, spatial: tuple[int, ...]) -> np.ndarray:
    """A foreground mask from a label image (nonzero = foreground), shape ``spatial``."""
    loc, _ = parse_location(path)
    if not loc.exists():
        raise InputError(f"mask {path} does not exist")
    array, _ = open_array(path)
    mask = np.asarray(array)
    if mask.shape != spatial:
        squeezed = np.squeeze(mask)
        if squeezed.shape != spatial:
            raise InputError(f"mask {path} has shape {mask.shape} but the image's spatial shape is {spatial}")
        mask = squeezed
    return mask != 0


def bytes_per_pixel(channels: int, ndim: int) -> float:
    """Rough working memory of clustering one pixel (mutex watershed, the largest: float64
    embeddings and their differences, three float64 arrays per edge offset, labels)."""
    offsets = 4 * ndim
    return 8.0 * (2 * channels + 3 * offsets) + 64.0


def segment_file(
    model: nn.Module,
    task: Any,
    cfg: Any,
    source: str | os.PathLike,
    target: str | os.PathLike,
    *,
    method: Method = "mws",
    mask: str | os.PathLike | None = None,
    axes: str | None = None,
    overwrite: bool = False,
    checkpoint: str | os.PathLike | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    cluster_budget: int | None = None,
    tile_shape: tuple[int, ...] | None = None,
    batch_size: int = 1,
    overlap: int | None = None,
    progress: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Predict embeddings of ``source`` and write their instance labels to ``target``.

    Args:
        model, task, cfg: from :func:`unetkit.runs.load_run` (an embedding or spoco run).
        source, target: image and label paths (``file.h5:key`` for containers); labels are
            written atomically as uint16 (uint32 above 65535 objects).
        method: one of :data:`METHODS`.
        mask: optional label image, nonzero = foreground, of the image's spatial shape.
        axes: axes of the source file (inferred when None).
        overwrite: replace an existing target (otherwise ``InputError``, nothing written).
        checkpoint: checkpoint file holding SPOCO's g in its task state (``method="consistency"``;
            the trainer keeps it in ``checkpoints/last.pt`` only).
        memory_budget: bytes of one batch of tiles (tiling).
        cluster_budget: bytes; the largest embeddings clustered at once, and the working
            memory of one block beyond that (default ``memory_budget``).
        tile_shape, batch_size: tiling (see :func:`unetkit.inference.predict`).
        overlap: blockwise overlap in pixels (default
            :data:`~unetkit.clustering.blockwise.DEFAULT_OVERLAP`).
        progress: progress bars.

    Returns:
        ``(path written, info)`` with ``info`` = ``{"blockwise": bool, "block_shape": ...,
        "objects": K}``.
    """
    from unetkit.clustering.blockwise import (
        DEFAULT_OVERLAP,
        block_shape_for,
        blockwise_cluster,
    )

    if method not in METHODS:
        raise InputError(f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")
    out_path, out_key = parse_location(target)
    if not overwrite and target_exists(target):
        raise InputError(f"output {out_path}{':' + out_key if out_key else ''} already exists; pass --overwrite to "
                         "replace it")
    if getattr(task, "pointwise", True):
        raise InputError(f"segment clusters embeddings, but the run's task {getattr(task, 'name', task)!r} predicts "
                         "classes pixel by pixel; use `unetkit predict` for it")
    ndim = cfg.model.ndim
    array, has_c = open_source(source, axes, ndim=ndim, channels=cfg.model.in_channels)
    spatial = tuple(int(s) for s in (array.shape[1:] if has_c else array.shape))
    fg = None if mask is None else read_mask(mask, spatial)
    nets: list[tuple[nn.Module, Any]] = [(model, task.predictor(model))]
    if method == "consistency":
        if checkpoint is None:
            raise InputError("--method consistency needs the checkpoint that holds the momentum network g")
        g = momentum_network(task, model, checkpoint)
        nets.append((g, g))
    e_dim = int(getattr(nets[0][1], "out_channels", model.out_channels))
    channels = e_dim * len(nets)
    fn = cluster_function(method, task, cfg, e_dim)
    normalizer = normalizer_for(array, has_c, cfg, name=str(source))
    options: dict[str, Any] = {"tile_shape": tile_shape, "memory_budget": memory_budget, "batch_size": batch_size,
                               "transform": normalizer, "progress": progress}
    size = 4 * channels * int(np.prod(spatial))
    budget = memory_budget if cluster_budget is None else int(cluster_budget)
    info: dict[str, Any] = {"blockwise": size > budget, "block_shape": None}
    with tempfile.TemporaryDirectory(prefix=".unetkit-segment-", dir=_scratch_dir(out_path)) as tmp:
        if info["blockwise"]:
            emb = np.lib.format.open_memmap(Path(tmp) / "embeddings.npy", mode="w+", dtype=np.float32,
                                            shape=(channels, *spatial))
        else:
            emb = np.empty((channels, *spatial), dtype=np.float32)
        for k, (net, predictor) in enumerate(nets):
            predict(net, array, out=_Offset(emb, k * e_dim, e_dim), predictor=predictor, **options)
        if info["blockwise"]:
            ov = DEFAULT_OVERLAP if overlap is None else int(overlap)
            block = block_shape_for(spatial, bytes_per_pixel(channels, ndim), budget, ov)
            info["block_shape"] = block
            labels = blockwise_cluster(emb, lambda e, m: fn(e, m, False), block_shape=block, overlap=ov, mask=fg,
                                       progress=progress)
        else:
            labels = np.asarray(fn(emb, fg, fg is None))
        del emb
    n = int(labels.max(initial=0))
    info["objects"] = n
    labels = labels.astype(np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32)
    axes_out = "ZYX"[3 - ndim:]
    return write_image(target, labels, axes=axes_out, overwrite=True), info


class _Offset:
    """Writes ``(C, *tile)`` blocks into channels ``start .. start + C`` of ``target``."""

    def __init__(self, target: Any, start: int, channels: int) -> None:
        self.target, self.start = target, start
        self.shape = (channels, *target.shape[1:])

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        if key is Ellipsis:
            key = (slice(None),)
        c = key[0]
        lo = 0 if c.start is None else c.start
        hi = self.shape[0] if c.stop is None else c.stop
        self.target[(slice(self.start + lo, self.start + hi), *key[1:])] = value


def _scratch_dir(out_path: Path) -> str:
    """Folder for the temporary embeddings: beside the output (same disk), created if needed."""
    parent = out_path.parent if out_path.suffix or not out_path.is_dir() else out_path
    parent.mkdir(parents=True, exist_ok=True)
    return str(parent)


__all__ = ["METHODS", "cluster_function", "momentum_network", "read_mask", "segment_file"]

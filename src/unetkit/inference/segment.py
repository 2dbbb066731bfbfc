"""Instance segmentation of an image file with an embedding run (``unetkit segment``).

The image is read and normalised as in training (:func:`~unetkit.inference.files.open_source`,
:func:`~unetkit.inference.files.normalizer_for`), its embeddings ``(E, *S)`` are predicted with
the exact tiling (:func:`~unetkit.inference.predict`; identical to a whole-image prediction for
valid-padding U-Nets), and clustered into instance labels by one of :data:`METHODS`:

* ``mws``: :func:`~unetkit.clustering.mutex_watershed` with the task's ``delta_d``; without a
  mask the background is the largest segment and every segment with its mean embedding (within
  ``delta_v``: the regions of background that cells cut apart);
* ``mean-shift``: :func:`~unetkit.clustering.mean_shift` with the task's bandwidth and kernel
  (EmbeddingTask: ``bandwidth`` / ``delta_v``, its kernel; SpocoTask: flat kernel of radius
  ``delta_v``, as their own post-processing);
* ``hdbscan``: :func:`~unetkit.clustering.hdbscan` (smallest cluster ``min_size``);
* ``consistency``: :func:`~unetkit.clustering.consistency_clustering` with ``delta_v``, needing the
  g-embeddings of SPOCO's momentum network (task state ``"g"`` of the checkpoint); both
  networks see the same image.

Parameters not in the run's task config default to ``delta_v = 0.5`` and ``delta_d = 1.5``.
Objects of fewer than ``min_size`` pixels (default: the run's ``task.min_size``, 50) become
background, judged on the whole image's labels (after blockwise merging).
With a foreground mask only its pixels are clustered and the rest is 0; without one the largest
object is the background (0). The mask is a label image (``mask``, nonzero = foreground) or is
predicted by a run of task ``semantic`` (``mask_run``: foreground = predicted class > 0, the
task's argmax, or logit > 0 for a one-channel model; :func:`predicted_mask`).

When the embeddings (``4 E prod(S)`` bytes, twice that for ``consistency``) fit ``cluster_budget``
they are held in memory and clustered at once. Otherwise they are predicted into a temporary
file beside the output and clustered blockwise
(:func:`~unetkit.clustering.blockwise.blockwise_cluster`, blocks sized so that one block's
clustering needs about ``cluster_budget``); the labels ``(*S)`` are held in memory.

With a Dask ``scheduler`` (``"local"``, an address or a ``distributed.Client``) the networks run
through :func:`~unetkit.inference.dask.predict_dask` (same tiling, bitwise the same embeddings)
into temporary Zarr stores beside the output, a predicted mask through
:func:`~unetkit.inference.dask.predict_file_dask`; blockwise clustering then runs one Dask task
per block (:func:`~unetkit.inference.dask.client_mapper`), each task reading its own block of
embeddings and mask from those stores, which workers reopen by path (:class:`ScratchArray`), and
the blocks' labels are merged in the client. The labels equal the in-process ones bitwise (same
device and torch thread count). Whole-image clustering (when the embeddings fit) runs in the
client, also with a scheduler. The source must then be a Zarr or HDF5 image in ``[C][Z]YX`` order,
and the workers must see the output's folder (the scratch stores live there).

Nothing is lost on failure: the labels are written atomically once complete, an existing
output is refused without ``overwrite`` before any work, and the scratch is always removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch import nn

from unetkit.data.io import (
    is_chunked_target,
    open_array,
    parse_location,
    target_exists,
    write_image,
)
from unetkit.errors import InputError
from unetkit.inference.files import (
    PointwiseSink,
    labels_of,
    normalizer_for,
    open_source,
)
from unetkit.inference.predict import predict
from unetkit.inference.tiling import DEFAULT_MEMORY_BUDGET

Method = Literal["mws", "mean-shift", "hdbscan", "consistency"]
METHODS = ("mws", "mean-shift", "hdbscan", "consistency")
DEFAULT_DELTA_V = 0.5
DEFAULT_DELTA_D = 1.5
DEFAULT_MIN_SIZE = 50
"""Size filter (pixels) for runs whose task has no ``min_size`` (e.g. ``embedding``)."""


def task_setting(cfg: Any, key: str, default: float) -> float:
    """``cfg.task.<key>`` of a run, or ``default`` where the run's task has no such key (or it is unset)."""
    value = getattr(getattr(cfg, "task", None), key, None)
    return float(default if value is None else value)


def run_min_size(cfg: Any) -> int:
    """The size filter of a run: its ``task.min_size`` if it has one, else :data:`DEFAULT_MIN_SIZE`."""
    return int(task_setting(cfg, "min_size", DEFAULT_MIN_SIZE))


def background_radius(method: str, cfg: Any) -> float:
    """The mutex watershed's ``background_radius`` for a run: its ``delta_v`` (segments with the
    background's mean embedding are background); 0 for the other methods, whose clusters already
    live in embedding space."""
    if method != "mws":
        return 0.0
    return task_setting(cfg, "delta_v", DEFAULT_DELTA_V)


def cluster_function(method: str, task: Any, cfg: Any, embedding_dim: int, min_size: int = 0) -> Any:
    """``fn(emb (E or 2E, *S), mask or None, background: bool, filter: bool) -> (*S)`` labels for
    ``method`` with the run's parameters (module docstring). ``min_size`` is HDBSCAN's smallest
    cluster (every call; 200 when 0) and, when ``filter`` is true, the size filter of the other
    methods (false for the blocks of blockwise clustering, which filter the merged labels)."""
    from unetkit import clustering as cl

    delta_v = task_setting(cfg, "delta_v", DEFAULT_DELTA_V)
    delta_d = task_setting(cfg, "delta_d", DEFAULT_DELTA_D)

    def size(filter_: bool) -> int:
        return int(min_size) if filter_ else 0

    if method == "mws":
        return lambda e, m, bg, f=True: cl.mutex_watershed(e, mask=m, delta_d=delta_d, largest_is_background=bg,
                                                           min_size=size(f), background_radius=delta_v)
    if method == "mean-shift":
        bandwidth = float(getattr(task, "bandwidth", delta_v))
        kernel = getattr(task, "kernel", "flat")
        return lambda e, m, bg, f=True: cl.mean_shift(e, bandwidth=bandwidth, kernel=kernel, mask=m,
                                                      largest_is_background=bg, min_size=size(f))
    if method == "hdbscan":
        hdb_size = max(2, int(min_size)) if min_size else 200
        return lambda e, m, bg, f=True: cl.hdbscan(e, mask=m, min_size=hdb_size, largest_is_background=bg)
    if method == "consistency":
        n = embedding_dim
        return lambda e, m, bg, f=True: cl.consistency_clustering(e[:n], e[n:], delta_v=delta_v, mask=m,
                                                                  largest_is_background=bg, min_size=size(f))
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


def load_mask_run(run: str | os.PathLike, checkpoint: str = "best", *, ndim: int,
                  map_location: Any = "cpu") -> tuple[Any, nn.Module, Any]:
    """``(cfg, model, task)`` of a run of task ``semantic`` whose ``ndim``-D model predicts a
    foreground mask; ``InputError`` for a run of another task or dimensionality."""
    from unetkit.runs import load_run

    if not Path(run).is_dir():
        raise InputError(f"--mask-run {run} is not a run folder (written by `unetkit train`)")
    cfg, model, task = load_run(run, checkpoint, map_location=map_location)
    name = getattr(task, "name", type(task).__name__)
    if name != "semantic":
        raise InputError(f"--mask-run {run} is a run of task {name!r}; a foreground mask needs a run of task "
                         "'semantic' (foreground = predicted class > 0)")
    if int(cfg.model.ndim) != ndim:
        raise InputError(f"--mask-run {run} has a {cfg.model.ndim}-D model but the embedding run is {ndim}-D; "
                         f"use a {ndim}-D semantic run")
    return cfg, model, task


def foreground_of(output: np.ndarray, task: Any) -> np.ndarray:
    """Foreground ``(*S)`` bool of a semantic run's raw output ``(C, *S)``: the task's
    labels (argmax; logit > 0 for one channel) > 0."""
    return labels_of(output, task) > 0


def predicted_mask(
    run: str | os.PathLike,
    mask_run: tuple[Any, nn.Module, Any],
    source: str | os.PathLike,
    *,
    axes: str | None = None,
    checkpoint: str = "best",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    batch_size: int = 1,
    client: Any = None,
    scratch: Path | None = None,
    worker_device: str = "cpu",
    progress: bool = False,
) -> Any:
    """The foreground mask ``(*S)`` of ``source`` predicted by a semantic run (:func:`load_mask_run`).

    The run's own normalisation and default tiling (``memory_budget``, ``batch_size``) apply.
    In-process (``client`` None): a bool array in memory, post-processed tile by tile. With a
    Dask ``client``: :func:`~unetkit.inference.dask.predict_file_dask` writes the labels
    (``uint16``, nonzero = foreground) into ``scratch/mask.zarr``, returned as a lazy
    :class:`ScratchArray`.
    """
    cfg, model, task = mask_run
    if client is not None:
        from unetkit.inference.dask import predict_file_dask

        assert scratch is not None
        path = predict_file_dask(run, source, scratch / "mask.zarr", axes=axes, output_type="labels",
                                 checkpoint=checkpoint, memory_budget=memory_budget, batch_size=batch_size,
                                 scheduler=client, device=worker_device, progress=progress)
        return ScratchArray([path])
    array, has_c = open_source(source, axes, ndim=int(cfg.model.ndim), channels=int(cfg.model.in_channels))
    spatial = tuple(int(s) for s in (array.shape[1:] if has_c else array.shape))
    predictor = task.predictor(model)
    c_out = int(getattr(predictor, "out_channels", model.out_channels))
    fg = np.zeros(spatial, dtype=bool)
    sink = PointwiseSink(fg, lambda out: foreground_of(out, task), (c_out, *spatial), drops_channels=True)
    predict(model, array, out=sink, predictor=predictor, memory_budget=memory_budget, batch_size=batch_size,
            transform=normalizer_for(array, has_c, cfg, name=str(source)), progress=progress)
    return fg


class ScratchArray:
    """Read-only view of one or more Zarr arrays on disk, stacked along axis 0 (several
    ``(E_k, *S)`` stores read as one ``(sum E_k, *S)`` array; one store as it is).

    Pickled as its paths only and reopened by path where it is unpickled (a Dask worker), so a
    task reads just the block it slices, never the whole array.
    """

    def __init__(self, paths: list[str | os.PathLike]) -> None:
        self.paths = [str(p) for p in paths]
        self._arrays: list[Any] | None = None
        first = self.arrays[0]
        rest = [a.shape[1:] for a in self.arrays[1:]]
        if any(r != first.shape[1:] for r in rest):
            raise InputError(f"stores {self.paths} differ in shape beyond axis 0")
        self.shape = first.shape if len(self.paths) == 1 else (sum(a.shape[0] for a in self.arrays), *first.shape[1:])
        self.dtype = first.dtype

    @property
    def arrays(self) -> list[Any]:
        if self._arrays is None:
            import zarr

            self._arrays = [zarr.open_array(p, mode="r") for p in self.paths]
        return self._arrays

    def __getstate__(self) -> dict[str, Any]:
        return {"paths": self.paths, "shape": self.shape, "dtype": self.dtype, "_arrays": None}

    def __getitem__(self, key: Any) -> np.ndarray:
        if len(self.paths) == 1:
            return np.asarray(self.arrays[0][key])
        key = key if isinstance(key, tuple) else (key,)
        if key[:1] not in ((), (slice(None),), (Ellipsis,)):
            raise IndexError("a stacked ScratchArray is sliced with ':' (all channels) along axis 0")
        rest = key[1:] if key[:1] != (Ellipsis,) else (Ellipsis,)
        return np.concatenate([np.asarray(a[(slice(None), *rest)]) for a in self.arrays], axis=0)


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
    mask_run: str | os.PathLike | None = None,
    mask_checkpoint: str = "best",
    axes: str | None = None,
    overwrite: bool = False,
    checkpoint: str | os.PathLike | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    cluster_budget: int | None = None,
    tile_shape: tuple[int, ...] | None = None,
    batch_size: int = 1,
    overlap: int | None = None,
    min_size: int | None = None,
    scheduler: Any = None,
    workers: int = 2,
    worker_device: str = "cpu",
    progress: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Predict embeddings of ``source`` and write their instance labels to ``target``.

    Args:
        model, task, cfg: from :func:`unetkit.runs.load_run` (an embedding or spoco run).
        source, target: image and label paths (``file.h5:key`` for containers); labels are
            written atomically as uint16 (uint32 above 65535 objects), axes ``[Z]YX``.
        method: one of :data:`METHODS`.
        mask: optional label image, nonzero = foreground, of the image's spatial shape.
        mask_run: optional run folder of task ``semantic`` predicting the foreground mask
            (class > 0) of the same image; not together with ``mask``.
        mask_checkpoint: ``"best"`` or ``"last"`` checkpoint of ``mask_run``.
        axes: axes of the source file (inferred when None).
        overwrite: replace an existing target (otherwise ``InputError``, nothing written).
        checkpoint: checkpoint file holding SPOCO's g in its task state (``method="consistency"``;
            the trainer keeps it in ``checkpoints/last.pt`` only).
        memory_budget: bytes of one batch of tiles (tiling).
        cluster_budget: bytes; the largest embeddings clustered at once, and the working
            memory of one block beyond that (default ``memory_budget``).
        tile_shape, batch_size: tiling (see :func:`unetkit.inference.predict`); the mask run
            uses its default tile shape for ``memory_budget``.
        overlap: blockwise overlap in pixels (default
            :data:`~unetkit.clustering.blockwise.DEFAULT_OVERLAP`).
        min_size: objects of fewer pixels become background (0), judged on the whole image
            (after blockwise merging); HDBSCAN's smallest cluster. Default: the run's
            ``task.min_size`` (spoco: 50), else :data:`DEFAULT_MIN_SIZE`; 0 keeps every object.
        scheduler: None (in-process), ``"local"`` (a LocalCluster of ``workers`` processes),
            a scheduler address or a ``distributed.Client``: prediction and blockwise
            clustering as Dask tasks (module docstring).
        workers: worker processes of ``scheduler="local"``.
        worker_device: torch device of the Dask workers.
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
    if mask is not None and mask_run is not None:
        raise InputError("give either a mask file (--mask) or a semantic run that predicts one (--mask-run), not both")
    ndim = cfg.model.ndim
    array, has_c = open_source(source, axes, ndim=ndim, channels=cfg.model.in_channels)
    if scheduler is not None:
        _check_lazy_source(source, axes, len(array.shape))
    spatial = tuple(int(s) for s in (array.shape[1:] if has_c else array.shape))
    fg: Any = None if mask is None else read_mask(mask, spatial)
    device = next(model.parameters()).device
    mask_model = None if mask_run is None else load_mask_run(mask_run, mask_checkpoint, ndim=ndim,
                                                             map_location=device)
    nets: list[tuple[nn.Module, Any]] = [(model, task.predictor(model))]
    if method == "consistency":
        if checkpoint is None:
            raise InputError("--method consistency needs the checkpoint that holds the momentum network g")
        g = momentum_network(task, model, checkpoint)
        nets.append((g, g))
    if scheduler is not None and nets[0][1] is not model:
        raise InputError(f"task {getattr(task, 'name', task)!r} predicts through its own predictor, which the Dask "
                         "workers do not run; drop --scheduler")
    e_dim = int(getattr(nets[0][1], "out_channels", model.out_channels))
    channels = e_dim * len(nets)
    if min_size is not None and (isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0):
        raise InputError(f"min_size={min_size!r} must be an integer >= 0 (pixels; 0 keeps every object)")
    min_px = run_min_size(cfg) if min_size is None else int(min_size)
    fn = cluster_function(method, task, cfg, e_dim, min_px)
    normalizer = normalizer_for(array, has_c, cfg, name=str(source))
    tiling: dict[str, Any] = {"tile_shape": tile_shape, "memory_budget": memory_budget, "batch_size": batch_size,
                              "transform": normalizer, "progress": progress}
    size = 4 * channels * int(np.prod(spatial))
    budget = memory_budget if cluster_budget is None else int(cluster_budget)
    info: dict[str, Any] = {"blockwise": size > budget, "block_shape": None}
    with (
        tempfile.TemporaryDirectory(prefix=".unetkit-segment-", dir=_scratch_dir(out_path)) as tmp,
        _client_or_none(scheduler, workers) as client,  # closed (workers stopped) before the scratch is removed
    ):
        scratch = Path(tmp)
        if mask_model is not None:
            assert mask_run is not None
            fg = predicted_mask(mask_run, mask_model, source, axes=axes, checkpoint=mask_checkpoint,
                                memory_budget=memory_budget, batch_size=batch_size, client=client, scratch=scratch,
                                worker_device=worker_device, progress=progress)
        if client is None:
            emb = _predict_here(nets, array, scratch, (channels, *spatial), e_dim, info["blockwise"], tiling)
        else:
            emb = _predict_on(client, nets, source, scratch, worker_device, tiling)
        if info["blockwise"]:
            ov = DEFAULT_OVERLAP if overlap is None else int(overlap)
            block = block_shape_for(spatial, bytes_per_pixel(channels, ndim), budget, ov)
            info["block_shape"] = block
            mapper = None
            if client is not None:
                from unetkit.inference.dask import client_mapper

                mapper = client_mapper(client)
                if isinstance(fg, np.ndarray):  # tasks read their block of the mask from disk too
                    fg = _store_mask(fg, scratch / "given-mask.zarr", block)
            labels = blockwise_cluster(emb, lambda e, m: fn(e, m, False, False), block_shape=block, overlap=ov,
                                       mask=fg, progress=progress, mapper=mapper,
                                       min_size=0 if method == "hdbscan" else min_px,
                                       background_radius=background_radius(method, cfg))
        else:
            m = None if fg is None else np.asarray(fg[...]) != 0
            labels = np.asarray(fn(np.asarray(emb[...], dtype=np.float32), m, m is None))
        del emb
    n = int(labels.max(initial=0))
    info["objects"] = n
    info["min_size"] = min_px
    labels = labels.astype(np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32)
    axes_out = "ZYX"[3 - ndim:]
    return write_image(target, labels, axes=axes_out, overwrite=True), info


def _predict_here(nets: list[tuple[nn.Module, Any]], array: Any, scratch: Path, shape: tuple[int, ...], e_dim: int,
                  on_disk: bool, tiling: dict[str, Any]) -> np.ndarray:
    """In-process embeddings ``(C, *S)`` float32 of every net, stacked: in memory, or in a
    memory-mapped ``scratch/embeddings.npy`` when ``on_disk``."""
    if on_disk:
        emb = np.lib.format.open_memmap(scratch / "embeddings.npy", mode="w+", dtype=np.float32, shape=shape)
    else:
        emb = np.empty(shape, dtype=np.float32)
    for k, (net, predictor) in enumerate(nets):
        predict(net, array, out=_Offset(emb, k * e_dim, e_dim), predictor=predictor, **tiling)
    return emb


def _predict_on(client: Any, nets: list[tuple[nn.Module, Any]], source: str | os.PathLike, scratch: Path,
                worker_device: str, tiling: dict[str, Any]) -> ScratchArray:
    """Embeddings of every net predicted by Dask tasks into ``scratch/embeddings-K.zarr``
    (:func:`~unetkit.inference.dask.predict_dask`), read as one stacked :class:`ScratchArray`."""
    from unetkit.inference.dask import predict_dask

    paths = [predict_dask(net, source, scratch / f"embeddings-{k}.zarr", scheduler=client, device=worker_device,
                          **tiling)
             for k, (net, _) in enumerate(nets)]
    return ScratchArray(paths)


def _store_mask(fg: np.ndarray, path: Path, chunks: tuple[int, ...]) -> ScratchArray:
    """``fg`` written to a scratch Zarr array (chunks ``chunks``), read back lazily."""
    import zarr

    store = zarr.open_array(str(path), mode="w", shape=fg.shape, dtype=bool,
                            chunks=tuple(min(c, s) for c, s in zip(chunks, fg.shape)))
    store[...] = fg
    return ScratchArray([path])


def _check_lazy_source(source: str | os.PathLike, axes: str | None, n_axes: int) -> None:
    """With a scheduler the workers read the source tile by tile: Zarr or HDF5, ``[C][Z]YX``."""
    from unetkit.inference.dask import check_lazy_axes

    if not is_chunked_target(source):
        raise InputError(f"--scheduler reads the input tile by tile and needs a Zarr or HDF5 image; got {source} "
                         "(convert it, or drop --scheduler)")
    check_lazy_axes(axes, n_axes)


@contextlib.contextmanager
def _client_or_none(scheduler: Any, workers: int) -> Iterator[Any]:
    """The Dask client of ``scheduler`` (:func:`~unetkit.inference.dask.dask_client`), or None in-process."""
    if scheduler is None:
        yield None
        return
    from unetkit.inference.dask import dask_client

    with dask_client(scheduler, workers) as client:
        yield client


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


__all__ = ["METHODS", "ScratchArray", "cluster_function", "foreground_of", "load_mask_run", "momentum_network",
           "predicted_mask", "read_mask", "segment_file"]

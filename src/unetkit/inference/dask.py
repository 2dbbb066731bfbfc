"""Scale-out prediction with dask.distributed: the exact tiling plan as tasks, Zarr in, Zarr out.

:func:`predict_dask` runs the *same* :class:`~unetkit.inference.tiling.TilePlan` as
:func:`~unetkit.inference.predict` (built by :func:`~unetkit.inference.tiling.plan_tiles` with
the same arguments), one task per batch of ``batch_size`` tiles in the same C order, so every
forward pass sees the same batch as in-process and the Zarr result equals the in-process result
bitwise (same device, same torch thread count per forward pass).

How the work is spread:

* **The model is not shipped with every task.** A run folder is loaded once per worker
  process with :func:`~unetkit.runs.load_model` and cached, keyed by the
  resolved folder, the checkpoint and the checkpoint file's mtime (a retrained run is
  reloaded). An ``nn.Module`` is serialised once in the client (``model.json``-like config +
  ``state_dict``; a pickle of the module only for models without a registered config) and
  broadcast to the workers with ``client.scatter(..., broadcast=True)``; tasks take the future
  and each worker builds the model once per token. :func:`worker_model_builds` (run it with
  ``client.run``) says how many models a worker has built.
* **Blockwise I/O.** Each task reads its input windows from the source (Zarr, or HDF5 opened
  read-only once per worker), mirrored beyond the border exactly as in-process, runs the
  network and writes the kept cores into the target Zarr array. The target's chunks are
  ``(C_out, *plan.core_shape)``: in an exact plan the tiles' cores *are* the chunk grid (cores
  start at multiples of the core size and are one core long; the last core along an axis is
  shorter, a partial edge chunk), so every task writes whole chunks that no other task touches
  and no lock is needed. Tasks return only tile indices, never data.
* **Atomic output.** The target is built at a hidden temporary path next to it and moved into
  place only when every task has succeeded; on an error the pending tasks are cancelled, the
  running ones are waited for, and the temporary array is removed. A failing task raises
  :class:`TileError` naming its tiles.
* **Any per-item work.** :func:`client_mapper` turns a client into the ``mapper(fn, items)``
  of :func:`~unetkit.clustering.blockwise.blockwise_cluster`: ``fn`` is broadcast once, each
  task gets one item (a block's slices) and reads its data itself (``unetkit segment
  --scheduler`` clusters blocks read from Zarr this way); results come back in order.
* **Threads.** A LocalCluster made here runs one task at a time per worker process; a worker's
  forward pass uses ``threads_per_worker`` torch threads (``torch.set_num_threads``).

dask and distributed are imported only inside the functions that need them, so importing this
module (and ``unetkit``) stays light.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from unetkit.data.io import new_array, open_array, parse_location, validate_axes
from unetkit.data.io.paths import resolve
from unetkit.errors import InputError, UnetkitError
from unetkit.inference.fast import forward_batch, to_fast_layout
from unetkit.inference.files import (
    OUTPUT_TYPES,
    WHOLE_OUTPUT_LIMIT,
    check_whole_output,
    labels_of,
    needs_whole_output,
    normalizer_for,
    probabilities_of,
)
from unetkit.inference.predict import _check_dtype, _layout, read_tile
from unetkit.inference.tiling import DEFAULT_MEMORY_BUDGET, Tile, TilePlan, plan_tiles, warn_if_inexact
from unetkit.models.protocol import as_tileable

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = [
    "BlockError",
    "TileError",
    "check_lazy_axes",
    "clear_worker_cache",
    "client_mapper",
    "dask_client",
    "predict_dask",
    "predict_file_dask",
    "run_normalizer",
    "worker_model_builds",
]

Transform = Callable[[np.ndarray], np.ndarray]
_ZARR_FORMATS = ("zarr", "ome-zarr")
_MAX_CACHED = 4  # models / sources kept per worker process (least recently used dropped)


class TileError(UnetkitError, RuntimeError):
    """A task of :func:`predict_dask` failed; the message names its tiles and the cause."""


class BlockError(UnetkitError, RuntimeError):
    """A task of :func:`client_mapper` failed; the message names its item (e.g. a block's slices) and the cause."""


# --------------------------------------------------------------------------------------------
# worker side: per-process caches (a worker process of a LocalCluster, or any dask worker)

_LOCK = threading.Lock()
_MODELS: OrderedDict[tuple, tuple[nn.Module, torch.memory_format]] = OrderedDict()
_SOURCES: OrderedDict[tuple, Any] = OrderedDict()
_STATE: dict[str, Any] = {"builds": 0, "threads": None}
_IN_FLIGHT: dict[str, int] = {}  # run id -> tasks of that run executing in this process
_ABORTED: OrderedDict[str, None] = OrderedDict()  # run ids whose remaining tasks must not run


def _abort(run_id: str) -> int:
    """Mark a run aborted in this process (no task of it starts or writes afterwards); return
    how many of its tasks are still executing here."""
    with _LOCK:
        _ABORTED[run_id] = None
        while len(_ABORTED) > 1024:
            _ABORTED.popitem(last=False)
        return _IN_FLIGHT.get(run_id, 0)


def _in_flight(run_id: str) -> int:
    with _LOCK:
        return _IN_FLIGHT.get(run_id, 0)


def worker_model_builds() -> int:
    """How many models this process has built for :func:`predict_dask` (``client.run(worker_model_builds)``)."""
    return int(_STATE["builds"])


def clear_worker_cache() -> None:
    """Drop the cached models and open sources of this process and reset the build counter."""
    with _LOCK:
        _MODELS.clear()
        _SOURCES.clear()
        _STATE["builds"] = 0


def _remember(cache: OrderedDict, key: tuple, value: Any) -> Any:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _MAX_CACHED:
        cache.popitem(last=False)
    return value


def _build_from_blob(blob: bytes) -> nn.Module:
    """Rebuild a model serialised by :func:`_serialise` (b"C" + config/state dict, or b"P" + pickle)."""
    if blob[:1] == b"P":
        import cloudpickle

        return cloudpickle.loads(blob[1:])
    from unetkit.models import create_model

    payload = torch.load(io.BytesIO(blob[1:]), map_location="cpu", weights_only=True)
    model = create_model(payload["name"], **payload["kwargs"])
    model.load_state_dict(payload["state_dict"])
    return model


def _worker_model(spec: tuple, blob: bytes | None, device: str) -> tuple[nn.Module, torch.memory_format]:
    """The cached model of ``spec`` on this worker, built at most once per key and rewritten for
    inference (:func:`~unetkit.inference.fast.to_fast_layout`), with its input memory format."""
    from unetkit.runs import checkpoint_path, load_model

    if spec[0] == "run":
        _, run, which = spec
        ckpt = checkpoint_path(run, which)
        key: tuple = ("run", run, which, ckpt.stat().st_mtime_ns if ckpt.is_file() else None, device)
    else:
        key = ("blob", spec[1], device)
    with _LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
        if spec[0] == "run":
            model = load_model(spec[1], spec[2], map_location=device)
        else:
            assert blob is not None
            model = _build_from_blob(blob)
        model = model.to(device)
        memory_format = to_fast_layout(model, as_tileable(model).ndim)  # a private copy: rewritten for good
        _STATE["builds"] += 1
        return _remember(_MODELS, key, (model, memory_format))


def _worker_source(spec: tuple) -> Any:
    """The source array: opened once per process for a path (HDF5 read-only), or the array itself."""
    if spec[0] == "array":
        return spec[1]
    location = spec[1]
    path, _ = parse_location(location)
    key = (location, path.stat().st_mtime_ns if path.exists() else None)
    with _LOCK:
        if key in _SOURCES:
            return _SOURCES[key]
        array, _ = open_array(location, mode="r")
        return _remember(_SOURCES, key, array)


def _set_threads(threads: int) -> None:
    if _STATE["threads"] != threads:
        torch.set_num_threads(threads)
        _STATE["threads"] = threads


def _open_target(address: tuple[str, str]) -> Any:
    import zarr

    root, name = address
    if not Path(root).exists():  # the run was aborted and its temporary array removed
        raise InputError(f"target array {root} no longer exists")
    return zarr.open_array(root, path=name or "", mode="r+")


def _tile_names(tiles: Sequence[Tile]) -> str:
    return ", ".join(f"{t.index} (input window at {t.input_start})" for t in tiles)


def _run_tiles(job: dict[str, Any], blob: bytes | None, tiles: list[Tile]) -> list[tuple[int, ...]]:
    """One task: read the tiles' windows, run one forward pass
    (:func:`~unetkit.inference.fast.forward_batch`, as in-process), write the kept cores."""
    run_id = job["run_id"]
    with _LOCK:
        if run_id in _ABORTED:
            return []
        _IN_FLIGHT[run_id] = _IN_FLIGHT.get(run_id, 0) + 1
    try:
        from unetkit.runs import select_device

        _set_threads(job["threads"])
        model, memory_format = _worker_model(job["model"], blob, str(select_device(job["device"], setting="--device")))
        source = _worker_source(job["source"])
        plan: TilePlan = job["plan"]
        batch = np.stack([read_tile(source, plan, t, channels=job["channels"], transform=job["transform"])
                          for t in tiles])
        device = next(model.parameters()).device
        result = forward_batch(model, batch, device, memory_format)
        if run_id in _ABORTED:  # the client waits for this task (in flight) before removing the target
            return []
        out = _open_target(job["target"])
        for t, y in zip(tiles, result):
            out[(slice(None), *t.target)] = y[(slice(None), *t.keep)]
    except Exception as exc:  # noqa: BLE001 -- re-raised with the tiles named
        raise TileError(f"tile(s) {_tile_names(tiles)} failed: {type(exc).__name__}: {exc}") from None
    finally:
        with _LOCK:
            _IN_FLIGHT[run_id] -= 1
            if not _IN_FLIGHT[run_id]:
                del _IN_FLIGHT[run_id]
    return [t.index for t in tiles]


# --------------------------------------------------------------------------------------------
# client side


def _serialise(model: nn.Module) -> bytes:
    """``b"C"`` + torch-saved ``{name, kwargs, state_dict}`` for a registered model with a ``.config``
    (loaded back with ``weights_only=True``), else ``b"P"`` + a cloudpickle of the module."""
    from unetkit.models.registry import registered_name

    config = getattr(model, "config", None)
    name = registered_name(model)
    if isinstance(config, dict) and name is not None:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        buffer = io.BytesIO()
        torch.save({"name": name, "kwargs": dict(config), "state_dict": state}, buffer)
        return b"C" + buffer.getvalue()
    import copy

    import cloudpickle

    return b"P" + cloudpickle.dumps(copy.deepcopy(model).cpu())


def _source_spec(source: Any) -> tuple[Any, tuple]:
    """(array for the client, spec the workers open it from)."""
    if isinstance(source, (str, os.PathLike)):
        path, key, fmt = resolve(source, None)
        if fmt not in ("zarr", "ome-zarr", "hdf5"):
            raise InputError(f"predict_dask reads Zarr or HDF5 sources tile by tile; {path} is {fmt.upper()} "
                             "(convert it with unetkit.data.io.write_image, or use predict in-process)")
        location = str(path.resolve()) + (f":{key}" if key else "")
        array, axes = open_array(location)
        canon = "".join(a for a in "CZYX" if a in axes)
        if axes != canon:
            raise InputError(f"{location}: axes {axes!r} are not in [C][Z]YX order; predict_dask reads the file "
                             f"lazily and cannot transpose it (rewrite it with axes {canon!r})")
        return array, ("path", location)
    if type(source).__module__.startswith("h5py"):
        raise InputError("pass an HDF5 source as a path ('file.h5:key'), not an open h5py.Dataset: "
                         "each worker opens it read-only itself")
    if not hasattr(source, "shape") or not hasattr(source, "dtype"):
        raise InputError(f"source must be a Zarr/HDF5 path or a zarr array, got {type(source).__name__}")
    return source, ("array", source)


def _target_location(target: Any, overwrite: bool) -> Path:
    if not isinstance(target, (str, os.PathLike)):
        raise InputError(f"target must be a path to a .zarr or .ome.zarr store, got {type(target).__name__}")
    try:
        path, _, fmt = resolve(target, None)
    except InputError:
        fmt, path = None, Path(os.fspath(target))
    if fmt not in _ZARR_FORMATS:
        raise InputError(f"predict_dask writes Zarr: the target {os.fspath(target)!r} must end in .zarr or .ome.zarr "
                         "(tasks on several workers write chunks concurrently, which TIFF, PNG and HDF5 cannot take)")
    if path.exists() and not overwrite:
        raise InputError(f"output {path} already exists; pass overwrite=True (--overwrite) to replace it")
    return path


def _address(array: Any) -> tuple[str, str]:
    """(store folder, array path in it) of a local zarr array, for workers to reopen it."""
    store = array.store
    root = getattr(store, "root", None) or getattr(store, "path", None)
    if root is None:
        raise InputError(f"cannot locate the Zarr store {store!r} on disk")
    return str(root), str(getattr(array, "path", "") or "")


@contextlib.contextmanager
def dask_client(scheduler: Any, workers: int) -> Iterator[Client]:
    """The client to use; a LocalCluster (and its client) made here is closed on exit, errors included."""
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler
    elif scheduler is None or scheduler == "local":
        if not isinstance(workers, int) or workers < 1:
            raise InputError(f"workers must be a positive integer, got {workers!r}")
        with (
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                         silence_logs=logging.ERROR) as cluster,  # a failed task is reported once, as TileError
            Client(cluster) as client,
        ):
            yield client
    elif isinstance(scheduler, str):
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise InputError(f"cannot reach the dask scheduler at {scheduler!r}: {exc}") from None
        with client:
            yield client
    else:
        raise InputError(f"scheduler must be 'local', a scheduler address such as 'tcp://host:8786' or a "
                         f"distributed.Client, got {scheduler!r}")


def _stop(client: Client, futures: list, run_id: str, timeout: float = 120.0) -> None:
    """Cancel a run's tasks and wait (bounded) until none is still executing on a worker.

    Cancelling only forgets tasks on the scheduler: a task already running finishes. So every
    worker is told that the run is aborted (tasks that have not started return at once, running
    ones skip their write) and asked how many of its tasks are still executing, until none is;
    only then may the caller remove the temporary target.
    """
    try:
        client.cancel(futures)
        busy = client.run(_abort, run_id)
        deadline = time.monotonic() + timeout
        while any(busy.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
            busy = client.run(_in_flight, run_id)
    except Exception:  # noqa: BLE001 -- scheduler or workers gone: nothing left running to wait for
        return


def predict_dask(
    model_or_run: nn.Module | str | os.PathLike,
    source: Any,
    target: str | os.PathLike,
    *,
    tile_shape: Sequence[int] | None = None,
    memory_budget: int | None = DEFAULT_MEMORY_BUDGET,
    batch_size: int = 1,
    scheduler: str | Client | None = None,
    workers: int = 2,
    threads_per_worker: int = 1,
    transform: Transform | None = None,
    checkpoint: str = "best",
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Predict a Zarr/HDF5 image into a Zarr array with dask.distributed, tile by tile.

    Args:
        model_or_run: a unetkit U-Net, or a run folder (each worker loads it once).
        source: ``([C,] [Z,] Y, X)`` image: a ``.zarr`` / ``.ome.zarr`` / ``.h5`` path
            (``'file.h5:key'`` selects a dataset) stored in canonical axis order, or a
            ``zarr.Array``. Workers read it themselves, window by window.
        target: path of a new ``.zarr`` / ``.ome.zarr`` store; receives the float32
            ``(C_out, *S)`` raw network outputs (logits / embeddings), chunked
            ``(C_out, *plan.core_shape)``, axes ``C[Z]YX``.
        tile_shape, memory_budget, batch_size: the tiling, exactly as in
            :func:`~unetkit.inference.predict` (same plan); one task runs one batch.
        scheduler: ``None`` or ``"local"`` (a LocalCluster of ``workers`` processes, closed
            afterwards; a script that makes one needs the ``if __name__ == "__main__":`` guard,
            as workers are spawned), a scheduler address (``"tcp://host:8786"``) or a
            ``distributed.Client``. Workers must be able to import unetkit and read the paths.
        workers: worker processes of the LocalCluster (ignored for an existing scheduler).
        threads_per_worker: torch threads of each worker's forward pass.
        transform: pixel-wise ``(C, *tile)`` float32 -> float32 function applied to every input
            window (e.g. a normaliser; must be picklable, it is broadcast once).
        checkpoint: ``"best"`` or ``"last"`` (run folders only).
        device: torch device on the workers (``"cpu"``, ``"cuda"``, ``"mps"``, ``"auto"``:
            each worker picks its own).
        overwrite: replace an existing target.
        progress: progress bar over tiles (on a terminal).

    Returns:
        the target path. Its content equals ``predict(model, source_array, tile_shape, batch_size,
        memory_budget=..., transform=...)`` bitwise on the same device and torch thread count.

    Raises:
        InputError: a non-Zarr target, an existing target without ``overwrite``, a source that
            is not Zarr/HDF5, a blended plan, bad sizes.
        TileError: a task failed (the message names the tiles); no output is left behind.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(threads_per_worker, int) or threads_per_worker < 1:
        raise InputError(f"threads_per_worker must be a positive integer, got {threads_per_worker!r}")
    out_path = _target_location(target, overwrite)
    if isinstance(model_or_run, nn.Module):
        model = model_or_run
        blob: bytes | None = _serialise(model)
        model_spec: tuple = ("blob", hashlib.sha256(blob).hexdigest())
    else:
        from unetkit.runs import load_model

        run = Path(model_or_run).resolve()
        model = load_model(run, checkpoint, map_location="cpu")
        blob, model_spec = None, ("run", str(run), checkpoint)
    array, source_spec = _source_spec(source)
    shape = tuple(int(s) for s in array.shape)
    stacked, channels = _layout(model, shape)
    if stacked:
        raise InputError(f"predict_dask predicts one image; got a stack of shape {shape} (predict its images one by one)")
    _check_dtype(array)
    spatial = shape[1:] if channels else shape
    plan = plan_tiles(model, spatial, tile_shape=tile_shape, memory_budget=memory_budget, batch_size=batch_size)
    if plan.mode == "blend":  # pragma: no cover -- plan_tiles never picks it by default
        raise InputError("predict_dask cannot run a blended plan (overlapping tiles are accumulated, not written)")
    warn_if_inexact(model, plan)
    c_out = int(as_tileable(model).out_channels)
    axes = "C" + "ZYX"[3 - len(spatial) :]
    tiles = list(plan.tiles())
    groups = [tiles[i : i + batch_size] for i in range(0, len(tiles), batch_size)]
    run_id = uuid.uuid4().hex[:8]
    with (
        new_array(out_path, shape=(c_out, *spatial), dtype=np.float32, axes=axes, chunks=(c_out, *plan.core_shape),
                  overwrite=overwrite) as out,
        dask_client(scheduler, workers) as client,
    ):
        job = {"run_id": run_id, "plan": plan, "channels": channels, "source": source_spec, "target": _address(out),
               "transform": transform, "device": device, "threads": threads_per_worker, "model": model_spec}
        [job_future] = client.scatter([job], broadcast=True, hash=False)
        blob_future = client.scatter(blob, broadcast=True, hash=False) if blob is not None else None
        futures = {
            client.submit(_run_tiles, job_future, blob_future, group, key=f"unetkit-tiles-{run_id}-{n}", pure=False): group
            for n, group in enumerate(groups)
        }
        bar = tqdm(total=plan.n_tiles, desc="tiles", unit="tile", disable=not (progress and sys.stderr.isatty()))
        try:
            for future in as_completed(futures):
                try:
                    done = future.result()
                except TileError:
                    raise
                except Exception as exc:
                    raise TileError(f"tile(s) {_tile_names(futures[future])} failed: {type(exc).__name__}: {exc}") from exc
                bar.update(len(done))
        except BaseException:
            _stop(client, list(futures), run_id)
            raise
        finally:
            bar.close()
            del job_future, blob_future
    return out_path


# --------------------------------------------------------------------------------------------
# any per-item work as tasks (blockwise clustering's ``mapper``)


def _apply(fn: Callable[[Any], Any], item: Any) -> Any:
    """One task of :func:`client_mapper`: ``fn(item)``, a failure re-raised naming the item."""
    try:
        return fn(item)
    except Exception as exc:  # noqa: BLE001 -- re-raised with the item named
        raise BlockError(f"block {_describe(item)} failed: {type(exc).__name__}: {exc}") from None


def _describe(item: Any) -> str:
    if isinstance(item, tuple) and item and all(isinstance(s, slice) for s in item):
        return "[" + ", ".join(f"{s.start}:{s.stop}" for s in item) + "]"
    return repr(item)


def client_mapper(client: Client, *, name: str = "block") -> Callable[[Callable[[Any], Any], Sequence[Any]], list]:
    """A ``mapper(fn, items) -> [fn(item) for item in items]`` that runs every call as a Dask task.

    ``fn`` is pickled (cloudpickle) and broadcast to the workers *once* with
    ``client.scatter(..., broadcast=True)``; each task gets only its item, so ``fn`` must read
    what it needs itself (e.g. :func:`~unetkit.clustering.blockwise.blockwise_cluster`'s block
    function reading its block from a Zarr store that workers reopen by path). Results come
    back to the client in the order of ``items``. When a task fails the pending ones are
    cancelled and :class:`BlockError` (naming the item) is raised.
    """

    def mapper(fn: Callable[[Any], Any], items: Sequence[Any]) -> list:
        items = list(items)
        if not items:
            return []
        run_id = uuid.uuid4().hex[:8]
        fn_future = client.scatter(fn, broadcast=True, hash=False)
        futures = [client.submit(_apply, fn_future, item, key=f"unetkit-{name}-{run_id}-{n}", pure=False)
                   for n, item in enumerate(items)]
        try:
            return client.gather(futures)
        except BaseException:
            with contextlib.suppress(Exception):
                client.cancel(futures)
            raise
        finally:
            del fn_future

    return mapper


def check_lazy_axes(axes: str | None, n_axes: int) -> None:
    """``InputError`` unless ``axes`` (``--axes`` of a file read lazily by the workers, ``n_axes``
    long) is None or in canonical ``[C][Z]YX`` order: such a file cannot be transposed."""
    if axes is None:
        return
    given = validate_axes(axes, n_axes)
    if given != "".join(a for a in "CZYX" if a in given):
        raise InputError(f"axes {axes!r} are not in [C][Z]YX order; with --scheduler the file is read lazily "
                         "and cannot be transposed")


# --------------------------------------------------------------------------------------------
# run folders: normalisation as in training, output types (the CLI's --scheduler path)


def run_normalizer(cfg: Any, array: Any, *, channels: bool, name: str = "the source") -> Transform:
    """The run's intensity normalisation for ``array``, statistics computed once in the client.

    As :func:`unetkit.inference.files.predict_file` does: the statistics come from a bounded,
    regular subsample of the (possibly huge, lazy) source (the whole image when it is small),
    and the returned pixel-wise ``(C, *tile) -> (C, *tile)`` function holds only the small
    per-channel ``(offset, scale)`` arrays, so it is cheap to broadcast to the workers.
    """
    return normalizer_for(array, channels, cfg, name=name)


def predict_file_dask(
    run: str | os.PathLike,
    source: str | os.PathLike,
    target: str | os.PathLike,
    *,
    axes: str | None = None,
    output_type: str = "logits",
    checkpoint: str = "best",
    tile_shape: Sequence[int] | None = None,
    memory_budget: int | None = DEFAULT_MEMORY_BUDGET,
    batch_size: int = 1,
    scheduler: str | Client | None = None,
    workers: int = 2,
    threads_per_worker: int = 1,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = False,
    max_whole_output_bytes: int = WHOLE_OUTPUT_LIMIT,
) -> Path:
    """Predict an image file with a run folder on a dask cluster (``unetkit predict --scheduler``).

    The source is normalised as in training (statistics once, in the client, see
    :func:`run_normalizer`) and predicted with :func:`predict_dask` (``tile_shape``,
    ``memory_budget``, ``batch_size``: the tiling, as in-process).
    ``output_type="logits"`` writes the raw outputs ``C[Z]YX`` float32; ``"probabilities"``
    (softmax, sigmoid for one channel) and ``"labels"`` (``[Z]YX`` uint16, the task's
    post-processing) read a temporary logits store (removed afterwards). A pixel-wise
    post-processing (``task.pointwise``, e.g. argmax) runs as one blockwise dask pass; one that
    needs the whole image (clustering embeddings) runs once, in the client, on the whole raw
    output gathered into memory, as :func:`~unetkit.inference.files.predict_file` does (refused
    before any work if that output exceeds ``max_whole_output_bytes``).
    """
    import dask.array as da
    import zarr

    from unetkit.runs import load_run

    if output_type not in OUTPUT_TYPES:
        raise InputError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")
    out_path = _target_location(target, overwrite)
    cfg, model, task = load_run(run, checkpoint, map_location="cpu")
    array, _ = _source_spec(source)
    check_lazy_axes(axes, len(array.shape))
    ndim, c_in = int(cfg.model.ndim), int(cfg.model.in_channels)
    channels = len(array.shape) == ndim + 1
    if len(array.shape) not in (ndim, ndim + 1) or (channels and array.shape[0] != c_in) or (not channels and c_in != 1):
        raise InputError(f"{source}: image of shape {tuple(array.shape)} does not fit the run's {ndim}-D model "
                         f"with {c_in} input channel(s)")
    spatial = tuple(int(s) for s in (array.shape[1:] if channels else array.shape))
    whole = needs_whole_output(task, output_type)
    if whole:
        check_whole_output(task, (int(as_tileable(model).out_channels), *spatial), max_whole_output_bytes)
    transform = run_normalizer(cfg, array, channels=channels, name=str(source))
    options: dict[str, Any] = {"checkpoint": checkpoint, "tile_shape": tile_shape, "memory_budget": memory_budget,
                               "batch_size": batch_size, "threads_per_worker": threads_per_worker, "device": device,
                               "progress": progress}
    with dask_client(scheduler, workers) as client:
        if output_type == "logits":
            return predict_dask(run, source, out_path, transform=transform, scheduler=client, overwrite=overwrite,
                                **options)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.logits.", suffix=".tmp", dir=out_path.parent))
        try:
            logits_path = predict_dask(run, source, scratch / "logits.zarr", transform=transform, scheduler=client,
                                       **options)
            stored = zarr.open_array(str(logits_path), mode="r")
            spatial_axes = "ZYX"[3 - ndim :]
            if whole:  # gather the whole raw output, post-process it once (never tile by tile)
                with new_array(out_path, shape=spatial, dtype=np.uint16, axes=spatial_axes,
                               chunks=stored.chunks[1:], overwrite=overwrite) as out:
                    out[...] = labels_of(np.asarray(stored[...]), task)
                return out_path
            logits = da.from_zarr(stored)
            if output_type == "labels":
                result = logits.map_blocks(labels_of, task, drop_axis=0, dtype=np.uint16)
                shape, dtype, res_axes, chunks = logits.shape[1:], np.uint16, spatial_axes, logits.chunksize[1:]
            else:
                result = logits.map_blocks(probabilities_of, dtype=np.float32)
                shape, dtype, res_axes, chunks = logits.shape, np.float32, "C" + spatial_axes, logits.chunksize
            with new_array(out_path, shape=shape, dtype=dtype, axes=res_axes, chunks=chunks, overwrite=overwrite) as out:
                client.compute(da.store(result, out, lock=False, compute=False)).result()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return out_path

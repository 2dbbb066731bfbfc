"""predict_dask: the exact tiling plan as dask.distributed tasks; Zarr out equals in-process bitwise."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from unetkit.cli import main
from unetkit.data.io import write_image
from unetkit.errors import InputError
from unetkit.inference import plan_tiles, predict, predict_dask
from unetkit.inference.dask import TileError, clear_worker_cache, predict_file_dask, worker_model_builds
from unetkit.models import UNet, create_model
from unetkit.training import validate_config
from unetkit.runs import load_model, save_checkpoint, save_model_json
from unetkit.config import dump_config

zarr = pytest.importorskip("zarr")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """The in-process reference with one torch thread, like each worker (bitwise equality)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def scaled(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Weights scaled up so that the deep levels matter (a wrong pooling phase would show)."""
    torch.manual_seed(seed)
    for m in model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.8)
    return model.eval()


def read(path: Path) -> np.ndarray:
    return np.asarray(zarr.open_array(str(path), mode="r")[...])


def builds(client: distributed.Client) -> dict[str, int]:
    return client.run(worker_model_builds)


def test_2d_module_bitwise_and_model_built_once_per_worker(client: distributed.Client, tmp_path: Path) -> None:
    model = scaled(UNet(1, 3, depth=2, base_features=4), 0)
    img = np.random.default_rng(0).random((300, 260), dtype=np.float32)
    write_image(tmp_path / "src.zarr", img, axes="YX")
    client.run(clear_worker_cache)
    plan = plan_tiles(model, img.shape, tile_shape=(92, 92), batch_size=2)
    assert plan.n_tiles >= 20
    out = predict_dask(model, tmp_path / "src.zarr", tmp_path / "out.zarr", scheduler=client, tile_shape=(92, 92),
                       batch_size=2)
    with one_thread():
        ref = predict(model, img, tile_shape=(92, 92), batch_size=2)
    result = read(out)
    assert result.dtype == np.float32 and np.array_equal(result, ref)  # bitwise
    arr = zarr.open_array(str(out), mode="r")
    assert tuple(arr.chunks) == (3, *plan.core_shape)  # the cores are the chunk grid
    assert arr.attrs["axes"] == "CYX"
    counts = builds(client)
    assert len(counts) == 2 and all(n <= 1 for n in counts.values()) and sum(counts.values()) >= 1
    # a second run with the same model reuses the cached one: no worker builds again
    predict_dask(model, tmp_path / "src.zarr", tmp_path / "out2.zarr", scheduler=client, tile_shape=(92, 92))
    assert builds(client) == counts
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr", "out2.zarr", "src.zarr"]  # no temporaries


def test_3d_multichannel_zarr_array_source(client: distributed.Client, tmp_path: Path) -> None:
    model = scaled(UNet(2, 2, ndim=3, depth=2, base_features=4, factor=(1, 2, 2)), 1)
    img = np.random.default_rng(1).random((2, 20, 50, 47), dtype=np.float32)
    write_image(tmp_path / "vol.zarr", img, axes="CZYX")
    source = zarr.open_array(str(tmp_path / "vol.zarr"), mode="r")
    tile = (32, 68, 68)
    assert plan_tiles(model, img.shape[1:], tile_shape=tile).grid == (2, 2, 2)
    out = predict_dask(model, source, tmp_path / "out.ome.zarr", scheduler=client, tile_shape=tile,
                       transform=lambda x: 2 * x - 1)
    with one_thread():
        ref = predict(model, img, tile_shape=tile, transform=lambda x: 2 * x - 1)
    assert np.array_equal(read(out / "0"), ref)


def write_run(run: Path, seed: int = 2) -> None:
    """A run folder written by hand: config.yaml, model.json, checkpoints/best.pt."""
    cfg = validate_config({"model": {"depth": 2, "base_features": 4, "out_channels": 3, "norm": None}})
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(cfg))
    save_model_json(run, cfg.model.name, cfg.model.kwargs())
    model = scaled(create_model(cfg.model.name, **cfg.model.kwargs()), seed)
    save_checkpoint(run / "checkpoints" / "best.pt", {"model": model.state_dict()})


def test_run_folder_hdf5_source_loaded_once_per_worker(client: distributed.Client, tmp_path: Path) -> None:
    write_run(tmp_path / "run")
    img = (np.random.default_rng(3).random((211, 190)) * 1000).astype(np.uint16)
    write_image(tmp_path / "img.h5", img, axes="YX", key="raw")
    client.run(clear_worker_cache)
    for name in ("a.zarr", "b.zarr"):
        predict_dask(tmp_path / "run", f"{tmp_path / 'img.h5'}:raw", tmp_path / name, scheduler=client,
                     tile_shape=(60, 60), transform=lambda x: x / 1000)
    counts = builds(client)
    assert all(n <= 1 for n in counts.values()) and sum(counts.values()) >= 1  # loaded once, not per task
    with one_thread():
        ref = predict(load_model(tmp_path / "run"), img, tile_shape=(60, 60), transform=lambda x: x / 1000)
    assert np.array_equal(read(tmp_path / "a.zarr"), ref) and np.array_equal(read(tmp_path / "b.zarr"), ref)


def test_failing_tile_is_named_and_leaves_no_output(client: distributed.Client, tmp_path: Path) -> None:
    model = scaled(UNet(1, 2, depth=2, base_features=4), 4)
    img = np.random.default_rng(5).random((300, 300), dtype=np.float32)
    img[10, 10] = np.nan  # only in the window of the first tile
    write_image(tmp_path / "bad.zarr", img, axes="YX")
    with pytest.raises(TileError, match=r"tile\(s\) \(0, 0\) \(input window at \(-20, -20\)\) failed: .*NaN"):
        predict_dask(model, tmp_path / "bad.zarr", tmp_path / "out.zarr", scheduler=client, tile_shape=(92, 92))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zarr"]
    time.sleep(0.5)  # tasks still running when the error came were waited for: none writes afterwards
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zarr"]
    assert client.run(_in_flight_total) == dict.fromkeys(client.scheduler_info()["workers"], 0)


def _in_flight_total() -> int:
    from unetkit.inference import dask as backend

    return sum(backend._IN_FLIGHT.values())


def test_refusals(tmp_path: Path) -> None:
    model = UNet(1, 2, depth=2, base_features=4)
    write_image(tmp_path / "src.zarr", np.zeros((64, 64), np.float32), axes="YX")
    write_image(tmp_path / "img.tif", np.zeros((64, 64), np.float32), axes="YX")
    for target in ("out.tif", "out.h5", "out.png", "out"):
        with pytest.raises(InputError, match=r"writes Zarr.*\.zarr or \.ome\.zarr"):
            predict_dask(model, tmp_path / "src.zarr", tmp_path / target)
    with pytest.raises(InputError, match="already exists"):
        predict_dask(model, tmp_path / "img.tif", tmp_path / "src.zarr")
    with pytest.raises(InputError, match="Zarr or HDF5 sources"):
        predict_dask(model, tmp_path / "img.tif", tmp_path / "new.zarr")
    with pytest.raises(InputError, match="scheduler must be"):
        predict_dask(model, tmp_path / "src.zarr", tmp_path / "new.zarr", scheduler=3)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.tif", "src.zarr"]


def test_cli_scheduler_local_equals_in_process(client: distributed.Client, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "run", seed=6)
    img = (np.random.default_rng(7).random((260, 240)) * 4000).astype(np.uint16)
    write_image(tmp_path / "big.zarr", img, axes="YX")
    run, src = tmp_path / "run", tmp_path / "big.zarr"
    tiling = ["--tile-shape", "92,92", "--batch-size", "2"]
    assert main(["predict", "-m", str(run), "-i", str(src), "-o", str(tmp_path / "dask.zarr"),
                 "--scheduler", "local", "--workers", "2", *tiling]) == 0
    with one_thread():
        assert main(["predict", "-m", str(run), "-i", str(src), "-o", str(tmp_path / "ref.zarr"),
                     "--output-type", "logits", *tiling]) == 0
    assert zarr.open_array(str(tmp_path / "dask.zarr"), mode="r").chunks == (3, 52, 52)  # the tiles' cores
    logits = read(tmp_path / "dask.zarr")
    assert logits.shape == (3, 260, 240) and np.array_equal(logits, read(tmp_path / "ref.zarr"))
    # labels: a blockwise argmax pass on a running scheduler given by its address
    assert main(["predict", "-m", str(run), "-i", str(src), "-o", str(tmp_path / "labels.zarr"),
                 "--scheduler", client.scheduler.address, "--output-type", "labels"]) == 0
    labels = read(tmp_path / "labels.zarr")
    assert labels.dtype == np.uint16 and np.array_equal(labels, logits.argmax(axis=0))
    probs = read(predict_file_dask(run, src, tmp_path / "probs.ome.zarr", output_type="probabilities",
                                   scheduler=client) / "0")
    # softmax block by block on the workers: equal up to the last bit of float32 rounding
    np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(logits), dim=0).numpy(), rtol=0, atol=1e-6)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # refusals: a TIFF output, a TIFF input, --workers without --scheduler
    capsys.readouterr()
    assert main(["predict", "-m", str(run), "-i", str(src), "-o", str(tmp_path / "x.tif"), "--scheduler", "local"]) == 2
    assert "writes Zarr" in capsys.readouterr().err
    write_image(tmp_path / "img.tif", img, axes="YX")
    assert main(["predict", "-m", str(run), "-i", str(tmp_path / "img.tif"), "-o", str(tmp_path / "y.zarr"),
                 "--scheduler", "local"]) == 2
    assert "Zarr or HDF5" in capsys.readouterr().err
    assert main(["predict", "-m", str(run), "-i", str(src), "-o", str(tmp_path / "z.zarr"), "--workers", "3"]) == 2
    assert "--scheduler" in capsys.readouterr().err


def test_embedding_labels_cluster_the_gathered_whole_output(client: distributed.Client, tmp_path: Path) -> None:
    """--output-type labels of a non-pixel-wise task: tiles on the workers, one clustering of the whole output."""
    from embedding_nets import identity_embedding_unet, objects_image

    from unetkit.inference.files import labels_of
    from unetkit.tasks import EmbeddingTask

    cfg = validate_config({"task": {"name": "embedding"}, "data": {"normalize": {"mode": "none"}},
                           "model": {"depth": 2, "base_features": 2, "out_channels": 2, "norm": None}})
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(dump_config(cfg))
    save_model_json(run, cfg.model.name, cfg.model.kwargs())
    model = identity_embedding_unet()
    save_checkpoint(run / "checkpoints" / "best.pt", {"model": model.state_dict()})
    img, boxes = objects_image()
    write_image(tmp_path / "img.zarr", img, axes="YX")
    assert plan_tiles(model, img.shape, tile_shape=(92, 92)).n_tiles >= 4
    out = predict_file_dask(run, tmp_path / "img.zarr", tmp_path / "labels.zarr", output_type="labels",
                            scheduler=client, tile_shape=(92, 92))
    labels = read(out)
    np.testing.assert_array_equal(labels, labels_of(predict(model, img, memory_budget=None), EmbeddingTask(2)))
    assert all(len(np.unique(labels[box])) == 1 for box in boxes.values())
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(InputError, match="need the whole image"):
        predict_file_dask(run, tmp_path / "img.zarr", tmp_path / "x.zarr", output_type="labels", scheduler=client,
                          max_whole_output_bytes=100)

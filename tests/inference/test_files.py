"""Predicting files: out-of-core Zarr/HDF5 in and out equals the in-memory result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from unetkit.data.io import read_image, write_image
from unetkit.errors import InputError
from unetkit.inference.files import predict_file
from unetkit.models import UNet
from unetkit.config import validate_config
from unetkit.tasks import SemanticTask


@pytest.fixture(scope="module")
def setup() -> tuple:
    torch.manual_seed(0)
    model = UNet(1, 3, depth=2, base_features=4).eval()
    cfg = validate_config({"model": {"depth": 2, "base_features": 4, "out_channels": 3}})
    return model, SemanticTask(3), cfg


@pytest.mark.parametrize("output_type", ["labels", "probabilities", "logits"])
def test_zarr_to_zarr_equals_in_memory(setup: tuple, tmp_path: Path, output_type: str) -> None:
    model, task, cfg = setup
    img = (np.random.default_rng(1).random((301, 277)) * 4000).astype(np.uint16)
    write_image(tmp_path / "img.tif", img, axes="YX")
    write_image(tmp_path / "img.zarr", img, axes="YX")
    ref = predict_file(model, task, cfg, tmp_path / "img.tif", tmp_path / "ref.tif", output_type=output_type,  # type: ignore[arg-type]
                       memory_budget=None)
    tiled = predict_file(model, task, cfg, tmp_path / "img.zarr", tmp_path / "out.ome.zarr",
                         output_type=output_type, tile_shape=(92, 92), batch_size=3)  # type: ignore[arg-type]
    a, axes_a = read_image(ref)
    b, axes_b = read_image(tiled)
    assert axes_a == axes_b == ("YX" if output_type == "labels" else "CYX")
    np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), rtol=0, atol=1e-5)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_hdf5_source_and_target(setup: tuple, tmp_path: Path) -> None:
    model, task, cfg = setup
    img = np.random.default_rng(2).random((130, 90)).astype(np.float32)
    write_image(tmp_path / "vol.h5", img, axes="YX", key="raw")
    out = predict_file(model, task, cfg, f"{tmp_path / 'vol.h5'}:raw", f"{tmp_path / 'pred.h5'}:seg", tile_shape=(60, 60))
    labels, axes = read_image(f"{out}:seg")
    assert axes == "YX" and labels.shape == (130, 90) and labels.max() <= 2
    with pytest.raises(InputError, match="already exists"):
        predict_file(model, task, cfg, f"{tmp_path / 'vol.h5'}:raw", f"{tmp_path / 'pred.h5'}:seg")


def test_failed_prediction_leaves_no_partial_output(setup: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import unetkit.inference.files as files

    model, task, cfg = setup
    img = np.random.default_rng(3).random((200, 200)).astype(np.float32)
    img[150, 150] = np.nan
    # as for an image larger than memory, statistics come from a subsample that misses the NaN;
    # the per-tile check finds it after several tiles were already written
    monkeypatch.setattr(files, "strided_sample", lambda a, channel_axis=None: np.asarray(a[::7, ::7]))
    write_image(tmp_path / "big.zarr", img, axes="YX")
    with pytest.raises(InputError, match="NaN"):
        predict_file(model, task, cfg, tmp_path / "big.zarr", tmp_path / "out.zarr", tile_shape=(60, 60),
                     memory_budget=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.zarr"]


# ----------------------------------------------------------------------------- whole-image post-processing


@pytest.fixture(scope="module")
def embedding_run() -> tuple:
    from embedding_nets import identity_embedding_unet

    from unetkit.tasks import EmbeddingTask

    cfg = validate_config({"task": {"name": "embedding"}, "data": {"normalize": {"mode": "none"}},
                           "model": {"depth": 2, "base_features": 2, "out_channels": 2, "norm": None}})
    return identity_embedding_unet(), EmbeddingTask(2), cfg


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_embedding_labels_are_clustered_on_the_whole_image(embedding_run: tuple, tmp_path: Path, suffix: str) -> None:
    """Several tiles, one clustering: equal to clustering the whole-image output; objects cut by a
    tile border keep one id (tile-wise clustering would number them per tile)."""
    from embedding_nets import SCALES, objects_image

    from unetkit.inference import plan_tiles, predict
    from unetkit.inference.files import labels_of

    model, task, cfg = embedding_run
    img, boxes = objects_image()
    write_image(tmp_path / "img.tif", img, axes="YX")
    plan = plan_tiles(model, img.shape, tile_shape=(92, 92))
    assert plan.n_tiles >= 4 and plan.core_shape == (52, 52)
    raw = predict(model, img, memory_budget=None)
    np.testing.assert_array_equal(raw, np.stack([s * img for s in SCALES]))  # the hand-set net is exact
    whole = labels_of(raw, task)
    out = predict_file(model, task, cfg, tmp_path / "img.tif", tmp_path / f"labels{suffix}", tile_shape=(92, 92))
    labels, axes = read_image(out)
    assert axes == "YX"
    np.testing.assert_array_equal(labels, whole)
    ids = {name: np.unique(labels[box]) for name, box in boxes.items()}
    assert all(len(v) == 1 and v[0] > 0 for v in ids.values()), ids  # one id per object, even across borders
    assert len({int(v[0]) for v in ids.values()}) == 4  # and different objects differ
    assert (labels[img == 0] == 0).all()


def test_whole_image_postprocessing_refuses_a_huge_output(embedding_run: tuple, tmp_path: Path) -> None:
    model, task, cfg = embedding_run
    write_image(tmp_path / "img.tif", np.zeros((60, 70), np.float32), axes="YX")
    with pytest.raises(InputError, match=r"task 'embedding' need the whole image.*\(2, 60, 70\).*'logits'"):
        predict_file(model, task, cfg, tmp_path / "img.tif", tmp_path / "out.zarr", max_whole_output_bytes=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.tif"]
    # logits are pixel-wise: no limit applies
    predict_file(model, task, cfg, tmp_path / "img.tif", tmp_path / "out.zarr", output_type="logits",
                 max_whole_output_bytes=1000)

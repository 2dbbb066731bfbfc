"""The spoco task with sparse labels on disk and an annotated background mask
(``data.train.background``): config rules, load-time checks naming the file, the reserved
background id in training targets and patches (never in validation labels), the loss treating
the background as a labelled cluster but not an object, a run that trains and resumes bitwise,
and data files that are never modified."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from killresume import assert_same_run

from unetkit.config import validate_config
from unetkit.data import io
from unetkit.data.sparse import BACKGROUND_ID
from unetkit.data.synthetic import blobs
from unetkit.errors import ConfigError, InputError, MissingFileError
from unetkit.losses.spoco import object_masks
from unetkit.tasks import SpocoTask, build_task
from unetkit.training import Trainer

SHAPE = (48, 48)


def _write_data(root: Path, n: int = 3, masks: tuple[int, ...] = (0, 1)) -> dict[str, Path]:
    """``n`` blob images with sparse labels (the two largest objects kept) under ``root``; images
    ``masks`` get a background mask: the left half of the unlabelled background."""
    dirs = {k: root / k for k in ("img", "lab", "bg")}
    for i in range(n):
        image, dense = blobs(SHAPE, seed=i)
        ids, counts = np.unique(dense[dense > 0], return_counts=True)
        keep = ids[np.argsort(counts)[-2:]]
        sparse = np.where(np.isin(dense, keep), dense, 0).astype(np.uint16)
        io.write_image(dirs["img"] / f"im{i}.tif", image.astype(np.float32), axes="YX")
        io.write_image(dirs["lab"] / f"im{i}.tif", sparse, axes="YX")
        if i in masks:
            mask = (dense == 0)
            mask[:, SHAPE[1] // 2:] = False
            io.write_image(dirs["bg"] / f"im{i}.png", mask.astype(np.uint8) * 255, axes="YX")
    return dirs


def _cfg(out: Path, dirs: dict[str, Path] | None = None, *, background: Path | None = None,
         iterations: int = 4, **task: object) -> dict:
    data: dict = {"patch_shape": [40, 40], "batch_size": 2, "val_fraction": 0.34}
    if dirs is not None:
        data["train"] = {"images": str(dirs["img"]), "labels": str(dirs["lab"])}
        if background is not None:
            data["train"]["background"] = str(background)
    return {"out": str(out), "seed": 3,
            "task": {"name": "spoco", "labels": "sparse", "momentum": 0.5, **task},
            "model": {"depth": 1, "base_features": 4, "out_channels": 4},
            "data": data,
            "training": {"iterations": iterations, "val_every": 2, "checkpoint_every": 2, "device": "cpu"}}


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(("task", "phrase"), [
    ({"name": "semantic"}, "data.train.background: task 'semantic' does not use a background mask"),
    ({"name": "embedding"}, "data.train.background: task 'embedding' does not use"),
    ({"name": "spoco", "labels": "dense"}, "data.train.background: a background mask needs task.labels: sparse"),
    ({"name": "spoco", "fraction": 0.5}, "needs task.labels: sparse"),
])
def test_background_key_only_for_spoco_with_sparse_labels(tmp_path: Path, task: dict, phrase: str) -> None:
    raw = _cfg(tmp_path / "run", {"img": tmp_path, "lab": tmp_path}, background=tmp_path)
    raw["task"] = task
    with pytest.raises(ConfigError, match=phrase.replace(".", r"\.")) as err:
        validate_config(raw)
    assert "\n" not in str(err.value)
    ok = _cfg(tmp_path / "run", {"img": tmp_path, "lab": tmp_path}, background=tmp_path)
    assert validate_config(ok).data.train.background == tmp_path


def test_background_key_refused_for_validation_split(tmp_path: Path) -> None:
    raw = _cfg(tmp_path / "run", {"img": tmp_path, "lab": tmp_path})
    raw["data"]["val"] = {"images": str(tmp_path), "labels": str(tmp_path), "background": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"data\.val\.background: validation scores against the labels as read"):
        validate_config(raw)


# ----------------------------------------------------------------------------- load-time checks


def test_missing_mask_folder_names_it(tmp_path: Path) -> None:
    dirs = _write_data(tmp_path / "data")
    missing = tmp_path / "data" / "nothing"
    with pytest.raises(MissingFileError, match=f"no such file or directory: '{missing}'"):
        Trainer(validate_config(_cfg(tmp_path / "run", dirs, background=missing)), progress=False)


def test_mask_folder_matching_no_image_is_refused(tmp_path: Path) -> None:
    dirs = _write_data(tmp_path / "data", masks=())
    io.write_image(tmp_path / "other" / "x.tif", np.zeros(SHAPE, np.uint8), axes="YX")
    with pytest.raises(InputError, match=r"none of the 1 mask\(s\) in '.*other' is named like an image \('x\.tif'\)"):
        Trainer(validate_config(_cfg(tmp_path / "run", dirs, background=tmp_path / "other")), progress=False)


def test_single_mask_file_needs_a_single_image(tmp_path: Path) -> None:
    dirs = _write_data(tmp_path / "data")
    with pytest.raises(InputError, match="is a single file but there are 3 images"):
        Trainer(validate_config(_cfg(tmp_path / "run", dirs, background=dirs["bg"] / "im0.png")), progress=False)
    one = _write_data(tmp_path / "one", n=1, masks=(0,))
    trainer = Trainer(validate_config(_cfg(tmp_path / "run1", one, background=one["bg"] / "im0.png")),
                      val_samples=[], progress=False)
    assert (trainer.train_samples[0].labels == BACKGROUND_ID).any()


def test_mask_of_the_wrong_shape_names_file_and_shapes(tmp_path: Path) -> None:
    dirs = _write_data(tmp_path / "data")
    io.write_image(dirs["bg"] / "im1.png", np.zeros((40, 48), np.uint8), axes="YX")
    with pytest.raises(InputError, match=r"im1\.png': background mask of shape \(40, 48\) does not match labels "
                                         r"of shape \(48, 48\); give a mask of the label image's shape") as err:
        Trainer(validate_config(_cfg(tmp_path / "run", dirs, background=dirs["bg"])), progress=False)
    assert "\n" not in str(err.value)


def test_mask_overlapping_objects_names_file_and_pixel_count(tmp_path: Path) -> None:
    dirs = _write_data(tmp_path / "data")
    labels, _ = io.read_labels(dirs["lab"] / "im0.tif")
    mask = io.read_labels(dirs["bg"] / "im0.png")[0] > 0
    mask[labels > 0] = True
    n = int((labels > 0).sum())
    io.write_image(dirs["bg"] / "im0.png", mask.astype(np.uint8), axes="YX")
    with pytest.raises(InputError, match=rf"im0\.png': the background mask covers {n} pixel\(s\) of labelled objects"):
        Trainer(validate_config(_cfg(tmp_path / "run", dirs, background=dirs["bg"])), progress=False)


def test_masks_given_to_a_task_without_background_are_refused(tmp_path: Path) -> None:
    dirs = _write_data(tmp_path / "data")
    samples_cfg = validate_config(_cfg(tmp_path / "a", dirs, background=dirs["bg"]))
    samples = Trainer(samples_cfg, progress=False).train_samples
    from unetkit.data.datasets import Sample
    raw = [Sample(s.image, np.where(s.labels == BACKGROUND_ID, 0, s.labels), s.name, s.labels == BACKGROUND_ID)
           for s in samples]
    with pytest.raises(InputError, match="does not use a background mask"):
        Trainer(validate_config({**_cfg(tmp_path / "b"), "task": {"name": "embedding"}}), train_samples=raw,
                val_samples=raw[:1], progress=False)


# ----------------------------------------------------------------------------- targets


def test_training_targets_get_the_reserved_id_validation_labels_do_not(tmp_path: Path) -> None:
    dirs = _write_data(tmp_path / "data", n=5, masks=(0, 1, 2))
    trainer = Trainer(validate_config(_cfg(tmp_path / "run", dirs, background=dirs["bg"])), progress=False)
    task = trainer.task
    assert isinstance(task, SpocoTask)
    assert task.criterion.options["background"] == BACKGROUND_ID and task.criterion.options["unlabelled"] == 0
    by_name = {s.name: s for s in trainer.train_samples}
    with_mask = {s.name for s in trainer.train_samples if (dirs["bg"] / s.name.replace(".tif", ".png")).exists()}
    assert 0 < len(with_mask) < len(by_name)  # both kinds of training image are checked
    for sample in trainer.train_samples:
        raw, _ = io.read_labels(dirs["lab"] / sample.name)
        mask_file = dirs["bg"] / sample.name.replace(".tif", ".png")
        if mask_file.exists():
            mask = io.read_labels(mask_file)[0] > 0
            assert np.array_equal(sample.labels == BACKGROUND_ID, mask)
        else:  # no mask: no labelled background
            assert not (sample.labels == BACKGROUND_ID).any()
        objects = sample.labels != BACKGROUND_ID
        assert np.array_equal(sample.labels[objects], raw[objects])  # objects keep their ids, 0 stays 0
    for sample in trainer.val_samples:  # dense ground truth as read: annotated background stays 0
        raw, _ = io.read_labels(dirs["lab"] / sample.name)
        assert np.array_equal(sample.labels, raw) and sample.name not in by_name
    # patches carry the reserved id (the sampler crops the remapped targets)
    targets = np.concatenate([trainer.sampler.sample()[1] for _ in range(10)])
    assert (targets == BACKGROUND_ID).any() and (targets == 0).any() and set(np.unique(targets)) >= {BACKGROUND_ID}


def test_dense_and_fraction_modes_keep_their_background(tmp_path: Path) -> None:
    dense = validate_config(_cfg(tmp_path, labels="dense"))
    at_p = validate_config(_cfg(tmp_path, labels="dense", fraction=0.5))
    for cfg, background, unlabelled in ((dense, 0, None), (at_p, None, 0)):
        task = build_task(cfg.task, cfg.model)
        assert task.criterion.options["background"] == background
        assert task.criterion.options["unlabelled"] == unlabelled
        with pytest.raises(InputError, match="needs labels='sparse'"):
            task.prepare_background(np.zeros((2, 2), np.int64), np.ones((2, 2), bool))


def test_object_ids_must_stay_below_the_reserved_id(tmp_path: Path) -> None:
    cfg = validate_config(_cfg(tmp_path))
    task = build_task(cfg.task, cfg.model)
    with pytest.raises(InputError, match=f"object id {BACKGROUND_ID}; ids must be below {BACKGROUND_ID}"):
        task.prepare_labels(np.array([[0, BACKGROUND_ID]], np.int64))


# ----------------------------------------------------------------------------- loss


def test_loss_treats_the_background_as_a_labelled_cluster_not_an_object(tmp_path: Path) -> None:
    cfg = validate_config(_cfg(tmp_path))
    task = build_task(cfg.task, cfg.model)
    sparse = np.array([[1, 1, 0, 0, 0, 0, 0, 0]], np.int64)
    mask = np.array([[0, 0, 1, 1, 0, 0, 0, 0]], bool)
    target = task.prepare_background(sparse, mask)
    assert target.tolist() == [[1, 1, BACKGROUND_ID, BACKGROUND_ID, 0, 0, 0, 0]]
    # object at the origin, annotated background 1 away (inside the push margin 2 delta_d = 4),
    # unlabelled pixels far from both (no L_U-push)
    emb = torch.zeros(1, 4, 1, 8)
    emb[0, 0, 0, 2:4] = 1.0
    emb[0, :2, 0, 4:] = 10.0
    with_bg = task.criterion.components(emb, torch.from_numpy(target)[None])[1]
    without = task.criterion.components(emb, torch.from_numpy(sparse)[None])[1]
    assert float(with_bg["push"]) == pytest.approx((4.0 - 1.0) ** 2)  # both ordered pairs: [2 delta_d - d]_+^2
    assert float(without["push"]) == 0.0  # a single cluster: nothing to push
    assert float(with_bg["pull"]) == 0.0 and float(with_bg["u_push"]) == 0.0
    # L_obj: one object only (the background has no mask of its own); its anchor is at the
    # origin, the background pixels 1 away are negatives inside the labelled region
    options = {k: task.criterion.options[k] for k in ("unlabelled", "background", "ignore_index")}
    soft, real = object_masks(emb, torch.from_numpy(target)[None], anchor="mean", **options)
    assert soft.shape[0] == real.shape[0] == 1 and real[0, 0, 0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    emb_far = emb.clone()
    emb_far[0, 0, 0, 2:4] = 50.0  # moving the background away leaves L_obj's only object perfect
    assert float(task.criterion.components(emb_far, torch.from_numpy(target)[None])[1]["obj"]) == pytest.approx(0.0,
                                                                                                             abs=1e-6)
    assert float(with_bg["obj"]) > 0.1  # the background pixels near the anchor are false positives


# ----------------------------------------------------------------------------- end to end


class Killed(BaseException):
    """Stands for SIGKILL: raised mid-step, after a checkpoint."""


def test_run_with_background_folder_trains_resumes_and_leaves_files_alone(tmp_path: Path) -> None:
    dirs = _write_data(tmp_path / "data")
    before = _digests(tmp_path / "data")
    ref = Trainer(validate_config(_cfg(tmp_path / "ref", dirs, background=dirs["bg"])), progress=False)
    assert any((s.labels == BACKGROUND_ID).any() for s in ref.train_samples)
    ref.fit()
    assert ref.step == 4 and np.isfinite(ref.best)

    cut = Trainer(validate_config(_cfg(tmp_path / "cut", dirs, background=dirs["bg"])), progress=False)
    real_step = cut.task.training_step

    def dying_step(model, batch):
        if cut.step == 2:  # after the checkpoint at step 2, in the middle of step 3
            raise Killed
        return real_step(model, batch)

    cut.task.training_step = dying_step  # type: ignore[method-assign]
    with pytest.raises(Killed):
        cut.fit()
    resumed = Trainer(validate_config(_cfg(tmp_path / "cut", dirs, background=dirs["bg"])), resume=True,
                      progress=False)
    resumed.fit()
    assert_same_run(tmp_path / "ref", tmp_path / "cut")
    assert _digests(tmp_path / "data") == before

"""The spoco task: SPOCO@p labels for training, dense labels for validation, two views that
differ only photometrically, the momentum network (updated only after optimizer steps, never
by evaluation), clustering of whole images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unetkit.config import validate_config
from unetkit.data.datasets import make_sample
from unetkit.data.sparse import objects_to_keep
from unetkit.data.synthetic import blobs
from unetkit.errors import ConfigError, InputError
from unetkit.tasks import SpocoTask, build_task
from unetkit.training import Trainer


def _samples(n: int = 3) -> list:
    out = []
    for seed in range(n):
        image, labels = blobs((64, 64), seed=seed)
        out.append(make_sample(image, labels, ndim=2))
    return out


def _cfg(tmp_path, **task: object) -> dict:  # noqa: ANN001
    return {"out": str(tmp_path / "run"), "seed": 2,
            "task": {"name": "spoco", "momentum": 0.5, **task},
            "model": {"depth": 1, "base_features": 4, "out_channels": 4},
            "data": {"patch_shape": [44, 44], "batch_size": 2},
            "training": {"iterations": 3, "val_every": 3, "checkpoint_every": 3, "device": "cpu"}}


def test_sparse_training_labels_dense_validation_labels(tmp_path) -> None:  # noqa: ANN001
    samples = _samples()
    trainer = Trainer(validate_config(_cfg(tmp_path, fraction=0.4)), train_samples=samples[:2],
                      val_samples=samples[2:], progress=False)
    for raw, prepared in zip(samples[:2], trainer.train_samples):
        n = np.unique(raw.labels[raw.labels > 0]).size
        kept = np.unique(prepared.labels[prepared.labels > 0])
        assert kept.size == objects_to_keep(n, 0.4) < n
        assert set(kept) <= set(np.unique(raw.labels))
    assert np.array_equal(trainer.val_samples[0].labels, samples[2].labels)  # dense ground truth
    assert trainer.task.criterion.options["unlabelled"] == 0 and trainer.task.criterion.options["background"] is None


def test_dense_labels_make_the_background_an_object(tmp_path) -> None:  # noqa: ANN001
    task = build_task(validate_config(_cfg(tmp_path)).task, validate_config(_cfg(tmp_path)).model)
    assert isinstance(task, SpocoTask)
    assert task.criterion.options["background"] == 0 and task.criterion.options["unlabelled"] is None
    labels = np.array([[0, 1], [2, 2]])
    assert np.array_equal(task.prepare_labels(labels), labels)


def test_views_differ_only_photometrically_and_g_moves_only_with_steps(tmp_path) -> None:  # noqa: ANN001
    samples = _samples()
    trainer = Trainer(validate_config(_cfg(tmp_path, fraction=0.4)), train_samples=samples[:2],
                      val_samples=samples[2:], progress=False)
    task = trainer.task
    batch = task.make_batch(trainer.sampler)
    assert batch["image"].shape == batch["view2"].shape and batch["target"].ndim == 3
    assert not np.array_equal(batch["image"], batch["view2"])
    # noise / blur / intensity only: the views stay strongly correlated pixel by pixel
    corr = np.corrcoef(batch["image"].ravel(), batch["view2"].ravel())[0, 1]
    assert corr > 0.8
    g_before = {k: v.clone() for k, v in task.g.state_dict().items()}
    trainer.validate()  # evaluation never touches g
    assert all(torch.equal(g_before[k], v) for k, v in task.g.state_dict().items())
    trainer.fit()
    moved = [k for k, v in task.g.state_dict().items() if v.is_floating_point() and not torch.equal(g_before[k], v)]
    assert moved  # after_step updated g
    f_w = trainer.model.state_dict()["head.weight"]
    assert not torch.equal(task.g.state_dict()["head.weight"], f_w)  # an average, not a copy
    assert all(p.grad is None for p in task.g.parameters())


@pytest.mark.parametrize("method", ["mws", "mean-shift", "hdbscan"])
def test_postprocess_separates_well_separated_embeddings(tmp_path, method: str) -> None:  # noqa: ANN001
    cfg = validate_config(_cfg(tmp_path, clustering=method, min_size=20))
    task = build_task(cfg.task, cfg.model)
    emb = torch.zeros(1, 4, 40, 40)
    emb[0, 0, 5:15, 5:15] = 6.0
    emb[0, 1, 20:35, 10:30] = 6.0
    emb[0, 2, 5:15, 25:35] = 6.0
    labels = task.postprocess(emb)[0]
    assert labels.shape == (40, 40) and int(labels.max()) == 3
    assert (labels == 0).sum() == 40 * 40 - 100 - 300 - 100  # the largest cluster is the background
    for box in ((slice(5, 15), slice(5, 15)), (slice(20, 35), slice(10, 30)), (slice(5, 15), slice(25, 35))):
        assert torch.unique(labels[box]).numel() == 1 and int(labels[box][0, 0]) > 0


def test_bad_settings_are_refused(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="task.fraction"):
        validate_config(_cfg(tmp_path, fraction=0))
    with pytest.raises(ConfigError, match="task.clustering"):
        validate_config(_cfg(tmp_path, clustering="kmeans"))
    cfg = validate_config(_cfg(tmp_path, view_augment={"flip": True}))
    with pytest.raises(InputError, match="keep location and shape"):
        build_task(cfg.task, cfg.model)

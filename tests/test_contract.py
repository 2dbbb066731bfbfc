"""One contract over every registered model and task (the timm / segmentation_models_pytorch
pattern): new models and tasks get these tests for free, from the ``examples`` of their config
schema.

Models: forward shape = ``output_shape``; tiled prediction = whole-image prediction wherever
the model claims exact tiling (``tiling_exact``), which also catches a layer whose output
depends on the tile (per-tile statistics); a model that does not claim it warns on a
multi-tile plan. Tasks: a few training steps, interrupted, resumed, bitwise equal to an
uninterrupted run (weights, optimizer, task state, log).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hooks_task import ensure_registered
from killresume import assert_same_run

from unetkit.config import validate_config
from unetkit.data.datasets import make_sample
from unetkit.data.synthetic import blobs
from unetkit.inference import predict
from unetkit.models import MODELS, build_model, list_models, validate_model_config
from unetkit.tasks import TASKS, list_tasks
from unetkit.training import Trainer

ensure_registered()  # the hooks test task is a registered task like any other

MODEL_CASES = [pytest.param(name, i, id=f"{name}-{i}") for name in list_models()
               for i in range(max(1, len(MODELS[name].config.examples)))]
TASK_CASES = [pytest.param(name, i, id=f"{name}-{i}") for name in list_tasks()
              for i in range(max(1, len(TASKS[name].config.examples)))]


def example_model(name: str, i: int) -> torch.nn.Module:
    examples = MODELS[name].config.examples
    assert examples, f"model {name!r} has no config examples for the contract test (ModelConfig.examples)"
    torch.manual_seed(i)
    model = build_model(validate_model_config({"name": name, **examples[i]})).eval()
    with torch.no_grad():  # non-trivial normalisation statistics, so eval-mode norms do something
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize(("name", "i"), MODEL_CASES)
def test_forward_shape_is_output_shape(name: str, i: int) -> None:
    model = example_model(name, i)
    shape = model.valid_input_shapes([40] * model.ndim)[0]
    x = torch.randn(2, model.in_channels, *shape)
    with torch.no_grad():
        y = model(x)
    assert tuple(y.shape) == (2, model.out_channels, *model.output_shape(shape))


@pytest.mark.parametrize(("name", "i"), MODEL_CASES)
def test_tiled_equals_whole_where_exact(name: str, i: int) -> None:
    model = example_model(name, i)
    rng = np.random.default_rng(i)
    spatial = (19, 45, 50) if model.ndim == 3 else (75, 83)
    image = rng.standard_normal((model.in_channels, *spatial)).astype(np.float32)
    whole = predict(model, image, memory_budget=None)
    small = _small_tile(model, spatial)
    if model.tiling_exact:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an exact plan warns about nothing
            tiled = predict(model, image, tile_shape=small)
        np.testing.assert_allclose(tiled, whole, atol=1e-5, rtol=0,
                                   err_msg=f"{name} claims exact tiling but tiled != whole image")
    else:
        with pytest.warns(UserWarning, match="not exact"):
            predict(model, image, tile_shape=small)


def _small_tile(model: torch.nn.Module, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """A valid tile whose output covers about half the image per axis: a multi-tile plan."""
    from unetkit.inference.tiling import plan_tiles

    for frac in (0.5, 0.3, 0.15):
        want = tuple(int(s * frac) + 2 * h + p for s, h, p in zip(spatial, model.halo, model.shift_period))
        tile = model.valid_input_shapes(want)[0]
        try:
            if plan_tiles(model, spatial, tile_shape=tile).n_tiles > 1:
                return tile
        except ValueError:  # too small for the mode
            continue
    raise AssertionError(f"no multi-tile plan for {spatial}")


@pytest.fixture(scope="module")
def samples() -> list:
    out = []
    for seed in range(3):
        image, labels = blobs((56, 56), seed=seed)
        out.append(make_sample(image, labels, ndim=2))
    return out


def _task_config(name: str, i: int, out: Path, iterations: int) -> dict:
    examples = TASKS[name].config.examples
    assert examples, f"task {name!r} has no config examples for the contract test (TaskConfig.examples)"
    section = dict(examples[i])
    override = section.pop("model", {})
    # a model section that names its model replaces the U-Net defaults; otherwise it overrides them
    model = dict(override) if "name" in override else {"depth": 1, "base_features": 4, "norm": "batch", **override}
    return {"out": str(out), "seed": 11, "task": {"name": name, **section}, "model": model,
            "data": {"patch_shape": [36, 36], "batch_size": 2},
            "training": {"iterations": iterations, "val_every": 2, "checkpoint_every": 2, "device": "cpu"}}


class Killed(BaseException):
    """Stands for SIGKILL: raised mid-step, after a checkpoint, so nothing else is saved."""


@pytest.mark.parametrize(("name", "i"), TASK_CASES)
def test_task_trains_is_interrupted_and_resumes_bitwise(name: str, i: int, samples: list, tmp_path: Path) -> None:
    data = {"train_samples": samples[:2], "val_samples": samples[2:], "progress": False}
    ref = Trainer(validate_config(_task_config(name, i, tmp_path / "ref", 6)), **data)
    ref.fit()

    first = Trainer(validate_config(_task_config(name, i, tmp_path / "cut", 6)), **data)
    real_step = first.task.training_step

    def dying_step(model, batch):  # noqa: ANN001, ANN202
        if first.step == 4:  # after the checkpoint at step 4, in the middle of step 5
            raise Killed
        return real_step(model, batch)

    first.task.training_step = dying_step  # type: ignore[method-assign]
    with pytest.raises(Killed):
        first.fit()
    resumed = Trainer(validate_config(_task_config(name, i, tmp_path / "cut", 6)), resume=True, **data)
    resumed.fit()
    assert_same_run(tmp_path / "ref", tmp_path / "cut")

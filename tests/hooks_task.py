"""A task that uses every hook of :class:`unetkit.tasks.Task` (imported by tests, and by the
subprocesses of the kill-and-resume test, which register it the same way).

Two views of each patch (the second with noise from the sampler's generator), a momentum
(EMA) copy of the model kept as task state and updated after every optimizer step, a
consistency loss against the EMA copy, the head's bias kept out of the optimizer, and the EMA
model as the inference predictor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from unetkit.tasks import TASKS, SemanticTask, TaskConfig, register_task
from unetkit.tasks.momentum import MomentumNetwork


class HooksTaskConfig(TaskConfig):
    name: Literal["test-hooks"] = "test-hooks"
    decay: float = 0.9
    noise: float = 0.1

    examples: ClassVar[tuple[dict[str, Any], ...]] = ({"decay": 0.5},)


class HooksTask(SemanticTask):
    name = "test-hooks"
    config = HooksTaskConfig

    def __init__(self, num_classes: int, decay: float, noise: float) -> None:
        super().__init__(num_classes, labels="foreground")
        self.decay, self.noise = decay, noise
        self.ema: MomentumNetwork | None = None
        self.updates = 0
        self.calls = {"setup": 0, "make_batch": 0, "training_step": 0, "after_step": 0, "predictor": 0}

    @classmethod
    def from_config(cls, cfg: Any, model_cfg: Any) -> HooksTask:
        return cls(model_cfg.out_channels, cfg.decay, cfg.noise)

    def setup(self, model: nn.Module) -> None:
        self.calls["setup"] += 1
        self.ema = MomentumNetwork(model, momentum=self.decay)

    def trainable_parameters(self, model: nn.Module) -> Iterable[nn.Parameter]:
        return (p for n, p in model.named_parameters() if n != "head.bias")

    def make_batch(self, sampler: Any) -> dict[str, Any]:
        self.calls["make_batch"] += 1
        image, target = sampler.sample()
        noisy = image + self.noise * sampler.rng.standard_normal(image.shape).astype(image.dtype)
        return {"image": image, "view2": noisy, "target": target}

    def training_step(self, model: nn.Module, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        self.calls["training_step"] += 1
        assert self.ema is not None
        loss, parts = self.loss(model(batch["image"]), batch["target"])
        with torch.no_grad():
            teacher = self.ema(batch["view2"])
        consistency = torch.mean((model(batch["view2"]) - teacher) ** 2)
        return loss + consistency, {**parts, "consistency": float(consistency.detach())}

    @torch.no_grad()
    def after_step(self, model: nn.Module, step: int) -> None:
        self.calls["after_step"] += 1
        assert self.ema is not None
        self.ema.update(model)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        assert self.ema is not None
        return {"ema": self.ema.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        assert self.ema is not None
        self.ema.load_state_dict(state["ema"])
        self.updates = int(state["updates"])

    def predictor(self, model: nn.Module) -> Callable[[Tensor], Tensor]:
        self.calls["predictor"] += 1
        assert self.ema is not None
        return self.ema


def ensure_registered() -> type[HooksTask]:
    if TASKS.get(HooksTask.name) is not HooksTask:
        TASKS.pop(HooksTask.name, None)
        register_task(HooksTask)
    return HooksTask


ensure_registered()

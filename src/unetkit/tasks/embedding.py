"""Instance segmentation by metric learning: discriminative loss, mean-shift clustering."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field
from torch import Tensor

from unetkit.errors import ConfigError, InputError
from unetkit.losses import DiscriminativeLoss
from unetkit.tasks.base import IGNORE, Task, TaskConfig
from unetkit.tasks.instances import InstanceAccumulator, cluster_each, instance_labels
from unetkit.tasks.registry import register_task

if TYPE_CHECKING:  # pragma: no cover
    from unetkit.models.registry import ModelConfig


class EmbeddingTaskConfig(TaskConfig):
    """``task.name: embedding`` (:class:`EmbeddingTask`).

    The embedding dimension is ``model.out_channels``. Loss: discriminative loss
    (:func:`unetkit.losses.discriminative_loss`, push margin ``2 * delta_d``); clustering:
    :func:`unetkit.clustering.mean_shift` with ``bandwidth`` (default ``delta_v`` if it is
    > 0, else ``delta_d``) and ``kernel``.
    """

    name: Literal["embedding"] = "embedding"
    delta_v: float = Field(0.5, ge=0)
    delta_d: float = Field(1.5, gt=0)
    alpha: float = Field(1.0, ge=0)
    beta: float = Field(1.0, ge=0)
    gamma: float = Field(0.001, ge=0)
    background: Literal["instance", "ignore"] = "instance"
    bandwidth: float | None = Field(None, gt=0)
    kernel: Literal["gaussian", "flat"] = "gaussian"

    examples: ClassVar[tuple[dict[str, Any], ...]] = ({"delta_v": 0.5, "delta_d": 1.5, "model": {"out_channels": 3}},)


@register_task
class EmbeddingTask(Task):
    """Instance segmentation by metric learning: discriminative loss, mean-shift clustering.

    The network predicts an ``embedding_dim``-dimensional embedding per pixel (its output
    channels). Training targets are instance ids (0 = background, any non-negative ids, not
    necessarily consecutive). Post-processing clusters each image's embeddings with
    :func:`unetkit.clustering.mean_shift`. With ``background="instance"`` the background is
    one more cluster and the *largest* cluster of each image is taken as the background
    (label 0); with ``background="ignore"`` the background is not learnt and every cluster is
    an instance.

    Args:
        embedding_dim: E = the model's output channels.
        delta_v, delta_d, alpha, beta, gamma, background: of
            :func:`unetkit.losses.discriminative_loss` (push margin ``2 * delta_d``).
        bandwidth: mean-shift bandwidth; default ``delta_v`` if ``delta_v > 0`` else ``delta_d``.
            Gaussian kernel: ``exp(-d^2 / bandwidth)``; flat kernel: radius.
        kernel: ``"gaussian"`` (the shift-equivariance paper's convention) or ``"flat"``.

    Metrics: ``arand`` (adapted Rand error, main metric, lower is better) and ``dic``
    (mean ``|#pred - #gt|``).
    """

    name = "embedding"
    config = EmbeddingTaskConfig
    main_metric = "arand"
    main_mode = "min"
    pointwise = False  # clustering needs the whole stitched image

    @classmethod
    def from_config(cls, cfg: TaskConfig, model_cfg: ModelConfig) -> EmbeddingTask:
        assert isinstance(cfg, EmbeddingTaskConfig)
        # model.out_channels is the embedding dimension
        return cls(model_cfg.out_channels, delta_v=cfg.delta_v, delta_d=cfg.delta_d, alpha=cfg.alpha, beta=cfg.beta,
                   gamma=cfg.gamma, background=cfg.background, bandwidth=cfg.bandwidth, kernel=cfg.kernel)

    def __init__(self, embedding_dim: int, *, delta_v: float = 0.5, delta_d: float = 1.5, alpha: float = 1.0,
                 beta: float = 1.0, gamma: float = 0.001, background: Literal["instance", "ignore"] = "instance",
                 bandwidth: float | None = None, kernel: Literal["gaussian", "flat"] = "gaussian") -> None:
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, (int, np.integer)) or embedding_dim < 1:
            raise ConfigError(f"embedding_dim={embedding_dim!r} must be an integer >= 1 (model.out_channels)")
        if bandwidth is None:
            bandwidth = delta_v if delta_v > 0 else delta_d
        if not bandwidth > 0:
            raise ConfigError(f"bandwidth={bandwidth!r} must be > 0 (delta_v and delta_d are both 0?)")
        if kernel not in ("gaussian", "flat"):
            raise ConfigError(f"kernel={kernel!r} must be 'gaussian' or 'flat'")
        self.embedding_dim = int(embedding_dim)
        self.background = background
        self.bandwidth = float(bandwidth)
        self.kernel = kernel
        self.criterion = DiscriminativeLoss(delta_v=delta_v, delta_d=delta_d, alpha=alpha, beta=beta, gamma=gamma,
                                            background=background, ignore_index=IGNORE)

    def prepare_labels(self, labels: np.ndarray) -> np.ndarray:
        return instance_labels(labels)

    def loss(self, output: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        if output.shape[1] != self.embedding_dim:
            raise InputError(f"output has {output.shape[1]} channels, the task expects {self.embedding_dim}")
        total, parts = self.criterion.components(output, target)
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def postprocess(self, output: Tensor) -> Tensor:
        from unetkit.clustering import mean_shift

        return cluster_each(output, lambda emb: mean_shift(emb, bandwidth=self.bandwidth, kernel=self.kernel,
                                                           largest_is_background=self.background == "instance"))

    def new_metrics(self) -> InstanceAccumulator:
        return InstanceAccumulator()

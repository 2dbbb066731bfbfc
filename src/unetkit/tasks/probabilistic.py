"""Probabilistic segmentation: HPU-Net / ProbU-Net training with GECO or the ELBO.

One task serves every model that implements
:class:`~unetkit.models.probabilistic.ProbabilisticSegmenter` (``hpunet``, ``probunet``); the
objective follows the method notes, section 4:

* ``prepare_labels``, ``postprocess`` (argmax), metrics (IoU, Dice; main metric ``iou``):
  those of the semantic task (:class:`~unetkit.tasks.SemanticTask`, which this task extends).
* ``setup``: refuses a model that is not probabilistic; creates the GECO state.
* ``training_step``: ``out = model.elbo_forward(image, target)`` (logits decoded from posterior
  latents, KL per image and scale); ``rec`` = softmax CE over the stochastic top-k pixels,
  summed over the image, batch mean (:func:`~unetkit.losses.topk_cross_entropy`);
  ``kl = sum over scales of the batch-mean KL``;
  ``objective: geco`` -> ``lambda * C + kl`` (:class:`~unetkit.losses.GECO`),
  ``objective: elbo`` -> ``rec + beta * kl``.
  Logged parts: ``rec``, ``kl``, ``kl_0``..``kl_{L-1}`` (batch means; 0 = most global scale),
  and with GECO ``lambda`` and ``rec_ma``.
* ``trainable_parameters``: the model's parameters and, under the ascent rule, GECO's ``w``
  (the same optimizer ascends lambda); ``after_step``: the multiplicative lambda update.
* ``state_dict``: the GECO state (lambda or ``w``, the moving average), restored bitwise.
* ``predictor``: ``model`` itself, i.e. ``model.forward``: every latent at its prior mean, a
  deterministic point prediction (tileable like any model), used by validation and
  ``unetkit predict``. Sampling (``samples`` per image, the default of ``unetkit sample -n``) is
  :mod:`unetkit.inference.sampling`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field
from torch import Tensor, nn

from unetkit.errors import ConfigError, InputError
from unetkit.losses.geco import GECO
from unetkit.losses.probabilistic import topk_cross_entropy
from unetkit.models.probabilistic import ProbabilisticSegmenter
from unetkit.tasks.base import TaskConfig
from unetkit.tasks.registry import register_task
from unetkit.tasks.semantic import SemanticTask

if TYPE_CHECKING:  # pragma: no cover
    from unetkit.models.registry import ModelConfig

PROBABILISTIC_MODELS = ("hpunet", "probunet")
"""Registered models that implement :class:`ProbabilisticSegmenter` (named in errors)."""


class ProbabilisticTaskConfig(TaskConfig):
    """``task.name: probabilistic`` (:class:`ProbabilisticTask`); defaults of the method notes, section 4."""

    name: Literal["probabilistic"] = "probabilistic"
    labels: Literal["semantic", "foreground"] = "semantic"
    objective: Literal["geco", "elbo"] = "geco"
    beta: float = Field(1.0, ge=0)
    kappa: float = Field(0.05, gt=0)
    geco_update: Literal["ascent", "multiplicative"] = "ascent"
    geco_decay: float = Field(0.99, ge=0, lt=1)
    geco_rate: float = Field(0.01, gt=0)
    lambda_init: float = Field(1.0, gt=0)
    topk: float | None = Field(0.02, gt=0, le=1)
    samples: int = Field(16, ge=1)

    examples: ClassVar[tuple[dict[str, Any], ...]] = (
        {"labels": "foreground",
         "model": {"name": "hpunet", "levels": 3, "base_channels": 4, "max_channels": 8, "blocks_per_level": 1,
                   "latent_scales": 2, "latent_channels": 1}},
        {"labels": "foreground", "objective": "elbo", "topk": None,
         "model": {"name": "probunet", "depth": 2, "base_features": 4, "latent_dim": 2}},
    )


@register_task
class ProbabilisticTask(SemanticTask):
    """HPU-Net / ProbU-Net objective (module docstring); labels, argmax and metrics as the semantic task.

    Args:
        num_classes: C = the model's output channels (>= 2: softmax cross-entropy).
        labels: ``"semantic"`` or ``"foreground"`` (as the semantic task).
        objective: ``"geco"`` or ``"elbo"``.
        beta: KL weight of the ELBO.
        kappa, geco_update, geco_decay, geco_rate, lambda_init: GECO (:class:`~unetkit.losses.GECO`).
        topk: fraction of labelled pixels in the reconstruction loss, or None for all.
        samples: samples per image drawn by ``unetkit sample`` when ``-n`` is not given.
    """

    name = "probabilistic"
    config = ProbabilisticTaskConfig
    main_metric = "iou"
    main_mode = "max"
    pointwise = True

    def __init__(self, num_classes: int, *, labels: Literal["semantic", "foreground"] = "semantic",
                 objective: Literal["geco", "elbo"] = "geco", beta: float = 1.0, kappa: float = 0.05,
                 geco_update: Literal["ascent", "multiplicative"] = "ascent", geco_decay: float = 0.99,
                 geco_rate: float = 0.01, lambda_init: float = 1.0, topk: float | None = 0.02,
                 samples: int = 16) -> None:
        super().__init__(num_classes, labels=labels)
        if num_classes < 2:
            raise ConfigError(f"task probabilistic needs model.out_channels >= 2 (softmax classes), got {num_classes}")
        if objective not in ("geco", "elbo"):
            raise ConfigError(f"task.objective must be 'geco' or 'elbo', got {objective!r}")
        if topk is not None and not 0 < topk <= 1:
            raise ConfigError(f"task.topk must be in (0, 1] or null, got {topk!r}")
        if not kappa > 0:
            raise ConfigError(f"task.kappa must be > 0, got {kappa!r}")
        self.objective, self.beta, self.topk, self.samples = objective, float(beta), topk, int(samples)
        self.geco_options: dict[str, Any] = {"kappa": kappa, "update": geco_update, "decay": geco_decay,
                                             "rate": geco_rate, "lambda_init": lambda_init}
        self.geco: GECO | None = None

    @classmethod
    def from_config(cls, cfg: TaskConfig, model_cfg: ModelConfig) -> ProbabilisticTask:
        assert isinstance(cfg, ProbabilisticTaskConfig)
        return cls(model_cfg.out_channels, labels=cfg.labels, objective=cfg.objective, beta=cfg.beta,
                   kappa=cfg.kappa, geco_update=cfg.geco_update, geco_decay=cfg.geco_decay, geco_rate=cfg.geco_rate,
                   lambda_init=cfg.lambda_init, topk=cfg.topk, samples=cfg.samples)

    # ------------------------------------------------------------------ training
    def setup(self, model: nn.Module) -> None:
        """Check that ``model`` is probabilistic; create the GECO state on the model's device."""
        if not isinstance(model, ProbabilisticSegmenter):
            from unetkit.models.registry import registered_name

            label = registered_name(model) or type(model).__name__
            raise ConfigError(
                f"task probabilistic needs a probabilistic model ({', '.join(PROBABILISTIC_MODELS)}); model "
                f"{label!r} does not implement ProbabilisticSegmenter (latent_scales, sample, reconstruct, "
                "elbo_forward); set model.name to one of those"
            )
        if self.objective == "geco":
            device = next(iter(model.parameters())).device
            self.geco = GECO(**self.geco_options).to(device)

    def trainable_parameters(self, model: nn.Module) -> Iterable[nn.Parameter | dict[str, Any]]:
        """The model's parameters, then GECO's ``w`` (ascent rule only) in a group of its own
        without weight decay (``optimizer.weight_decay`` is for the network's weights)."""
        yield from model.parameters()
        if self.geco is not None and self.geco.w is not None:
            yield {"params": [self.geco.w], "weight_decay": 0.0}

    def loss(self, output: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        raise NotImplementedError("task probabilistic trains through training_step (elbo_forward), not loss()")

    def training_step(self, model: nn.Module, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """``(loss, parts)`` for a batch ``image (N, C_in, *I)``, ``target (N, *S)`` (module docstring)."""
        target = batch["target"]
        out = model.elbo_forward(batch["image"], target)  # type: ignore[operator]
        if out.logits.shape[1] != self.num_classes:
            raise InputError(f"the model gives {out.logits.shape[1]} channels, the task expects {self.num_classes}")
        rec, n_selected = topk_cross_entropy(out.logits, target, self.topk)
        kl_scales = out.kl.mean(dim=0)  # (L,): batch mean per scale
        kl = kl_scales.sum()
        parts: dict[str, float] = {"rec": float(rec.detach()), "kl": float(kl.detach())}
        parts.update({f"kl_{i}": float(v) for i, v in enumerate(kl_scales.detach().tolist())})
        if self.geco is None:
            return rec + self.beta * kl, parts
        loss, geco_parts = self.geco(rec, kl, n_selected.float().mean())
        parts.update(geco_parts)
        return loss, parts

    def after_step(self, model: nn.Module, step: int) -> None:
        """The multiplicative lambda update (nothing for the ascent rule or the ELBO)."""
        if self.geco is not None:
            self.geco.update()

    def state_dict(self) -> dict[str, Any]:
        return {"geco": self.geco.state_dict()} if self.geco is not None else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.geco is None:
            super().load_state_dict(state)  # refuses foreign state
            return
        if "geco" not in state:
            raise InputError("the checkpoint holds no GECO state (task state 'geco') for the probabilistic task")
        self.geco.load_state_dict(state["geco"])

    # ------------------------------------------------------------------ inference
    def predictor(self, model: nn.Module) -> Callable[[Tensor], Tensor]:
        """``model`` (its ``forward``): logits ``(N, C, *S)`` with every latent at its prior mean."""
        return model


__all__ = ["PROBABILISTIC_MODELS", "ProbabilisticTask", "ProbabilisticTaskConfig"]

"""SPOCO: instance segmentation from sparse object labels (Wolny et al., CVPR 2022).

The task trains pixel embeddings with L_SSO (:func:`unetkit.losses.spoco_loss`; method notes
section 3) through the one trainer's hooks:

* ``prepare_labels``: dense labels (``fraction: 1``) keep the background as a labelled object
  (``background=0, unlabelled=None`` in the loss). With ``fraction: p < 1`` (SPOCO@p) each
  image keeps ``round(p * n)`` of its ``n`` objects (at least one), chosen by ``label_seed`` and
  the image's content (:mod:`unetkit.data.sparse`); everything else, background included, is
  unlabelled (0; ``background=None, unlabelled=0``). ``labels: sparse`` takes labels that are
  already sparse on disk (0 = unlabelled, ids > 0 objects, which must stay below
  :data:`~unetkit.data.sparse.BACKGROUND_ID`); the loss is ``background=BACKGROUND_ID,
  unlabelled=0`` for the whole run.
* ``prepare_background`` (``labels: sparse`` only): an image's annotated background mask
  (``data.train.background``) gets the reserved id :data:`~unetkit.data.sparse.BACKGROUND_ID`
  in its training target, so the annotated background is one more labelled cluster (pull,
  push, regulariser, a labelled mean in L_U-push) but not an object of L_obj, in every patch
  and batch alike; objects keep their ids. Images without a mask have no labelled background.
  Validation always scores against the labels as read (dense ground truth; no mask, so an
  annotated background that is 0 on disk stays background there).
* ``make_batch``: each patch gives two views that keep location and shape: the sampler's patch
  (with the run's augmentations) for f, and the same patch with independent photometric
  augmentations (``view_augment``: noise, blur, intensity) for the momentum network g.
* ``training_step``: ``L_SSO(f(view1), labels, g(view2))``; g gets no gradients.
* ``after_step``: ``theta_g <- m theta_g + (1 - m) theta_f`` (:class:`MomentumNetwork`, m = 0.999);
  g is task state, saved in every checkpoint and restored bitwise on resume, and never changes
  during evaluation.
* ``postprocess``: the whole image's embeddings (never per tile) are clustered (``clustering``):
  the mutex watershed on embedding affinities with long-range offsets 3, 9, 27 (default,
  margin ``delta_d``), mean shift with a flat kernel of radius ``delta_v``, or HDBSCAN; the
  largest cluster is the background (mutex watershed: with every segment whose mean embedding
  is within ``delta_v`` of its mean) and segments of fewer than ``min_size`` pixels (default
  50) become background too (HDBSCAN: its smallest cluster size).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field
from torch import Tensor, nn

from unetkit.data.sparse import (
    BACKGROUND_ID,
    keep_fraction_of_objects,
    object_rng,
    with_background,
)
from unetkit.data.transforms import build_augmentation
from unetkit.errors import InputError
from unetkit.losses.spoco import SPOCOLoss
from unetkit.tasks.base import Batch, Task, TaskConfig
from unetkit.tasks.instances import InstanceAccumulator, cluster_each, instance_labels
from unetkit.tasks.momentum import MomentumNetwork
from unetkit.tasks.registry import register_task

if TYPE_CHECKING:  # pragma: no cover
    from unetkit.data.datasets import PatchSampler
    from unetkit.models.registry import ModelConfig

DEFAULT_VIEW_AUGMENT: dict[str, Any] = {"noise": {"sigma": [0.0, 0.1]}, "blur": {"sigma": [0.0, 1.0]},
                                        "intensity": True}


class SpocoTaskConfig(TaskConfig):
    """``task.name: spoco`` (:class:`SpocoTask`); defaults of the method notes, section 3."""

    name: Literal["spoco"] = "spoco"
    labels: Literal["dense", "sparse"] = "dense"
    fraction: float = Field(1.0, gt=0, le=1)
    label_seed: int = 0
    delta_v: float = Field(0.5, gt=0)
    delta_d: float = Field(2.0, gt=0)
    t: float = Field(0.9, gt=0, lt=1)
    alpha: float = Field(1.0, ge=0)
    beta: float = Field(1.0, ge=0)
    reg_weight: float = Field(0.001, ge=0)
    obj_weight: float = Field(1.0, ge=0)
    u_push_weight: float = Field(1.0, ge=0)
    u_con_weight: float = Field(1.0, ge=0)
    anchor: Literal["random", "near_mean", "mean"] = "random"
    obj_loss: Literal["dice", "bce"] = "dice"
    momentum: float = Field(0.999, ge=0, lt=1)
    clustering: Literal["mws", "mean-shift", "hdbscan"] = "mws"
    min_size: int = Field(50, ge=2)
    view_augment: dict[str, Any] | None = Field(default_factory=lambda: dict(DEFAULT_VIEW_AUGMENT))

    examples: ClassVar[tuple[dict[str, Any], ...]] = (
        {"fraction": 0.4, "momentum": 0.9, "model": {"out_channels": 4}},
        {"fraction": 1.0, "model": {"out_channels": 4}},
    )

    def background_mask_problem(self) -> str | None:
        if self.labels == "sparse":
            return None
        return ("a background mask needs task.labels: sparse (labels sparse on disk, 0 = unlabelled); "
                "with labels: dense the background is 0 in the label images")


@register_task
class SpocoTask(Task):
    """SPOCO / SPOCO@p: L_SSO with a momentum network, mean-shift clustering of whole images.

    Args:
        embedding_dim: E = the model's output channels.
        labels, fraction, label_seed, momentum, view_augment: see :class:`SpocoTaskConfig`.
        ndim: spatial axes of the data (for the view augmentations).
        **loss: keyword arguments of :class:`unetkit.losses.SPOCOLoss` (delta_v, delta_d, t,
            weights, anchor, obj_loss).
    """

    name = "spoco"
    config = SpocoTaskConfig
    main_metric = "sbd"
    main_mode = "max"
    pointwise = False

    def __init__(self, embedding_dim: int, *, labels: Literal["dense", "sparse"] = "dense", fraction: float = 1.0,
                 label_seed: int = 0, momentum: float = 0.999, view_augment: Mapping[str, Any] | None = None,
                 clustering: Literal["mws", "mean-shift", "hdbscan"] = "mws", min_size: int = 50,
                 ndim: int = 2, **loss: Any) -> None:
        self.embedding_dim = int(embedding_dim)
        self.sparse = labels == "sparse" or fraction < 1
        self.label_mode, self.fraction, self.label_seed, self.momentum = labels, float(fraction), int(label_seed), momentum
        self.views = build_augmentation(DEFAULT_VIEW_AUGMENT if view_augment is None else view_augment, ndim)
        for t in self.views.transforms:
            if type(t).__name__ not in ("GaussianNoise", "GaussianBlur", "IntensityJitter"):
                raise InputError(f"view_augment must keep location and shape (noise, blur, intensity); "
                                 f"got {type(t).__name__}")
        # one background id for the whole run: 0 for dense labels, the reserved id for labels
        # sparse on disk (annotated background masks), none (unlabelled) for SPOCO@p
        background = 0 if not self.sparse else BACKGROUND_ID if labels == "sparse" else None
        unlabelled = 0 if self.sparse else None
        self.criterion = SPOCOLoss(background=background, unlabelled=unlabelled, **loss)
        self.delta_v = float(self.criterion.options["delta_v"])
        self.delta_d = float(self.criterion.options["delta_d"])
        if clustering not in ("mws", "mean-shift", "hdbscan"):
            raise InputError(f"clustering={clustering!r} must be one of mws, mean-shift, hdbscan")
        self.clustering, self.min_size = clustering, int(min_size)
        self.g: MomentumNetwork | None = None

    @classmethod
    def from_config(cls, cfg: TaskConfig, model_cfg: ModelConfig) -> SpocoTask:
        assert isinstance(cfg, SpocoTaskConfig)
        loss = cfg.model_dump(include={"delta_v", "delta_d", "t", "alpha", "beta", "reg_weight", "obj_weight",
                                       "u_push_weight", "u_con_weight", "anchor", "obj_loss"})
        return cls(model_cfg.out_channels, labels=cfg.labels, fraction=cfg.fraction, label_seed=cfg.label_seed,
                   momentum=cfg.momentum, view_augment=cfg.view_augment, clustering=cfg.clustering,
                   min_size=cfg.min_size, ndim=model_cfg.ndim, **loss)

    # ------------------------------------------------------------------ labels
    def prepare_labels(self, labels: np.ndarray) -> np.ndarray:
        """Label image ``(*S)`` as read -> training target ``(*S)`` int64 (see the module docstring)."""
        lab = self.prepare_validation_labels(labels)
        if self.label_mode == "dense" and self.fraction < 1:
            lab = keep_fraction_of_objects(lab, self.fraction, object_rng(lab, self.label_seed))
        if self.label_mode == "sparse" and lab.size and int(lab.max()) >= BACKGROUND_ID:
            raise InputError(f"sparse labels hold object id {int(lab.max())}; ids must be below {BACKGROUND_ID} "
                             "(reserved for the annotated background); relabel the objects with smaller ids")
        return lab

    def prepare_background(self, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Training target ``(*S)`` and annotated background mask ``(*S)`` bool -> the target with
        the mask's pixels set to :data:`~unetkit.data.sparse.BACKGROUND_ID` (a new array)."""
        if self.label_mode != "sparse":
            raise InputError(f"a background mask needs labels='sparse' (the task has labels={self.label_mode!r})")
        return with_background(target, mask, background_id=BACKGROUND_ID)[0]

    def prepare_validation_labels(self, labels: np.ndarray) -> np.ndarray:
        return instance_labels(labels)

    # ------------------------------------------------------------------ training
    def setup(self, model: nn.Module) -> None:
        self.g = MomentumNetwork(model, momentum=self.momentum)

    def make_batch(self, sampler: PatchSampler) -> Batch:
        image, target = sampler.sample()
        second = np.stack([self.views(view, None, sampler.rng)[0] for view in image]).astype(np.float32, copy=False)
        return {"image": image, "view2": second, "target": target}

    def training_step(self, model: nn.Module, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        assert self.g is not None, "setup() was not called"
        f_out = model(batch["image"])
        if f_out.shape[1] != self.embedding_dim:
            raise InputError(f"output has {f_out.shape[1]} channels, the task expects {self.embedding_dim}")
        g_out = self.g(batch["view2"])
        loss, parts = self.criterion.components(f_out, batch["target"], g_out)
        return loss, {k: float(v.detach()) for k, v in parts.items()}

    def after_step(self, model: nn.Module, step: int) -> None:
        assert self.g is not None
        self.g.update(model)

    def state_dict(self) -> dict[str, Any]:
        assert self.g is not None
        return {"g": self.g.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        assert self.g is not None
        if "g" not in state:
            raise InputError("the checkpoint holds no momentum network (task state 'g') for the spoco task")
        self.g.load_state_dict(state["g"])

    # ------------------------------------------------------------------ outputs
    def cluster(self, embeddings: Tensor) -> Tensor:
        """One image's embeddings ``(E, *S)`` -> instance labels ``(*S)`` (0 = background)."""
        from unetkit.clustering import hdbscan, mean_shift, mutex_watershed

        if self.clustering == "mws":
            return mutex_watershed(embeddings, delta_d=self.delta_d, largest_is_background=True,
                                   min_size=self.min_size, background_radius=self.delta_v)
        if self.clustering == "hdbscan":
            return hdbscan(embeddings, min_size=self.min_size, largest_is_background=True)
        return mean_shift(embeddings, bandwidth=self.delta_v, kernel="flat", largest_is_background=True,
                          min_size=self.min_size)

    def postprocess(self, output: Tensor) -> Tensor:
        return cluster_each(output, self.cluster)

    def new_metrics(self) -> InstanceAccumulator:
        return InstanceAccumulator()


__all__ = ["SpocoTask", "SpocoTaskConfig"]

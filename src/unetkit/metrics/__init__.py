"""Metrics: functional forms on NumPy arrays plus accumulating classes.

Semantic: :func:`iou` (Jaccard), :func:`dice` (F1), :class:`ConfusionMatrix`.
Instance (label images, 0 = background): :func:`adapted_rand_error`, :func:`dic` (difference
in object count), :func:`matching`, :func:`segmentation_accuracy`,
:func:`mean_segmentation_accuracy`, :func:`symmetric_best_dice`, :func:`variation_of_information`.
Distributions of segmentations (model samples against several graders, HPU-Net appendix B):
:func:`ged` (GED^2 with d = 1 - IoU), :func:`hungarian_matched_iou`, :func:`iou_rec`,
:func:`iou_matrix`.
Unseen scales: :mod:`unetkit.metrics.scales` (``evaluate_scales``, ``scale_consistency``,
``plot_scale_curves``), imported on its own since it runs models through tasks and inference.
"""

from unetkit.metrics.distribution import ged, hungarian_matched_iou, iou_matrix, iou_rec
from unetkit.metrics.instance import (
    Matching,
    adapted_rand_error,
    count_objects,
    dic,
    matching,
    mean_segmentation_accuracy,
    segmentation_accuracy,
    symmetric_best_dice,
    variation_of_information,
)
from unetkit.metrics.semantic import ConfusionMatrix, confusion_matrix, dice, iou

__all__ = ["ConfusionMatrix", "Matching", "adapted_rand_error", "confusion_matrix", "count_objects", "dic", "dice",
           "ged", "hungarian_matched_iou", "iou", "iou_matrix", "iou_rec", "matching", "mean_segmentation_accuracy",
           "segmentation_accuracy", "symmetric_best_dice", "variation_of_information"]

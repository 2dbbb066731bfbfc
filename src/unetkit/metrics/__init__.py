"""Metrics: functional forms on NumPy arrays plus accumulating classes.

Semantic: :func:`iou` (Jaccard), :func:`dice` (F1), :class:`ConfusionMatrix`.
"""

from unetkit.metrics.semantic import ConfusionMatrix, confusion_matrix, dice, iou

__all__ = ["ConfusionMatrix", "confusion_matrix", "dice", "iou"]

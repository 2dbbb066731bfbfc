"""Metrics: functional forms on NumPy arrays plus accumulating classes.

Semantic: :func:`iou` (Jaccard), :func:`dice` (F1), :class:`ConfusionMatrix`.
Instance: :func:`adapted_rand_error`, :func:`dic` (difference in object count).
"""

from unetkit.metrics.instance import adapted_rand_error, count_objects, dic
from unetkit.metrics.semantic import ConfusionMatrix, confusion_matrix, dice, iou

__all__ = ["ConfusionMatrix", "adapted_rand_error", "confusion_matrix", "count_objects", "dic", "dice", "iou"]

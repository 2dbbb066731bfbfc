"""Inference: whole-image prediction of arrays of any size."""

from unetkit.inference.predict import pad_for_model, predict

__all__ = ["pad_for_model", "predict"]

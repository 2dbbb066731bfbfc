"""Inference: whole-image prediction of arrays of any size."""

from unetkit.inference.predict import PaddingPlan, pad_for_model, predict

__all__ = ["PaddingPlan", "pad_for_model", "predict"]

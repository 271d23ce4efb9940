"""Held-out evaluation shared by ``confirm`` and ``doctor``: which eval images (:class:`EvalSource`), loading them
through the tensor cache and the float model (:func:`load_eval`), which task scores the outputs (:mod:`.infer`,
from each task's ``eval_layouts``) and the scores (:class:`EvalData`).

Modules: ``source`` (the eval options), ``records`` (eval records and their labels), ``frames`` (where the
preprocessing puts an image), ``class_names`` (a detector's class names against the data's), ``infer`` (the
task), ``data`` (tensors, references, float outputs, scoring), ``load`` (the steps in order)."""
from __future__ import annotations

from repcurate.evaluate.data import EvalData, model_outputs
from repcurate.evaluate.load import load_eval
from repcurate.evaluate.source import DEFAULT_MAX_EVAL, EvalSource

__all__ = ["DEFAULT_MAX_EVAL", "EvalData", "EvalSource", "load_eval", "model_outputs"]

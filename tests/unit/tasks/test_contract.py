"""Contract of every registered task (sklearn's estimator_checks, for tasks), on real model outputs: seeded
PyTorch CNNs (a classifier, a two-head box + class model, a detector that decodes its own boxes, a segmenter) on
scikit-learn's digits, against the same models with their weights rounded to 8 and to 2 bits."""
from __future__ import annotations

import copy
import json
import math
import re
from functools import lru_cache
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

from repcurate import tasks
from repcurate.data.layouts import ANNOTATED_LAYOUTS, KNOWN_LAYOUTS
from repcurate.tasks.base import Task

MEMBERS = list(tasks.REGISTRY)


class TwoHeads(nn.Module):
    def __init__(self, heads: int) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.classes = nn.Linear(64, 10)
        self.boxes = nn.Linear(64, 4) if heads == 2 else None

    def forward(self, x):
        f = self.features(x)
        return self.classes(f) if self.boxes is None else (self.boxes(f), self.classes(f))


class DecodingDetector(nn.Module):
    """Anchor-free per-cell detector on 8×8 digits that decodes itself: boxes (n, 16, 4), scores, classes (n, 16)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.SiLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                                      nn.SiLU())
        self.box = nn.Conv2d(16, 4, 1)
        self.cls = nn.Conv2d(16, 10, 1)

    def forward(self, x):
        f = self.backbone(x)
        d, logits = self.box(f), self.cls(f)
        gy, gx = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
        cx, cy = (gx + 0.5 + torch.tanh(d[:, 0])) * 2, (gy + 0.5 + torch.tanh(d[:, 1])) * 2
        w, h = torch.exp(d[:, 2].clamp(-2, 2)) * 2, torch.exp(d[:, 3].clamp(-2, 2)) * 2
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1).flatten(1, 2)
        scores, classes = torch.sigmoid(logits).flatten(2).max(1)
        return boxes, scores, classes.float()


class Segmenter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 3, 1))

    def forward(self, x):
        return self.body(x)


MODELS = {"classifier": lambda: TwoHeads(1), "two_heads": lambda: TwoHeads(2), "detector": DecodingDetector,
          "segmenter": Segmenter}


def _round_weights(model: nn.Module, bits: int) -> nn.Module:
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for p in rounded.parameters():
            step = p.abs().max() / (2 ** (bits - 1) - 1)
            p.copy_(torch.round(p / step) * step)
    return rounded


def _run(model: nn.Module, x: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(x)
    return [t.numpy().astype(np.float64) for t in ((out,) if isinstance(out, torch.Tensor) else out)]


@lru_cache(maxsize=4)
def outputs(kind: str) -> SimpleNamespace:
    """float / 8-bit / 2-bit outputs of a seeded model of ``kind`` (:data:`MODELS`) on 400 digits, and their labels."""
    digits = load_digits()
    x = torch.tensor(((digits.images[:400] / 16.0 - 0.3) / 0.4)[:, None], dtype=torch.float32)
    torch.manual_seed(0)
    model = MODELS[kind]().eval()
    labels = [str(d) for d in digits.target[:400]]
    return SimpleNamespace(float=_run(model, x), q8=_run(_round_weights(model, 8), x), q2=_run(_round_weights(model, 2), x),
                           labels=labels, records=[SimpleNamespace(label=lab) for lab in labels])


def _model_outputs_for(task: Task) -> SimpleNamespace:
    """The real outputs of the first model of :data:`MODELS` (two-head model first) this task accepts."""
    for kind in ("two_heads", "classifier", "detector", "segmenter"):
        data = outputs(kind)
        if task.accepts(data.float):
            return data
    pytest.fail(f"task {task.name} accepts the outputs of none of the models {sorted(MODELS)}")


@pytest.mark.parametrize("name", MEMBERS)
def test_every_task_is_registered_under_its_snake_case_name_and_describes_its_metrics(name: str) -> None:
    task = tasks.get(name)
    assert isinstance(task, Task) and task.name == name and re.fullmatch(r"[a-z][a-z0-9_]*", name)
    assert task.metrics and all(key == m.name for key, m in task.metrics.items())
    for m in task.metrics.values():
        assert m.scale > 0 and isinstance(m.unit, str) and m.description
        assert tasks.metric(m.name) is m
    assert isinstance(task.feature_layer, str) and task.feature_layer
    assert isinstance(task.higher_is_better, bool)


@pytest.mark.parametrize("name", MEMBERS)
def test_every_task_declares_known_eval_layouts(name: str) -> None:
    layouts = tasks.get(name).eval_layouts
    assert isinstance(layouts, tuple) and set(layouts) <= set(KNOWN_LAYOUTS), layouts
    others = {layout for other in MEMBERS if other != name for layout in tasks.get(other).eval_layouts}
    assert not set(layouts) & others  # one task scores a layout's annotations, so inference is unambiguous


def test_every_annotated_layout_is_scored_by_a_task() -> None:
    claimed = {layout for task in tasks.REGISTRY.values() for layout in task.eval_layouts}
    assert claimed == set(ANNOTATED_LAYOUTS)
    assert tasks.get("detection").eval_layouts == ("yolo", "coco")
    assert tasks.get("segmentation").eval_layouts == ("segmentation",)


@pytest.mark.parametrize("name", MEMBERS)
def test_every_task_reads_labels_and_balances_them(name: str) -> None:
    task = tasks.get(name)
    data = _model_outputs_for(task)
    assert task.labels(data.records) == data.labels
    quotas = task.quotas({"0": 30, "1": 5, None: 10}, 20, "uniform")
    assert sum(q.quota for q in quotas) == 20


@pytest.mark.parametrize("name", MEMBERS)
def test_every_task_scores_real_outputs_consistently(name: str) -> None:
    task = tasks.get(name)
    data = _model_outputs_for(task)
    for references in (task.references(data.labels, data.float, manifest={}, class_map=None), None):
        headline, paired = task.headline(references), task.paired_metric(references)
        assert headline in task.metrics and task.metrics[headline].higher_is_better is task.higher_is_better
        assert paired in task.metrics and task.metrics[paired].higher_is_better is task.higher_is_better
        floats = task.float_metrics(data.float, references)
        assert headline in floats
        for quantized in (data.float, data.q8, data.q2):
            scores = task.score(quantized, data.float, references)
            json.dumps(scores, allow_nan=False)
            assert all(isinstance(v, float) and math.isfinite(v) for v in scores.values())
            assert set(floats) <= set(scores)
            per_sample = task.per_sample(quantized, data.float, references)
            assert per_sample.shape == (len(data.labels),)
            assert round(task.aggregate(per_sample), 6) == pytest.approx(scores[paired], abs=1e-6)
        assert task.score(data.float, data.float, references) == floats  # the float model scores its own metrics


@pytest.mark.parametrize("name", MEMBERS)
def test_every_task_ranks_coarser_quantization_worse_against_the_float_model(name: str) -> None:
    task = tasks.get(name)
    data = _model_outputs_for(task)
    value = {k: task.aggregate(task.per_sample(getattr(data, k), data.float, None)) for k in ("float", "q8", "q2")}
    better = (lambda a, b: a > b) if task.higher_is_better else (lambda a, b: a < b)
    assert better(value["q8"], value["q2"]) and not better(value["q8"], value["float"])
    headline = task.metrics[task.headline(None)]
    assert headline.better(value["q8"], value["q2"]) and headline.worst([value["q8"], value["q2"]]) == value["q2"]


@pytest.mark.parametrize("name", MEMBERS)
def test_every_tasks_paired_test_is_one_sided(name: str) -> None:
    task = tasks.get(name)
    data = _model_outputs_for(task)
    fine, coarse = (task.per_sample(getattr(data, k), data.float, None) for k in ("q8", "q2"))
    assert task.significant(fine, coarse)
    assert not task.significant(coarse, fine) and not task.significant(fine, fine)


def test_the_first_task_accepting_the_outputs_scores_them():
    assert tasks.for_outputs(outputs("classifier").float).name == "classification"
    for kind in ("two_heads", "detector", "segmenter"):  # detection and segmentation are chosen by name only
        assert tasks.for_outputs(outputs(kind).float).name == "fidelity"
    with pytest.raises(ValueError, match="did you mean 'fidelity'"):
        tasks.get("fidelty")
    with pytest.raises(ValueError, match="already registered"):
        tasks.register(tasks.get("fidelity").__class__())

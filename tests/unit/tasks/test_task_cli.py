"""A task with its own labels is its module plus one ``register()`` line: ``repcurate confirm --task <name>`` offers
and runs it, and its metric is reported, with no list of its own to edit.

The throwaway task below is real: object counting, whose reference is the number of boxes per image read from a
YOLO dataset's label files (the YOLO reader every annotated eval set goes through) and whose metric is the mean
absolute error of the count a postprocess finds. ``confirm`` runs in this process (``repcurate_cli.main.main``),
where the task is registered; MCT quantizes the seeded two-head detector of the headless-model tests.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

import repcurate
from repcurate import tasks
from repcurate.data.annotations import AnnotatedImage
from repcurate.tasks.base import HEADS_INPUT, FolderLabels, Metric, permutation_significant
from repcurate_cli.main import main
from tests.e2e.test_headless_models import MODELS
from tests.unit.data.annotated_testdata import compose, write_yolo_splits
from tests.unit.evaluate.test_load_eval import objects, truth_decoder

COUNT_MAE = Metric("count_mae", higher_is_better=False, unit="objects",
                   description="mean absolute error of the objects counted per image")


class CountingTask(FolderLabels):
    """Objects per image: the reference is the number of labelled boxes, the prediction the number of detections a
    postprocess returns with a score of at least 0.5; scored by the mean absolute error (lower is better)."""

    name: ClassVar[str] = "counting"
    metrics: ClassVar[dict[str, Metric]] = {COUNT_MAE.name: COUNT_MAE}
    feature_layer: ClassVar[str] = HEADS_INPUT
    higher_is_better: ClassVar[bool] = False
    #: Chosen by --task only: the YOLO boxes it counts come from the reader of a layout detection already claims.
    eval_layouts: ClassVar[tuple[str, ...]] = ()

    def __init__(self, postprocess: Callable[[list[np.ndarray]], Sequence[Any]] | None = None) -> None:
        self.postprocess = postprocess

    def configure(self, *, postprocess: Any = None, **_other: Any) -> CountingTask:
        return CountingTask(postprocess if postprocess is not None else self.postprocess)

    def accepts(self, outputs: list[np.ndarray]) -> bool:
        return self.postprocess is not None  # chosen by --task only, never guessed from shapes

    def counts(self, outputs: list[np.ndarray]) -> np.ndarray:
        assert self.postprocess is not None
        return np.array([int(np.count_nonzero(np.asarray(scores) >= 0.5))
                         for _boxes, scores, *_rest in self.postprocess(outputs)], dtype=np.float64)

    def references(self, labels: list[Any], float_outputs: list[np.ndarray], *, manifest: dict[str, Any],
                   class_map: dict[str, int] | None) -> np.ndarray | None:
        if labels and all(isinstance(label, AnnotatedImage) for label in labels):
            return np.array([len(label.boxes) for label in labels], dtype=np.float64)
        return None  # unlabelled eval images: count against the float model's count

    def headline(self, references: np.ndarray | None) -> str:
        return COUNT_MAE.name

    def paired_metric(self, references: np.ndarray | None) -> str:
        return COUNT_MAE.name

    def per_sample(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
                   references: np.ndarray | None) -> np.ndarray:
        truth = references if references is not None else self.counts(float_outputs)
        return np.abs(self.counts(outputs) - truth)

    def aggregate(self, per_sample: np.ndarray) -> float:
        return float(np.mean(per_sample))

    def score(self, outputs: list[np.ndarray], float_outputs: list[np.ndarray],
              references: np.ndarray | None) -> dict[str, float]:
        return {COUNT_MAE.name: round(self.aggregate(self.per_sample(outputs, float_outputs, references)), 6)}

    def float_metrics(self, float_outputs: list[np.ndarray], references: np.ndarray | None) -> dict[str, float]:
        return self.score(float_outputs, float_outputs, references)

    def significant(self, trial: np.ndarray, incumbent: np.ndarray) -> bool:
        return permutation_significant(-np.asarray(trial), -np.asarray(incumbent))  # fewer errors is better


@pytest.fixture
def counting():
    tasks.register(CountingTask())  # the one line a new task adds to tasks/__init__.py
    yield
    tasks.REGISTRY.pop("counting")


def extra_box_decoder(name: str, truth: str) -> str:
    """A postprocess that finds every true object plus one more per image (its count is off by exactly one)."""
    return (f"\ndef {name}(outputs):\n    return [(np.vstack([b, [[0, 0, 2, 2]]]), np.append(s, 0.9), np.append(c, 0))\n"
            f"            for b, s, c in {truth}(outputs)]\n")


def test_confirm_scores_a_registered_task_with_its_own_labels(counting, tmp_path, capsys):
    train, val = compose(objects(10, 1), seed=1), compose(objects(8, 2), seed=2)
    data = write_yolo_splits(tmp_path / "ds", {"train": train, "val": val})
    models = tmp_path / "models.py"
    models.write_text(MODELS + truth_decoder("truth", [t for _pixels, t in val]) + extra_box_decoder("one_more", "truth"),
                      encoding="utf-8")
    repcurate.build(data, tmp_path / "set", size=6, model=f"{models}:detector", preprocess=f"{models}:preprocess",
                    use_cache=False, progress=False, device="cpu")
    confirm = ["confirm", "--repset", str(tmp_path / "set"), "--model", f"{models}:detector", "--eval-dir", str(data),
               "--preprocess", f"{models}:preprocess", "--task", "counting", "--random-sets", "0", "--no-first-n",
               "--bias-correction", "on", "--device", "cpu", "--no-cache", "--format", "json"]

    reports = {}
    for decoder in ("truth", "one_more"):
        out = tmp_path / f"{decoder}.json"
        assert main([*confirm, "--postprocess", f"{models}:{decoder}", "--output", str(out)]) == 0
        reports[decoder] = json.loads(out.read_text(encoding="utf-8"))
    exact, off_by_one = reports["truth"], reports["one_more"]
    assert exact["metric"] == "count_mae" and exact["settings"]["task"] == "counting"
    assert exact["settings"]["reference"] == "ground truth" and exact["settings"]["eval_images"] == len(val)
    assert exact["metric_info"] == COUNT_MAE.to_dict()
    # the references are the label files' box counts: the exact decoder is off by 0 objects, the other by 1
    assert exact["float"]["count_mae"] == 0.0 and off_by_one["float"]["count_mae"] == 1.0
    assert [arm["metric"]["count_mae"] for arm in off_by_one["arms"]] == [1.0]
    assert off_by_one["summary"][0]["curated"] == 1.0

    assert main([*confirm[:-2], "--postprocess", f"{models}:truth"]) == 0  # the text table names the metric
    assert "count_mae" in capsys.readouterr().out

"""Task inference of the evaluation is a loop over the registered tasks' ``eval_layouts``: real outputs of the seeded
models of the task contract test on digits (a decoding detector, a segmenter, a two-head model), on scans of each
layout; a task registered with its own eval layout is inferred on that layout with no change to the evaluation."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from repcurate import tasks
from repcurate.data.layouts import ANNOTATED_LAYOUTS, CLASSES, COCO, LIST, SEGMENTATION, YOLO
from repcurate.data.scan import ScanResult
from repcurate.errors import UsageError
from repcurate.evaluate.infer import infer_task
from repcurate.evaluate.records import scored_layouts
from repcurate.tasks.fidelity import FidelityTask
from tests.unit.tasks.test_contract import outputs


def _scan(layout: str) -> ScanResult:
    return ScanResult(root=Path("eval"), layout=layout, records=[])


def _infer(layout: str, kind: str) -> str | None:
    return infer_task(_scan(layout), outputs(kind).float, postprocess=None, channels_last=False, where="eval")


def test_the_annotated_layouts_are_the_ones_tasks_score() -> None:
    assert sorted(scored_layouts()) == sorted(ANNOTATED_LAYOUTS)


@pytest.mark.parametrize("layout", [YOLO, COCO])
def test_boxes_are_scored_by_detection_when_the_outputs_are_decoded_boxes(layout: str) -> None:
    assert _infer(layout, "detector") == "detection"
    with pytest.raises(UsageError, match=f"eval: holds detection labels \\({layout}\\), and the model's outputs .* "
                                         "are not decoded boxes; fix: pass --postprocess"):
        _infer(layout, "two_heads")


def test_masks_are_scored_by_segmentation_when_the_outputs_are_score_maps_else_guessed() -> None:
    assert _infer(SEGMENTATION, "segmenter") == "segmentation"
    assert _infer(SEGMENTATION, "classifier") is None  # no reason given: guessed from the outputs


def test_folders_and_lists_are_claimed_by_no_task_and_a_postprocess_means_detection() -> None:
    assert _infer(CLASSES, "detector") is None and _infer(LIST, "segmenter") is None
    scan = _scan(CLASSES)
    assert infer_task(scan, outputs("classifier").float, postprocess=lambda raw: raw, channels_last=False, where="eval") == "detection"


class ListFidelity(FidelityTask):
    """A throwaway task scoring the annotations of list files (fidelity otherwise)."""

    name: ClassVar[str] = "list_fidelity"
    eval_layouts: ClassVar[tuple[str, ...]] = (LIST,)


def test_a_registered_task_with_its_own_eval_layout_is_inferred_on_it(monkeypatch) -> None:
    monkeypatch.setitem(tasks.REGISTRY, ListFidelity.name, ListFidelity())
    assert _infer(LIST, "classifier") == "list_fidelity"
    assert LIST in scored_layouts()
    assert _infer(CLASSES, "classifier") is None

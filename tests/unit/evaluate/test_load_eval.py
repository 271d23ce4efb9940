"""Labelled detection / segmentation eval (issue 15): ``load_eval`` on a YOLO data.yaml (its val split), a COCO
JSON and a segmentation folder of real images (digits pasted on photo crops), scored against their boxes / masks
with the seeded two-head detector and segmenter of the headless-model tests (real torch, real pycocotools)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repcurate.errors import UsageError
from repcurate.evaluate import EvalData, EvalSource, load_eval
from repcurate.frameworks.loading import as_preprocessor, load_model
from tests.e2e.test_headless_models import MODELS
from tests.unit.data.annotated_testdata import HEIGHT, WIDTH, TruthImage, compose, write_coco, write_segmentation, write_yolo_splits

#: The models' input side (their preprocess resizes every image to 16×16).
INPUT = 16
BAD = "img002"  # its val label names class 7 of 3: label_out_of_range


def truth_decoder(name: str, truths: list[TruthImage], *, scale: bool = True, letterboxed: bool = False) -> str:
    """Source of a postprocess ``name(outputs)`` returning, per eval image in path order, its true boxes (in
    model-input pixels when ``scale`` — of the stretched image, or of the letterboxed one when ``letterboxed`` — else
    in original-image pixels) with score 1: an exactly right detector."""
    sx, sy = (INPUT / WIDTH, INPUT / HEIGHT) if scale else (1.0, 1.0)
    px = py = 0.0
    if letterboxed:  # one ratio for both axes, the short side centred on padding (as Ultralytics' LetterBox)
        ratio = min(INPUT / WIDTH, INPUT / HEIGHT)
        sx = sy = ratio
        px, py = (INPUT - round(WIDTH * ratio)) / 2, (INPUT - round(HEIGHT * ratio)) / 2
    per_image = [[(x0 * sx + px, y0 * sy + py, x1 * sx + px, y1 * sy + py, c) for c, x0, y0, x1, y1 in t.boxes]
                 for t in sorted(truths, key=lambda t: t.name)]
    return (f"\ndef {name}(outputs):\n    truth = {per_image!r}\n    assert len(outputs[0]) == len(truth)\n"
            "    return [(np.array([b[:4] for b in boxes]).reshape(-1, 4), np.ones(len(boxes)),\n"
            "             np.array([b[4] for b in boxes], dtype=int)) for boxes in truth]\n")


#: A user's own letterbox preprocessing (no frame method: repcurate measures where it puts the image).
LETTERBOX = f"""

def letterbox(image):
    rgb = image.convert("RGB")
    ratio = min({INPUT} / rgb.height, {INPUT} / rgb.width)
    new_w, new_h = round(rgb.width * ratio), round(rgb.height * ratio)
    canvas = np.full(({INPUT}, {INPUT}, 3), 114, dtype=np.uint8)
    top, left = ({INPUT} - new_h) // 2, ({INPUT} - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = np.asarray(rgb.resize((new_w, new_h), Image.BILINEAR))
    return canvas.transpose(2, 0, 1).astype(np.float32) / 255.0
"""


def objects(count: int, seed: int) -> list[list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    return [[(int(rng.integers(0, 3)), int(rng.choice([10, 16, 24]))) for _ in range(int(rng.integers(1, 3)))]
            for _ in range(count)] + [[]]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("annotated_eval")
    train, val = compose(objects(10, 1), seed=1), compose(objects(9, 2), seed=2)
    write_yolo_splits(work / "ds", {"train": train, "val": val})
    label = work / "ds" / "labels" / "val" / f"{BAD}.txt"
    label.write_text(label.read_text() + "7 0.5 0.5 0.1 0.1\n")
    write_coco(work / "ds" / "annotations" / "instances_val.json", work / "ds" / "images" / "val", val,
               write_images=False, relative_to=work / "ds")
    write_segmentation(work / "seg", compose([[(0, 16), (1, 12)], [(1, 20)], [(0, 10), (1, 14)], []], seed=4))
    valid = [t for _pixels, t in val if not t.name.startswith(BAD)]
    (work / "models.py").write_text(MODELS + truth_decoder("truth_yolo", valid)
                                    + truth_decoder("truth_coco", [t for _p, t in val])
                                    + truth_decoder("unscaled_yolo", valid, scale=False)
                                    + truth_decoder("letterboxed_yolo", valid, letterboxed=True) + LETTERBOX)
    return work


def evaluate(project: Path, eval_dir: Path, model: str = "detector", preprocessor: str | None = None,
             **options) -> EvalData:
    """``load_eval`` of ``eval_dir`` with ``options`` (the :class:`EvalSource` fields: split, task, postprocess...)."""
    loaded = load_model(f"{project / 'models.py'}:{model}")
    return load_eval(EvalSource(eval_dir, **options), framework=loaded.framework, float_model=loaded.model, manifest={},
                     preprocessor=as_preprocessor(preprocessor or f"{project / 'models.py'}:preprocess"),
                     model_spec=loaded.spec)


def test_a_yolo_val_split_is_scored_against_its_boxes_and_a_bad_label_is_skipped(project: Path) -> None:
    evaluation = evaluate(project, project / "ds" / "data.yaml", postprocess=f"{project / 'models.py'}:truth_yolo")
    assert evaluation.task.name == "detection" and evaluation.labels is not None  # ground truth, not the float model
    assert len(evaluation.x) == 9  # the val split (10 images), less the one whose label is out of range
    assert [(s.path, s.reason) for s in evaluation.skipped] == [(f"labels/val/{BAD}.txt", "label_out_of_range")]
    scores = evaluation.float_metrics()
    assert scores["map"] == scores["map50"] == 1.0  # the true boxes, scaled to the 16×16 input, are found exactly
    assert scores["f1_50"] == 1.0


def test_true_boxes_left_in_original_image_pixels_score_far_below_one(project: Path) -> None:
    # Can-fail twin of the test above: ground truth is compared in model-input pixels, not in the image's.
    evaluation = evaluate(project, project / "ds" / "data.yaml", postprocess=f"{project / 'models.py'}:unscaled_yolo")
    assert evaluation.float_metrics()["map"] < 0.2


def test_a_letterboxing_preprocessing_is_scored_in_its_own_frame(project: Path) -> None:
    # A detector that finds every true box exactly, behind a letterbox: mapped back through the measured frame, the
    # boxes meet the labels (mAP 1); read as a stretch (the frame of a plain resize), they would not.
    models = project / "models.py"
    exact = evaluate(project, project / "ds" / "data.yaml", postprocess=f"{models}:letterboxed_yolo",
                     preprocessor=f"{models}:letterbox")
    assert exact.float_metrics()["map"] == 1.0
    stretched = evaluate(project, project / "ds" / "data.yaml", postprocess=f"{models}:letterboxed_yolo")
    assert stretched.float_metrics()["map"] < 0.5


def test_a_float_model_far_below_its_labels_is_flagged_as_a_frame_mismatch(project: Path, caplog) -> None:
    with caplog.at_level("WARNING", logger="repcurate"):
        evaluate(project, project / "ds" / "data.yaml", postprocess=f"{project / 'models.py'}:unscaled_yolo")
    assert any("probably disagree on the frame" in r.getMessage() for r in caplog.records)


def test_a_real_decoder_scores_in_range_and_an_unlabelled_split_would_score_it_one(project: Path) -> None:
    decode = f"{project / 'models.py'}:decode"
    labelled = evaluate(project, project / "ds" / "data.yaml", postprocess=decode).float_metrics()
    assert 0.0 <= labelled["map"] <= labelled["map50"] < 1.0  # an untrained detector against true boxes
    unlabelled = evaluate(project, project / "ds" / "images" / "val", postprocess=decode)
    assert unlabelled.labels is None and unlabelled.float_metrics()["map"] == 1.0  # the float model is the reference


def test_a_coco_json_of_the_same_images_scores_the_same_way(project: Path) -> None:
    evaluation = evaluate(project, project / "ds" / "annotations" / "instances_val.json", images_dir=project / "ds",
                          postprocess=f"{project / 'models.py'}:truth_coco")
    assert len(evaluation.x) == 10 and evaluation.skipped == []  # the COCO copy has no out-of-range label
    assert evaluation.labels is not None and evaluation.float_metrics()["map"] == 1.0


def test_another_split_is_read_when_named(project: Path) -> None:
    evaluation = evaluate(project, project / "ds" / "data.yaml", split="train", task="fidelity")
    assert len(evaluation.x) == 11 and evaluation.skipped == []  # the train split: 10 objects images + background
    assert evaluation.task.name == "fidelity" and evaluation.labels is None  # --task overrides the inference


def test_detection_labels_without_a_postprocess_ask_for_one(project: Path) -> None:
    with pytest.raises(UsageError, match=r"holds detection labels .*fix: pass --postprocess"):
        evaluate(project, project / "ds" / "data.yaml")


@pytest.mark.parametrize("eval_dir", ["ds/data.yaml", "ds/images/val"])
def test_an_explicit_detection_task_without_a_postprocess_is_a_usage_error(project: Path, eval_dir: str) -> None:
    with pytest.raises(UsageError, match=r"--task detection: the model's outputs .* are not decoded boxes; fix: pass --postprocess"):
        evaluate(project, project / eval_dir, task="detection")


def test_a_segmentation_folder_is_scored_by_miou_against_its_masks(project: Path) -> None:
    evaluation = evaluate(project, project / "seg", model="segmenter")  # no --task: masks + score maps
    assert evaluation.task.name == "segmentation" and evaluation.metric == "miou"
    masks = [np.asarray(Image.open(p).resize((INPUT, INPUT), Image.NEAREST))
             for p in sorted((project / "seg" / "masks" / "val").glob("*.png"))]
    assert evaluation.labels is not None and np.array_equal(evaluation.labels, np.stack(masks))
    scores = evaluation.float_metrics()
    assert 0.0 <= scores["miou"] < 1.0  # an untrained segmenter against the true masks
    assert evaluate(project, project / "seg" / "images" / "val", model="segmenter",
                    task="segmentation").float_metrics()["miou"] == 1.0  # unlabelled: against its own argmax

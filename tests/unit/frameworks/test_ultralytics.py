"""Ultralytics checkpoints as a model: the traceable form equals the checkpoint, loads through the registry with its
own letterbox, NMS, names and head-input features; heads it does not take are refused; a set never loads a .pt."""
from __future__ import annotations

import numpy as np
import pytest

from repcurate.errors import InputError, UsageError
from tests.unit.frameworks.ultralytics_testdata import IMGSZ, detection_model, require_ultralytics, save_checkpoint


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """``{"yolov8n": path, "yolo11n": path}``: random-init checkpoints at 64 px, three classes."""
    root = tmp_path_factory.mktemp("ultralytics")
    require_ultralytics(root / "config")
    return {name: save_checkpoint(detection_model(f"{name}.yaml"), root / f"{name}.pt") for name in ("yolov8n", "yolo11n")}


def _xyxy(xywh):
    return np.concatenate([xywh[..., :2] - xywh[..., 2:] / 2, xywh[..., :2] + xywh[..., 2:] / 2], axis=-1)


@pytest.mark.parametrize("name", ["yolov8n", "yolo11n"])
def test_traceable_model_reproduces_the_checkpoint_and_mct_traces_it(checkpoints, name):
    import torch
    from model_compression_toolkit.core.pytorch.reader.reader import _trace_model
    from ultralytics import YOLO

    from repcurate.frameworks.loading import load_model

    reference = YOLO(str(checkpoints[name])).model.float().eval()  # Ultralytics' own loader reads the file
    assert reference.args["imgsz"] == IMGSZ
    loaded = load_model(str(checkpoints[name]))
    assert loaded.framework.name == "ultralytics"
    x = torch.rand(3, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(x)[0].numpy().transpose(0, 2, 1)  # (n, anchors, 4 xywh + classes)
        boxes, scores = (t.numpy() for t in loaded.model(x))
    assert boxes.shape == (3, 84, 4) and scores.shape == (3, 84, 3)  # 8² + 4² + 2² anchors at 64 px
    assert np.abs(boxes - _xyxy(expected[..., :4])).max() <= 1e-3
    assert np.abs(scores - expected[..., 4:]).max() <= 1e-5
    graph = _trace_model(loaded.model)  # what MCT's reader does
    with torch.no_grad():
        traced_boxes, _ = graph(x)
    assert np.abs(traced_boxes.numpy() - boxes).max() == 0.0


def test_checkpoint_brings_its_preprocessing_postprocess_names_and_features(checkpoints):
    from PIL import Image

    from repcurate.data.geometry import Frame, frame_of
    from repcurate.frameworks.loading import as_preprocessor, load_model, own_postprocess, own_preprocess_spec

    loaded = load_model(str(checkpoints["yolov8n"]))
    spec = own_preprocess_spec(loaded)
    assert spec == f"repcurate.data.geometry:letterbox_{IMGSZ}"
    pre = as_preprocessor(spec)
    sample = pre(Image.new("RGB", (128, 64), (255, 0, 0)))
    assert sample.shape == (3, IMGSZ, IMGSZ) and sample[0, 0, 0] == pytest.approx(114 / 255)  # grey padding on top
    assert frame_of(pre, 128, 64) == Frame(0.5, 0.5, 0.0, 16.0, IMGSZ, IMGSZ, "letterbox")
    assert loaded.framework.class_names(loaded.model) == ["zero", "one", "two"]
    capture = loaded.framework.capture(loaded.model, layer=None, spec="best.pt")
    features = capture(np.stack([sample, sample * 0.5]))
    head = loaded.model.head
    widths = [branch[0].conv.in_channels for branch in head.cv2]  # P3, P4, P5 channels
    assert capture.layer == "Detect:input" and features.shape == (2, sum(widths))
    post = own_postprocess(loaded.framework, loaded.model)
    outputs = loaded.framework.outputs(loaded.model, np.stack([sample]))
    [(boxes, scores, classes)] = post(outputs)
    assert len(boxes) <= 300 and (scores >= 0.001).all() and set(classes) <= {0, 1, 2}


def test_nms_keeps_the_best_box_of_each_overlapping_group_per_class():
    from repcurate.frameworks.ultralytics_head import nms_detections

    boxes = np.array([[[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]]], dtype=np.float32)
    scores = np.array([[[0.9, 0.0], [0.8, 0.1], [0.0, 0.7], [0.0005, 0.0]]], dtype=np.float32)
    [(kept, kept_scores, kept_classes)] = nms_detections([boxes, scores])
    assert kept.tolist() == [[0, 0, 10, 10], [0, 0, 10, 10]]  # the overlapping class-0 box goes; class 1 stays
    assert kept_scores.tolist() == pytest.approx([0.9, 0.7]) and kept_classes.tolist() == [0, 1]  # 0.0005: below 0.001


def test_segmentation_checkpoint_is_refused_with_the_reason(tmp_path, checkpoints):
    from repcurate.frameworks.loading import load_model

    path = save_checkpoint(detection_model("yolov8n-seg.yaml"), tmp_path / "seg.pt", task="segment")
    with pytest.raises(UsageError, match=r"segment model \(Segment head\).*YOLOv8 / YOLO11 detect"):
        load_model(str(path))


def test_a_yaml_built_model_object_is_taken_as_is(checkpoints):
    from repcurate.frameworks.loading import load_model

    loaded = load_model(detection_model("yolo11n.yaml"))  # e.g. returned by file.py:make; default imgsz 640 here
    assert loaded.framework.name == "ultralytics" and loaded.model.imgsz == (640, 640)


def test_files_that_are_not_checkpoints_are_bad_input(tmp_path, checkpoints):
    import torch

    from repcurate.frameworks.loading import load_model

    torch.save({"weight": torch.zeros(2)}, tmp_path / "state.pt")
    with pytest.raises(InputError, match="holds no Ultralytics model"):
        load_model(str(tmp_path / "state.pt"))
    with pytest.raises(InputError, match="file not found"):
        load_model(str(tmp_path / "missing.pt"))


def test_a_checkpoint_named_only_by_a_set_never_loads():
    from repcurate import trust

    assert trust.names_code("runs/detect/train/weights/best.pt")  # a pickle: code
    assert not trust.allowed("best.pt", trust_set=False) and trust.allowed("best.pt", trust_set=True)
    assert trust.allowed("repcurate.data.geometry:letterbox_416", trust_set=False)  # repcurate's own preprocessing
    assert not trust.allowed("repcurate.data.geometry:np.save", trust_set=False)


def test_class_names_that_differ_from_the_eval_data_are_warned_about(tmp_path, checkpoints, caplog):
    from repcurate.data.sources import eval_source
    from repcurate.evaluate.class_names import warn_class_names
    from repcurate.frameworks.loading import load_model
    from tests.unit.frameworks.ultralytics_testdata import digits_yolo

    source = eval_source(digits_yolo(tmp_path / "data"), split="val")
    same = load_model(str(checkpoints["yolov8n"]))
    with caplog.at_level("WARNING", logger="repcurate"):
        warn_class_names(same.framework, same.model, source, "best.pt")
    assert not [r for r in caplog.records if r.name == "repcurate"]
    caplog.clear()
    model = detection_model("yolov8n.yaml")
    model.names = {0: "cat", 1: "dog", 2: "bird"}
    other = load_model(str(save_checkpoint(model, tmp_path / "pets.pt")))
    with caplog.at_level("WARNING", logger="repcurate"):
        warn_class_names(other.framework, other.model, source, "pets.pt")
    [record] = [r for r in caplog.records if r.name == "repcurate"]
    assert "pets.pt names its classes ['cat', 'dog', 'bird'], the eval data ['zero', 'one', 'two']" in record.getMessage()

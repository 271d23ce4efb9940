"""The doctor's detection-head step on real detectors, real MCT: it finds the box decoding in the graph MCT
quantizes (the bundled detector with its decoding inside, a random-init Ultralytics YOLOv8n), runs PTQ with 16-bit
activations there and ``concat_threshold_update`` on IMX500 TPC 4.0 — read back from the quantized model — and
records the measured result; a model that decodes outside (the bundled detector's raw heads) has nothing to fix."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from repcurate import tasks
from repcurate.commands.doctor import steps
from repcurate.commands.doctor.lab import Incumbent, Lab, StepContext
from repcurate.evaluate import EvalData
from repcurate.example_detection import compose_split
from repcurate.frameworks.loading import load_model
from repcurate.quantize.mct import MCTQuantizer, MCTSettings
from repcurate.repset import mct_data_gen

pytest.importorskip("pycocotools")


def _images(split: str, count: int, size: int) -> np.ndarray:
    """The example detection dataset's composites as float32 (n, 3, size, size) in [0, 1]."""
    from PIL import Image

    out = []
    for composite in compose_split(split, count, size=128):
        image = Image.fromarray(composite.image)
        if size != 128:
            image = image.resize((size, size), Image.BILINEAR)
        out.append(np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0)
    return np.stack(out)


def _context(model, postprocess, size: int, tpc: str = "imx500:1.0") -> tuple[StepContext, Incumbent]:
    """The doctor's lab on ``model``: 16 train composites as the representative set, 24 val composites scored by
    COCO mAP against the float model's detections; the baseline measured as the doctor measures it."""
    loaded = load_model(model)
    framework = loaded.framework
    calibration, evaluation_x = _images("train", 16, size), _images("val", 24, size)
    _finding, graph, prepared = steps.preflight_step(loaded.model, framework, calibration)
    assert graph is not None
    task = tasks.configured(tasks.get("detection"), postprocess=postprocess, where="test")
    float_outputs = framework.outputs(prepared, evaluation_x)
    evaluation = EvalData(Path("."), evaluation_x, None, float_outputs, task)
    quantizer = MCTQuantizer()
    lab = Lab(quantizer=quantizer, framework=framework, model=prepared, data_gen=mct_data_gen(calibration, 8),
              evaluation=evaluation, tpc=quantizer.platform(tpc), budget_seconds=3600, started=time.perf_counter(),
              tpc_spec=tpc)
    base = MCTSettings(tpc=tpc)
    baseline = lab.measure(base, "baseline", keep_as_baseline=True)
    stats, concats, kinds, activation_nodes = steps.graph_view(graph, framework.mct, calibration, 8)
    context = StepContext(lab=lab, stats=stats, concats=concats, kinds=kinds, activation_nodes=activation_nodes,
                          min_gain=0.005, float_value=1.0, tolerance=0.01, set_problem=False, gptq_epochs=1,
                          inputs=graph.inputs())
    return context, Incumbent(base, baseline.metric, baseline.hits)  # type: ignore[arg-type]


def _check_head_fix(context: StepContext, incumbent: Incumbent) -> None:
    baseline_bits = context.lab.framework.mct.activation_bits(context.lab.baseline_model)
    finding, new = steps.head_step(context, incumbent)
    details = finding.details
    nodes = details["activation_16bit_nodes"]
    assert {context.kinds[n] for n in nodes} == {"sub", "add", "cat", "mul"}, details
    assert not set(nodes) & set(details["class_score_nodes"])
    assert all(baseline_bits[n] == 8 for n in nodes)  # MCT's defaults: 8 bits there
    assert details["activation_bits"] == dict.fromkeys(nodes, 16)  # read back from the head fix's quantized model
    assert details["tpc"] == "imx500:4.0" and details["box_range"] > 10 * details["score_range"]
    [trial] = finding.experiments
    assert trial.metric is not None and trial.settings.manual_16bit == tuple(nodes)
    assert trial.settings.tpc == "imx500:4.0" and trial.settings.quantization_dict() == {"concat_threshold_update": True}
    assert finding.gain == pytest.approx(round((trial.metric - incumbent.metric) * 100, 2))
    assert finding.status in ("fix found", "not significant", "no gain")
    assert (new is not incumbent) == (finding.status == "fix found")
    recorded = trial.to_dict()["settings"]
    assert recorded["activation_16bit_nodes"] == nodes and recorded["tpc"] == "imx500:4.0"
    assert "set_manual_activation_bit_width" in trial.settings.python() and "tpc_version='4.0'" in trial.settings.python()


@pytest.mark.slow
def test_head_step_on_the_bundled_detector_with_its_decoding_inside():
    from repcurate.models import tiny_yolo

    context, incumbent = _context(tiny_yolo.make_decoded_model(), tiny_yolo.postprocess_decoded, 128)
    _check_head_fix(context, incumbent)


@pytest.mark.slow
def test_head_step_on_a_random_init_ultralytics_yolov8n(tmp_path):
    from repcurate.frameworks.ultralytics_head import nms_detections
    from repcurate.frameworks.ultralytics_yolo import traceable
    from tests.unit.frameworks.ultralytics_testdata import detection_model, require_ultralytics

    require_ultralytics(tmp_path / "config")
    model = traceable(detection_model("yolov8n.yaml", classes=6), "yolov8n.yaml", imgsz=64)
    context, incumbent = _context(model, nms_detections, 64)
    _check_head_fix(context, incumbent)


def test_a_detector_that_decodes_outside_the_model_has_no_head_to_fix():
    from repcurate.commands.doctor.head import box_decoding
    from repcurate.frameworks.torch_trace import trace
    from repcurate.models import tiny_yolo

    sample = _images("val", 2, 128)
    raw = trace(tiny_yolo.make_model(), sample).graph
    assert raw is not None and box_decoding(raw.kinds(), raw.inputs()) is None
    decoded = trace(tiny_yolo.make_decoded_model(), sample).graph
    assert decoded is not None
    found = box_decoding(decoded.kinds(), decoded.inputs())
    assert found is not None and found.scores == ("sigmoid",)


def test_head_tpc_moves_imx500_to_4_0_and_refuses_other_devices():
    assert steps.head_tpc("imx500:1.0") == "imx500:4.0"
    assert steps.head_tpc("imx500:5.0") == "imx500:5.0"
    assert steps.head_tpc("tflite:1.0") is None


@pytest.mark.slow
def test_xquant_leaves_no_report_folder_and_prints_no_path_that_is_gone(tmp_path):
    """XQuant writes its report and log under a temporary folder the doctor removes: nothing of it stays in the
    temp directory, and no path into it is printed; the caller's own log handlers stay open (XQuant ends with
    ``logging.shutdown()``, which would close every handler of the process)."""
    import contextlib
    import io
    import logging
    import tempfile

    from repcurate.models import tiny_yolo

    context, _incumbent = _context(tiny_yolo.make_decoded_model(), tiny_yolo.postprocess_decoded, 128)
    before = {p.name for p in Path(tempfile.gettempdir()).glob("repcurate-xquant-*")}
    out, err = io.StringIO(), io.StringIO()
    callers_log = logging.FileHandler(tmp_path / "caller.log")
    logging.getLogger("caller").addHandler(callers_log)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            finding = steps.xquant_step(context, 8)
        logging.getLogger("caller").warning("still logging")
        assert callers_log.stream is not None and not callers_log.stream.closed
    finally:
        logging.getLogger("caller").removeHandler(callers_log)
        callers_log.close()
    assert "still logging" in (tmp_path / "caller.log").read_text()
    assert finding is not None and finding.step == "MCT XQuant" and finding.status in ("measured", "failed")
    assert "log file is in" not in out.getvalue() + err.getvalue()
    assert {p.name for p in Path(tempfile.gettempdir()).glob("repcurate-xquant-*")} == before
    from model_compression_toolkit.logger import Logger

    assert Logger.LOG_PATH is None or Path(Logger.LOG_PATH).exists()

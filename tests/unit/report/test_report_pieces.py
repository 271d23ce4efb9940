"""The report's building blocks: PCA, the build's projection.npz, tensor pictures, thumbnails,
deterministic figures, memory-mapped calibration rows, and what check records for the report."""
from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import repcurate
from repcurate.errors import InputError
from repcurate.example_data import write_digits_folder
from repcurate.render import figures
from repcurate.render.thumbnails import encode_image, tensor_to_image
from repcurate.report.suite_formats import render_junit
from repcurate.repset import PROJECTION_NAME, load_projection, open_npz_array, write_npz
from repcurate.select import projection as projection_module
from repcurate.select.geometry import pca_2d
from repcurate.select.projection import build_projection
from tests.unit.report.report_testdata import check_image, decode_data_uri


def test_pca_2d_finds_the_main_directions_and_fixes_signs():
    rng = np.random.default_rng(0)
    t = rng.normal(size=500)
    x = np.stack([3.0 * t, -3.0 * t, 0.3 * rng.normal(size=500), np.zeros(500)], axis=1)
    xy, ratios = pca_2d(x)
    assert xy.shape == (500, 2) and xy.dtype == np.float32
    assert ratios[0] > 0.95 and ratios[0] + ratios[1] > 0.999
    assert abs(np.corrcoef(xy[:, 0], t)[0, 1]) > 0.999
    again, _ = pca_2d(x[::-1].copy())
    np.testing.assert_allclose(again[::-1], xy, atol=1e-5)  # same rows, same picture (signs fixed)
    assert pca_2d(x[:1])[0].tolist() == [[0.0, 0.0]]
    assert pca_2d(np.ones((4, 3)))[1] == [0.0, 0.0]


def test_pca_2d_randomized_path_matches_the_exact_components():
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(400, 4)) * [4.0, 2.0, 1.0, 0.5]) @ rng.normal(size=(4, 300)) + 0.2 * rng.normal(size=(400, 300))
    xy, ratios = pca_2d(x)  # 400 × 300: randomized subspace iteration
    centred = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred / (len(x) - 1))
    for column in range(2):
        exact = centred @ vectors[:, -1 - column]
        assert abs(np.corrcoef(exact, xy[:, column])[0, 1]) > 0.99999
        assert ratios[column] == pytest.approx(values[-1 - column] / values.sum(), abs=1e-5)
    assert np.array_equal(pca_2d(x)[0], xy)


def test_build_projection_marks_selected_rows_and_caps_the_pool(monkeypatch):
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(60, 8)).astype(np.float32)
    labels = ["a"] * 30 + ["b"] * 20 + [None] * 10
    selected = [5, 40, 2, 55]
    arrays, info = build_projection(embeddings, labels, selected, [None, "a", "b"], seed=0)
    assert info["points"] == info["of"] == 60 and info["method"] == "pca"
    assert arrays["sample"][[5, 40, 2, 55]].tolist() == [0, 1, 2, 3]
    assert (arrays["sample"] >= 0).sum() == 4
    assert arrays["label"][:30].tolist() == [1] * 30 and arrays["label"][50:].tolist() == [0] * 10
    # per-class PCA: each class centred on its own mean (coordinates are rounded to 4 decimals)
    for i in range(3):
        assert np.allclose(arrays["xy_class"][arrays["label"] == i].mean(axis=0), 0.0, atol=1e-4)
    assert np.array_equal(arrays["xy"], np.round(arrays["xy"], 4))
    monkeypatch.setattr(projection_module, "MAX_PROJECTION_POINTS", 20)
    capped, capped_info = build_projection(embeddings, labels, selected, [None, "a", "b"], seed=0)
    assert capped_info["points"] == 20 and capped_info["of"] == 60
    assert sorted(capped["sample"][capped["sample"] >= 0].tolist()) == [0, 1, 2, 3]  # every selected row kept
    again, _ = build_projection(embeddings, labels, selected, [None, "a", "b"], seed=0)
    for name in capped:
        assert np.array_equal(again[name], capped[name])


def _tiny_model():
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10)).eval()


def _preprocess(image):
    return np.asarray(image.convert("L").resize((8, 8)), dtype=np.float32)[None] / 255.0


def test_build_writes_a_deterministic_projection(tmp_path):
    write_digits_folder(tmp_path / "train", per_class={0: 25, 1: 15, 2: 10})
    outs = []
    for name in ("a", "b"):
        repcurate.build(tmp_path / "train", tmp_path / name, size=12, model=_tiny_model(), preprocess=_preprocess,
                        cache_dir=tmp_path / "cache", progress=False)
        outs.append(tmp_path / name)
    for name in ("manifest.json", "calibration.npz", PROJECTION_NAME):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    manifest = json.loads((outs[0] / "manifest.json").read_text())
    info = manifest["projection"]
    assert info["file"] == PROJECTION_NAME and info["points"] == info["of"] == 50 and len(info["sha256"]) == 64
    arrays = load_projection(outs[0], manifest)
    assert arrays["xy"].shape == (50, 2) and set(arrays["label"].tolist()) == {0, 1, 2}
    assert (arrays["sample"] >= 0).sum() == 12
    # a set saved without projection arrays drops the manifest entry instead of pointing at nothing
    loaded = repcurate.load(outs[0])
    assert loaded.projection is None
    loaded.save(tmp_path / "copy")
    assert "projection" not in json.loads((tmp_path / "copy" / "manifest.json").read_text())
    assert not (tmp_path / "copy" / PROJECTION_NAME).exists()
    # a tampered projection is refused
    write_npz(outs[1] / PROJECTION_NAME, {k: v[::-1].copy() for k, v in arrays.items()})
    with pytest.raises(InputError, match="does not match the manifest's sha256"):
        load_projection(outs[1], manifest)


def test_open_npz_array_memory_maps_stored_archives(tmp_path):
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    write_npz(tmp_path / "a.npz", {"x": x, "y": np.arange(3)})
    mapped = open_npz_array(tmp_path / "a.npz", "x")
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, x)
    np.savez_compressed(tmp_path / "b.npz", x=x)
    loaded = open_npz_array(tmp_path / "b.npz", "x")
    assert not isinstance(loaded, np.memmap)
    np.testing.assert_array_equal(loaded, x)


def test_tensor_pictures_keep_layout_channel_order_and_inversion_visible():
    rng = np.random.default_rng(2)
    hwc = rng.normal(size=(6, 7, 3)).astype(np.float32)
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    a, b = np.asarray(tensor_to_image(hwc)), np.asarray(tensor_to_image(chw))
    assert a.shape == (6, 7, 3) and np.array_equal(a, b)
    bgr = np.asarray(tensor_to_image(chw[::-1]))
    assert np.array_equal(bgr, a[..., ::-1])
    grey = rng.uniform(size=(1, 5, 5))
    plain, inverted = np.asarray(tensor_to_image(grey)), np.asarray(tensor_to_image(-grey))
    assert plain.ndim == 2 and plain.min() == 0 and plain.max() == 255
    assert np.abs(plain.astype(int) + inverted.astype(int) - 255).max() <= 1
    assert np.asarray(tensor_to_image(np.full((3, 4, 4), 7.0))).tolist() == np.full((4, 4, 3), 128).tolist()
    assert np.asarray(tensor_to_image(np.zeros((2, 1, 5, 5)))).shape == (5, 5)  # unusual ranks still draw
    assert np.asarray(tensor_to_image(np.arange(6.0))).shape == (1, 6)


def test_encode_image_is_small_deterministic_and_metadata_free():
    rng = np.random.default_rng(3)
    photo = Image.fromarray(rng.integers(0, 256, size=(300, 200, 3), dtype=np.uint8), "RGB")
    uri = encode_image(photo, max_side=64)
    assert uri == encode_image(photo, max_side=64)
    mime, payload = decode_data_uri(uri)
    with Image.open(io.BytesIO(payload)) as image:
        assert max(image.size) == 64 and image.size == (43, 64)
        assert not image.getexif() and "exif" not in image.info
    tiny_grey = Image.fromarray(np.tile(np.arange(8, dtype=np.uint8) * 30, (8, 1)), "L").convert("RGB")
    mime, payload = decode_data_uri(encode_image(tiny_grey))
    assert mime == "image/png"  # tiny images stay lossless
    with Image.open(io.BytesIO(payload)) as image:
        assert image.mode == "L" and image.size == (8, 8)


def test_figures_are_byte_identical_and_carry_no_date():
    report = json.loads((__import__("pathlib").Path(__file__).with_name("data") / "confirm_digits.json").read_text())
    first, second = figures.confirm_plot(report), figures.confirm_plot(report)
    assert first == second
    mime, svg = decode_data_uri(first)
    assert mime == "image/svg+xml" and b"<dc:date>" not in svg and b"Matplotlib v" not in svg
    check_image(first)
    labels = [t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
    assert {"curated", "random-5", "random-6", "first-n"} <= set(labels)  # text kept as text (svg.fonttype none)
    rng = np.random.default_rng(4)
    xy = rng.normal(size=(300, 2)).astype(np.float32)
    label = rng.integers(0, 3, size=300).astype(np.int32)
    sample = np.where(rng.uniform(size=300) < 0.1, 1, -1).astype(np.int32)
    png = figures.projection_overview(xy, label, sample, ["a", "b", "c"], [0.4, 0.2])
    assert png == figures.projection_overview(xy, label, sample, ["a", "b", "c"], [0.4, 0.2])
    mime, payload = decode_data_uri(png)
    with Image.open(io.BytesIO(payload)) as image:
        assert mime == "image/png" and "Software" not in image.info


def test_figures_leave_the_callers_matplotlib_state_alone():
    import matplotlib

    before = dict(matplotlib.rcParams)
    figures.coverage_bars({"curated": {"mean": 0.2, "max": 0.5},
                           "random": {"draws": 5, "mean": {"mean": 0.25, "std": 0.01}, "max": {"mean": 0.6, "std": 0.02}}})
    assert dict(matplotlib.rcParams) == before


def test_check_records_what_the_report_needs(report_project):
    report = json.loads(report_project.check_json.read_text())
    inputs = report["inputs"]
    assert inputs["eval_preprocess"] == report_project.eval_preprocess and inputs["model"] == report_project.model
    assert inputs["seed"] == 0
    shift = next(c for c in report["checks"] if c["id"] == "distribution_shift")
    projection = shift["details"]["projection"]
    assert projection["method"] == "pca"
    assert len(projection["set"]) == shift["details"]["repset_images"]
    assert len(projection["eval"]) == min(600, shift["details"]["eval_images"])
    # the JUnit body leaves the plot coordinates out
    from repcurate.checks.base import CheckResult, Status
    from repcurate.checks.suite import SuiteResult

    results = [CheckResult(c["id"], Status(c["status"]), c["value"], c["message"], c["details"]) for c in report["checks"]]
    junit = render_junit(SuiteResult(results), fail_on="warn")  # distribution_shift warns here: its body is written
    assert '"projection"' not in junit and '"mmd2"' in junit


def _parsed(command: str):
    """A reconstructed command line parsed by the real command-line parser (every flag must exist)."""
    import shlex

    from repcurate_cli.main import make_parser

    words = shlex.split(command)
    assert words[0] == "repcurate"
    return make_parser().parse_args(words[1:])


def test_confirm_and_doctor_commands_reproduce_a_yolo_eval_with_a_postprocess(tmp_path):
    from repcurate.commands.confirm import given_options
    from repcurate.evaluate import EvalSource
    from repcurate.report.html import confirm_command, doctor_command

    data = (tmp_path / "ds" / "data.yaml").as_posix()
    source = EvalSource(Path(data), split="test", task="detection", postprocess="models.py:decode", max_eval=50)
    options = given_options(source, preprocess="models.py:preprocess", train_dir=tmp_path / "train", batch_size=32,
                            device="cpu", first_n=False, grid={"bias_correction": (True,)}, trust_set=True)
    settings = {"model": "models.py:detector", "eval_dir": (tmp_path / "ds").as_posix(), "random_sets": 1,
                "weights_bits": 8, "tpc": "imx500:4.0", "seed": 3, "quantizer": "mct", "task": "detection",
                "options": options}
    args = _parsed(confirm_command({"settings": settings}, "my set"))
    assert (args.command, args.eval_dir.as_posix(), args.split, args.postprocess, args.task) == (
        "confirm", data, "test", "models.py:decode", "detection")
    assert (args.preprocess, args.model, args.max_eval, args.no_first_n, args.bias_correction) == (
        "models.py:preprocess", "models.py:detector", 50, True, (True,))
    assert (args.train_dir.as_posix(), args.device, args.tpc, args.seed, str(args.repset), args.trust_set) == (
        (tmp_path / "train").as_posix(), "cpu", "imx500:4.0", 3, "my set", True)
    doctor_settings = {"model": "models.py:detector", "eval_dir": data, "tolerance_points": 2.0, "budget_minutes": 5.0,
                       "weights_bits": 8, "tpc": "imx500:1.0", "min_gain_points": 0.5, "seed": 0,
                       "options": {**options, "train_dir": None, "first_n": None, "bias_correction": None,
                                   "gptq_epochs": 5, "run_checks": False}}
    args = _parsed(doctor_command({"settings": doctor_settings}, "set"))
    assert (args.command, args.eval_dir.as_posix(), args.split, args.postprocess, args.task, args.no_checks) == (
        "doctor", data, "test", "models.py:decode", "detection", True)
    assert (args.budget_minutes, args.tolerance, args.max_eval) == (5.0, 2.0, 50)
    # a JSON written before the options were recorded: the eval folder it recorded, no invented flags
    old = _parsed(confirm_command({"settings": {k: v for k, v in settings.items() if k != "options"}}, "set"))
    assert old.eval_dir.as_posix() == (tmp_path / "ds").as_posix() and old.postprocess is None and old.task is None


def test_a_class_map_file_and_allow_outside_root_are_repeated_by_the_reproduced_commands(tmp_path):
    """The class-map file the command line named is recorded by its path and repeated as ``--class-map FILE``
    (a mapping a library caller passed has no file to name); ``--allow-outside-root`` is recorded and repeated."""
    from repcurate.commands.confirm import given_options
    from repcurate.data.class_map import class_map_of
    from repcurate.data.coco import images_outside_root
    from repcurate.evaluate import EvalSource
    from repcurate.report.html import confirm_command, doctor_command

    class_map_file = tmp_path / "map.json"
    class_map_file.write_text('{"cat": 3, "dog": 5}')
    mapping, recorded = class_map_of(class_map_file)
    assert mapping == {"cat": 3, "dog": 5} and recorded == class_map_file.as_posix()
    source = EvalSource(tmp_path / "instances_val.json", images_dir=tmp_path / "images", class_map=mapping)
    with images_outside_root(True):
        options = given_options(source, preprocess=None, train_dir=None, batch_size=32, device="cpu",
                                class_map=recorded)
    settings = {"model": "m.py:make", "eval_dir": tmp_path.as_posix(), "random_sets": 1, "options": options,
                "weights_bits": 8, "tpc": "imx500:1.0", "seed": 0, "quantizer": "mct"}
    args = _parsed(confirm_command({"settings": settings}, "set"))
    assert (args.class_map, args.allow_outside_root) == (class_map_file, True)
    args = _parsed(doctor_command({"settings": {**settings, "tolerance_points": 1.0, "budget_minutes": 5.0,
                                                "min_gain_points": 0.5, "options": {**options, "gptq_epochs": 5,
                                                                                    "run_checks": True}}}, "set"))
    assert (args.class_map, args.allow_outside_root) == (class_map_file, True)
    # without the flag nothing is recorded (outputs of ordinary runs are unchanged)
    plain = given_options(source, preprocess=None, train_dir=None, batch_size=32, device="cpu", class_map=mapping)
    assert "allow_outside_root" not in plain and plain["class_map"] == {"cat": 3, "dog": 5}


def test_the_coverage_note_explains_a_curated_set_worse_than_random_only_when_the_quotas_force_it():
    from repcurate.commands.build import coverage_note

    def manifest(curated: float, random: float, *, balance: str = "uniform", objects: bool = False) -> dict:
        coverage = {"curated": {"mean": curated, "max": 0.5}, "random": {"mean": {"mean": random, "std": 0.01}}}
        if objects:
            coverage["curated"]["labelled"] = {"images": 40, "mean": 0.2, "max": 0.4}
            coverage["random"]["labelled"] = {"mean": {"mean": 0.25, "std": 0.01}, "max": {"mean": 0.6, "std": 0.1}}
        m = {"coverage": coverage, "parameters": {"balance": balance}, "classes": [{"label": "a"}, {"label": "b"}]}
        if objects:
            m["objects"] = {"background": {"share": 0.2}}
        return m

    assert coverage_note(manifest(0.2, 0.3)) is None  # curated better: nothing to explain
    assert "--balance uniform" in coverage_note(manifest(0.3, 0.2))
    assert coverage_note(manifest(0.3, 0.2, balance="proportional")) is None  # no quota rule to blame
    note = coverage_note(manifest(0.3, 0.2, objects=True))
    assert "20% background" in note and "curated 0.2000 vs random 0.2500" in note

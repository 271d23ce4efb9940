"""Random YOLO label files, data.yaml documents and COCO JSON documents: each reads, or gives a skip reason, or one
:class:`InputError` (exit 3) naming the file — never another exception (exit 5), never a hang (each example runs
under a SIGALRM deadline)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repcurate.data.annotation_rules import REASONS, BadAnnotation
from repcurate.data.coco import read_coco
from repcurate.data.yolo import read_label_file, read_yolo
from repcurate.errors import InputError
from tests.unit.data.annotated_testdata import compose, write_coco, write_yolo
from tests.unit.io.test_safe_read import deadline

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
#: Any JSON / YAML value, a few levels deep.
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**12) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)
NUMBER_TOKENS = st.sampled_from(["0", "1", "2", "7", "-1", "0.5", "0.25", "1.5", "nan", "inf", "1e309", "x", "0x1",
                                 "1_0", "", "０", "\x00", "0.0", "3.0"])
LABEL_LINES = st.lists(NUMBER_TOKENS, max_size=60).map(" ".join)


def _only_known(reason: str) -> bool:
    return reason in REASONS or reason in ("not_an_image", "unreadable")


@SETTINGS
@given(text=st.lists(LABEL_LINES | st.text(max_size=40), max_size=6).map("\n".join),
       raw=st.binary(max_size=64), keypoints=st.none() | st.sampled_from([(1, 2), (3, 3), (17, 3)]))
def test_a_random_label_file_gives_boxes_or_a_reason(tmp_path: Path, text: str, raw: bytes,
                                                     keypoints: tuple[int, int] | None) -> None:
    for index, content in enumerate((text.encode("utf-8", "surrogatepass"), raw)):
        label = tmp_path / f"label{index}.txt"
        label.write_bytes(content)
        with deadline(10):
            try:
                boxes = read_label_file(label, 3, 64, 48, keypoints)
            except BadAnnotation as exc:
                assert _only_known(exc.reason), exc.reason
                continue
        assert all(0 <= b.cls < 3 and 0 <= b.x0 < b.x1 <= 64 and 0 <= b.y0 < b.y1 <= 48 for b in boxes)


@SETTINGS
@given(document=st.dictionaries(st.sampled_from(["path", "train", "val", "test", "names", "nc", "kpt_shape", "other"]),
                                VALUES, max_size=7),
       keep=st.sampled_from(["", "train", "names", "train+names"]))
def test_a_random_data_yaml_reads_or_is_one_input_error(tmp_path_factory, document: dict[str, Any], keep: str) -> None:
    base = tmp_path_factory.mktemp("yaml")
    write_yolo(base, compose([[(0, 12)], []], seed=9))
    if "train" in keep:
        document["train"] = "images/train"
    if "names" in keep:
        document["names"] = ["zero", "one", "two"]
    yaml_path = base / "data.yaml"
    try:
        yaml_path.write_text(yaml.safe_dump(document, allow_unicode=True))
    except (UnicodeEncodeError, yaml.YAMLError):
        return
    with deadline(20):
        try:
            result = read_yolo(yaml_path)
        except InputError as exc:  # names the YAML, or the split's folder / list file it names
            assert str(exc).startswith(str(base)) and "\n" not in str(exc)
            return
        finally:
            shutil.rmtree(base, ignore_errors=True)
    assert all(_only_known(s.reason) for s in result.skipped)
    assert all(isinstance(n, str) for n in result.names)


@SETTINGS
@given(section=st.sampled_from(["images", "annotations", "categories", "top"]), position=st.integers(0, 5),
       key=st.sampled_from(["id", "file_name", "width", "height", "image_id", "category_id", "bbox", "iscrowd", "name"]),
       value=VALUES)
def test_a_random_coco_json_reads_or_is_one_input_error(tmp_path_factory, section: str, position: int, key: str,
                                                        value: Any) -> None:
    base = tmp_path_factory.mktemp("coco")
    json_path = write_coco(base / "instances.json", base / "images", compose([[(0, 12)], [(1, 10), (2, 8)]], seed=10))
    data = json.loads(json_path.read_text())
    if section == "top":
        data = value if position == 0 else {**data, key: value}
    else:
        entries = data[section]
        if entries and position < len(entries):
            entries[position][key] = value
        else:
            entries.append(value)
    try:
        json_path.write_text(json.dumps(data, allow_nan=True))
    except (TypeError, ValueError):
        return
    with deadline(20):
        try:
            result = read_coco(json_path)
        except InputError as exc:
            assert str(exc).startswith(str(json_path)) and "\n" not in str(exc)
            return
        finally:
            shutil.rmtree(base, ignore_errors=True)
    assert all(_only_known(s.reason) for s in result.skipped)

"""`repcurate analyze` on the digits CNN trained in the test: a pool folder and a set built from it (real MCT)."""
from __future__ import annotations

import json

import pytest

import repcurate
from repcurate.commands.analyze import analyze
from repcurate.errors import UsageError
from repcurate.example_data import write_digits_folder
from tests.e2e.model_files import write_model


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    work = tmp_path_factory.mktemp("analyze")
    model, preprocess = write_model(work, "torch")
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(10), 10))
    repcurate.build(work / "train", work / "repset", size=16, model=model, preprocess=preprocess, use_cache=False,
                    progress=False)
    return work, model, preprocess


def test_analyze_cli_json_compares_the_built_set(project, cli):
    work, model, preprocess = project
    proc = cli("analyze", "--repset", str(work / "repset"), "--model", model, "--preprocess", preprocess,
               "--weights-bits", "2", "--sizes", "8,16,32", "--draws", "3", "--format", "json", "-q")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    analysis = out["analysis"]
    assert out["images"] == 100 + 16 and analysis["pool"] == 100 and analysis["chosen_size"] == 16
    assert [row["size"] for row in analysis["sizes"]] == [8, 16, 32]
    assert analysis["verdict"] in ("the set matters here",) or analysis["verdict"].startswith("any reasonable set")
    built = analysis["built_set"]
    assert built["size"] == 16 and 0 <= built["matched"] <= built["points"] == len(analysis["points"]) > 0
    assert built["random_matched_min"] <= built["random_matched_mean"] <= built["random_matched_max"]
    assert out["statistics_bytes"] > 0 and "rule" in analysis


def test_analyze_text_and_determinism(project, cli):
    work, model, preprocess = project
    kwargs = {"model": model, "images": work / "train", "preprocess": preprocess, "sizes": (8, 16), "draws": 3, "seed": 4}
    first, second = analyze(**kwargs).to_dict(), analyze(**kwargs).to_dict()
    assert json.dumps(first["analysis"], sort_keys=True) == json.dumps(second["analysis"], sort_keys=True)
    per_image = first["settings"]["bytes_per_image_bound"]
    assert 0 < first["statistics_bytes"] <= per_image * first["images"]  # the stated bound holds
    cut = analyze(**kwargs, memory_budget=per_image * 30).to_dict()  # the budget caps the pool
    assert cut["images"] == cut["analysis"]["pool"] == 30 and cut["statistics_bytes"] <= per_image * 30
    with pytest.raises(UsageError, match="MiB per image"):
        analyze(**kwargs, memory_budget=per_image)
    proc = cli("analyze", "--images", str(work / "train"), "--model", model, "--preprocess", preprocess,
               "--sizes", "8", "--draws", "2", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("verdict: ") and "recommended size" in proc.stdout


def test_analyze_bad_input(project, cli, tmp_path):
    work, model, preprocess = project
    proc = cli("analyze", "--images", str(work / "train"), "--model", model)
    assert proc.returncode == 2 and "--preprocess" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = cli("analyze", "--images", str(tmp_path / "empty"), "--model", model, "--preprocess", preprocess)
    assert proc.returncode == 3 and "no images" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("analyze", "--images", str(work / "train"), "--model", model, "--preprocess", preprocess,
               "--sizes", "1,x")
    assert proc.returncode == 2

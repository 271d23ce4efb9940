"""`repcurate confirm` with the bundled EfficientNet-Lite0 (rewritten for MCT) on real photos."""
from __future__ import annotations

import pytest

import repcurate
from tests.unit.checks.checks_testdata import write_photo_crops


@pytest.mark.slow
def test_bundled_efficientnet_lite0_quantizes_and_is_measured_for_fidelity(tmp_path):
    write_photo_crops(tmp_path / "train", per_photo=4, size=160, seed=0)
    write_photo_crops(tmp_path / "eval", per_photo=2, size=160, seed=1)
    repcurate.build(tmp_path / "train", tmp_path / "repset", size=8, use_cache=False, progress=False)
    result = repcurate.confirm(tmp_path / "repset", "efficientnet-lite0", tmp_path / "eval", random_sets=1,
                               first_n=False, bias_correction=(True,), batch_size=8)
    # photo-named eval folders are not ImageNet's 1000 classes: fidelity to the float model is measured
    assert result.metric == "agreement"
    assert result.settings["framework"] == "torch"
    assert any("static-same-padding" in note for note in result.settings["rewrites"])
    assert [(a["set"], a["bias_correction"]) for a in result.arms] == [("curated", True), ("random-0", True)]
    for arm in result.arms:
        assert 0.5 <= arm["metric"]["agreement"] <= 1.0  # 8-bit PTQ keeps most top-1 decisions
        assert 0.0 < arm["metric"]["kl"] < 1.0
        assert arm["ptq_seconds"] > 0

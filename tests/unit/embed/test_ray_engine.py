"""The Ray engine end to end on a real local Ray cluster: the set it builds is the local engine's, a corrupt file is
skipped with the local reason, a model that fails inside a worker stops the build with repcurate's own error."""
from __future__ import annotations

import pytest

import repcurate
from repcurate.errors import InputError
from tests.unit.embed.engine_testdata import write_engine_project


def test_a_ray_build_selects_the_same_set_as_a_local_build(ray_cluster, tmp_path):
    train, model, preprocess = write_engine_project(tmp_path, per_class=8)
    sets = {}
    for engine in ("local", "ray"):
        result = repcurate.build(train, tmp_path / f"set-{engine}", size=9, model=model, preprocess=preprocess,
                                 engine=engine, ray_actors=1, batch_size=8, use_cache=False, progress=False,
                                 device="cpu")
        sets[engine] = result.manifest
    assert sets["ray"]["samples"] == sets["local"]["samples"]
    assert sets["ray"]["skipped"] == sets["local"]["skipped"]
    assert [s["reason"] for s in sets["ray"]["skipped"]] == ["truncated"]
    assert sets["ray"]["counts"] == sets["local"]["counts"]


def test_a_model_failing_in_a_worker_is_repcurates_error_not_a_ray_traceback(ray_cluster, tmp_path):
    train, model, _ = write_engine_project(tmp_path, per_class=2)
    (tmp_path / "wrong.py").write_text("import numpy as np\n\ndef preprocess(image):\n"
                                       "    return np.zeros((3, 12, 12), np.float32)\n", encoding="utf-8")
    with pytest.raises(InputError, match="failed on a batch"):
        repcurate.build(train, None, size=3, model=model, preprocess=f"{tmp_path / 'wrong.py'}:preprocess",
                        engine="ray", ray_actors=1, batch_size=4, use_cache=False, progress=False, device="cpu")

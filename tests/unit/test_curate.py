"""`repcurate.build` as a library call with model and preprocessing objects."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

import repcurate
from repcurate.errors import UsageError
from repcurate.example_data import write_digits_folder


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10)).eval()


def _preprocess(image):
    return torch.from_numpy(np.asarray(image.convert("L").resize((8, 8)), dtype=np.float32)[None] / 255.0)


def test_build_in_memory_with_objects_proportional(tmp_path) -> None:
    write_digits_folder(tmp_path / "train", per_class={0: 30, 1: 10})
    result = repcurate.build(tmp_path / "train", size=8, balance="proportional", model=_model(),
                             preprocess=_preprocess, use_cache=False, progress=False)
    assert result.out is None and sorted(p.name for p in tmp_path.iterdir()) == ["train"]
    repset = result.representative_set
    assert {c["label"]: c["quota"] for c in result.manifest["classes"]} == {"0": 6, "1": 2}
    assert repset.tensors.shape == (8, 1, 8, 8)
    assert result.manifest["model"]["spec"] == "Sequential"
    assert result.manifest["preprocessing"]["spec"] == "_preprocess"
    json.dumps(result.summary())
    batches = [b[0] for b in repset.mct_data_gen(batch_size=3)()]
    assert [len(b) for b in batches] == [3, 3, 2]


def test_build_writes_and_load_reads_back(tmp_path) -> None:
    write_digits_folder(tmp_path / "train", per_class={3: 6, 4: 6})
    result = repcurate.build(tmp_path / "train", tmp_path / "out", size=6, model=_model(), preprocess=_preprocess,
                             cache_dir=tmp_path / "cache", progress=False)
    loaded = repcurate.load(tmp_path / "out")
    np.testing.assert_array_equal(loaded.tensors, result.representative_set.tensors)
    assert loaded.paths == result.representative_set.paths
    assert loaded.manifest["calibration"]["shape"] == [6, 1, 8, 8]


def test_a_rebuild_of_an_unchanged_folder_decodes_nothing_and_writes_the_same_files(tmp_path) -> None:
    """The embeddings and the chosen files' tensors come from the cache; the outputs are byte-identical."""
    write_digits_folder(tmp_path / "train", per_class={3: 6, 4: 6})
    calls = []

    def counting(image):
        if image.size == (32, 32):  # the digits; preprocessing probes have other sizes
            calls.append(image.size)
        return _preprocess(image)

    common = {"size": 6, "model": _model(), "preprocess": counting, "cache_dir": tmp_path / "cache", "progress": False}
    repcurate.build(tmp_path / "train", tmp_path / "cold", **common)
    assert len(calls) == 12 + 6  # every file embedded, then the 6 chosen decoded for the set
    calls.clear()
    rebuilt = repcurate.build(tmp_path / "train", tmp_path / "warm", **common)
    assert calls == [] and rebuilt.embedded == 0
    assert _digest(tmp_path / "warm") == _digest(tmp_path / "cold")
    repcurate.build(tmp_path / "train", tmp_path / "uncached", **{**common, "cache_dir": None}, use_cache=False)
    assert len(calls) == 18 and _digest(tmp_path / "uncached") == _digest(tmp_path / "cold")


@pytest.mark.parametrize("kwargs, needle", [
    ({"size": 0}, "size"), ({"balance": "equal"}, "balance"), ({"strategy": "herding"}, "strategy"),
    ({"batch_size": 0}, "batch_size"),
])
def test_invalid_parameters_are_usage_errors(tmp_path, kwargs, needle) -> None:
    with pytest.raises(UsageError, match=needle):
        repcurate.build(tmp_path, **kwargs)


def _digest(directory) -> dict[str, str]:
    import hashlib

    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
            for name in ("manifest.json", "projection.npz", "calibration.npz")}


def test_outputs_do_not_depend_on_the_batch_size_that_filled_the_cache(tmp_path) -> None:
    """This model's features differ in the last bits between batches of 1 and of 32 (measured: 35 % of
    the values). A build whose cache was filled with batch size 1 used to write another projection.npz
    (and so manifest.json, which records its sha256) than a clean build."""
    write_digits_folder(tmp_path / "train", per_class=dict.fromkeys(range(4), 12))
    common = {"size": 8, "model": _model(), "preprocess": _preprocess, "progress": False}
    repcurate.build(tmp_path / "train", tmp_path / "clean", use_cache=False, **common)
    repcurate.build(tmp_path / "train", tmp_path / "bs1", cache_dir=tmp_path / "cache", batch_size=1, **common)
    reused = repcurate.build(tmp_path / "train", tmp_path / "reused", cache_dir=tmp_path / "cache", **common)
    assert reused.embedded == 0 and reused.cache_hits == 48  # really built from the batch-size-1 vectors
    assert _digest(tmp_path / "reused") == _digest(tmp_path / "clean") == _digest(tmp_path / "bs1")


def test_an_incremental_rebuild_embeds_like_a_clean_build(tmp_path) -> None:
    """A file re-embedded alone (the others come from the cache) gets the same vector as in a clean build:
    the model always sees full batches (the last one padded). This model's features differ in the last
    bits between a batch of 1 and larger batches for some files (measured: 11 % of the values)."""
    import sqlite3

    from repcurate.data.sources import scan
    from repcurate.embed.cache import EmbeddingCache

    write_digits_folder(tmp_path / "train", per_class=dict.fromkeys(range(4), 12))
    common = {"size": 8, "model": _model(), "preprocess": _preprocess, "progress": False, "batch_size": 16}
    clean = repcurate.build(tmp_path / "train", tmp_path / "clean", cache_dir=tmp_path / "clean-cache", **common)
    fps = sorted({r.fingerprint for r in scan(tmp_path / "train").records})
    model_fp, pre_fp = clean.manifest["model"]["fingerprint"], clean.manifest["embedding_preprocessing"]["fingerprint"]
    expected = EmbeddingCache(tmp_path / "clean-cache", model_fp, pre_fp).get_many(fps)
    cache = EmbeddingCache(tmp_path / "cache", model_fp, pre_fp)
    cache.put_many(sorted(expected.items()))
    cache.close()
    for fp in fps[::4]:  # forget one file at a time: the rebuild embeds just that one
        with sqlite3.connect(cache.path) as db:
            db.execute("DELETE FROM embeddings WHERE content = ?", (fp,))
        db.close()
        rebuilt = repcurate.build(tmp_path / "train", tmp_path / "rebuilt", cache_dir=tmp_path / "cache",
                                  overwrite=True, **common)
        assert rebuilt.embedded == 1
        assert np.array_equal(EmbeddingCache(tmp_path / "cache", model_fp, pre_fp).get_many([fp])[fp], expected[fp])
    assert _digest(tmp_path / "rebuilt") == _digest(tmp_path / "clean")


def test_every_class_the_scan_saw_is_in_the_manifest(tmp_path) -> None:
    """A class made only of copies of another class's files, a class with only corrupt files, an empty
    class, and ``class_03/up -> ..`` (which used to rescan the tree under class_03 and make six classes vanish)."""
    import os
    import shutil

    train = tmp_path / "train"
    write_digits_folder(train, per_class=dict.fromkeys(range(10), 6))
    classes = sorted(p.name for p in train.iterdir())
    os.symlink("..", train / classes[3] / "up")
    shutil.copytree(train / classes[0], train / "copies_of_0")
    (train / "broken").mkdir()
    (train / "broken" / "x.png").write_bytes(b"not a png")
    (train / "nothing").mkdir()
    result = repcurate.build(train, tmp_path / "out", size=20, model=_model(), preprocess=_preprocess,
                             use_cache=False, progress=False)
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    listed = {c["label"]: c for c in m["classes"]}
    assert sorted(listed) == sorted([*classes, "copies_of_0"])
    assert all(listed[c]["selected"] == 2 for c in classes)
    assert listed["copies_of_0"]["available"] == 0 and listed["copies_of_0"]["selected"] == 0
    assert "all 6 images are exact duplicates of other classes' images" in listed["copies_of_0"]["reason"]
    assert m["empty_classes"] == ["broken", "nothing"]
    assert m["empty_class_reasons"] == {"broken": "no usable image (1 not_an_image skipped)", "nothing": "no image files"}
    assert [s["reason"] for s in m["skipped"] if s["path"] == f"{classes[3]}/up"] == ["symlink_loop"]
    assert result.summary()["empty_class_reasons"] == m["empty_class_reasons"]


def test_the_task_reads_the_labels_and_sets_the_quotas(tmp_path) -> None:
    """build asks the task (repcurate.tasks) for labels and quotas: a task whose quotas give one class
    everything changes the set; an unknown task is a usage error naming the known ones."""
    from repcurate import tasks
    from repcurate.select.quotas import compute_quotas
    from repcurate.tasks.classification import ClassificationTask

    class OnlyThrees(ClassificationTask):
        name = "only-threes"

        def quotas(self, available, size, balance):
            return compute_quotas({"3": available.get("3", 0)}, size, balance)

    write_digits_folder(tmp_path / "train", per_class={3: 8, 4: 8})
    common = {"size": 6, "model": _model(), "preprocess": _preprocess, "progress": False, "use_cache": False}
    default = repcurate.build(tmp_path / "train", **common)
    assert sorted(set(default.representative_set.labels)) == ["3", "4"]
    tasks.register(OnlyThrees())
    try:
        threes = repcurate.build(tmp_path / "train", task="only-threes", **common)
    finally:
        del tasks.REGISTRY["only-threes"]
    assert threes.representative_set.labels == ["3"] * 6
    with pytest.raises(UsageError, match=r"unknown task 'clasification'.*classification"):
        repcurate.build(tmp_path / "train", task="clasification", **common)

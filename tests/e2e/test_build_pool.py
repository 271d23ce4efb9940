"""`repcurate build --pool`: the pool is all that is read and decoded, `--pool all` is the build without pools,
the manifest still counts every file, same seed ⇒ same bytes, bad values exit 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from repcurate import tasks
from repcurate.data.scan import list_source
from repcurate.data.sources import scan
from repcurate.embed.loading import build_embedder
from repcurate.embed.pipeline import embed_records
from repcurate.example_data import write_digits_folder
from repcurate.select.pool import choose_pool, parse_pool
from repcurate.select.selection import SelectionConfig, select_representatives
from tests.cli_asserts import assert_one_line_error
from tests.e2e.test_cli_options import TINY_MODEL

PER_CLASS = 12
CLASSES = 3
SET_SIZE = 6


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("pool_project")
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(CLASSES), PER_CLASS))
    (work / "train" / "1" / "notes.txt").write_text("not an image")
    (work / "tiny_model.py").write_text(TINY_MODEL)
    return work


def _build(cli, project: Path, out: Path, *extra: str, train: Path | None = None):
    model = project / "tiny_model.py"
    return cli("build", "--train-dir", str(train or project / "train"), "--out", str(out), "--size", str(SET_SIZE),
               "--no-cache", "--model", f"{model}:make_model", "--preprocess", f"{model}:preprocess", "--quiet", *extra)


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_pool_all_is_the_build_without_pools(project, tmp_path, cli) -> None:
    runs = {name: _build(cli, project, tmp_path / name, *extra)
            for name, extra in {"all": ["--pool", "all"], "big": ["--pool", str(PER_CLASS)], "auto": []}.items()}
    for result in runs.values():
        assert result.returncode == 0, result.stderr
    manifests = {name: _manifest(tmp_path / name) for name in runs}
    # A pool as large as every class, and the default rule on a small folder, hold every file: same bytes.
    for name in ("big", "auto"):
        for data in ("calibration.npz", "projection.npz"):
            assert (tmp_path / name / data).read_bytes() == (tmp_path / "all" / data).read_bytes()
        assert {k: v for k, v in manifests[name].items() if k != "pool"} == \
            {k: v for k, v in manifests["all"].items() if k != "pool"}
    pool = manifests["all"]["pool"]
    assert pool["value"] == "all" and pool["files"] == pool["pooled"] == CLASSES * PER_CLASS
    assert manifests["auto"]["pool"]["value"] == "auto" and manifests["auto"]["pool"]["pooled"] == pool["pooled"]
    assert manifests["all"]["coverage"]["measured_against"].startswith("every usable image")
    # ... and the same set as the scan → embed → select pipeline of every file that build ran before pools.
    model = project / "tiny_model.py"
    embedder, _ = build_embedder(f"{model}:make_model", layer=None, preprocess=f"{model}:preprocess")
    source = scan(project / "train")
    run = embed_records(source.records, source.root, embedder, cache_dir=None, progress=False)
    chosen = select_representatives(run.vectors, [r.label for r in run.records], [r.fingerprint for r in run.records],
                                    SelectionConfig(size=SET_SIZE)).indices
    assert [s["path"] for s in manifests["all"]["samples"]] == [run.records[i].path for i in chosen]


def test_files_outside_the_pool_are_never_decoded(project, tmp_path, cli) -> None:
    train = tmp_path / "train"
    write_digits_folder(train, per_class=dict.fromkeys(range(CLASSES), PER_CLASS))
    listing = list_source(train)
    task = tasks.get("classification")
    pool = choose_pool(task.labels(listing.files), parse_pool(4), size=SET_SIZE, balance="uniform", seed=0,
                       quota_rule=task.quotas)
    pooled = {listing.files[i].path for i in pool.rows}
    inside = next(f.path for f in listing.files if f.label == "2" and f.path in pooled)
    outside = next(f.path for f in listing.files if f.label == "2" and f.path not in pooled)
    for path in (inside, outside):  # corrupt both; the draw depends on names only, so the pool stays the same
        (train / path).write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    result = _build(cli, project, tmp_path / "out", "--pool", "4", train=train)
    assert result.returncode == 0, result.stderr
    manifest = _manifest(tmp_path / "out")
    skipped = {s["path"]: s["reason"] for s in manifest["skipped"]}
    assert skipped.get(inside) in {"corrupt", "truncated", "not_an_image"}, skipped
    assert outside not in skipped  # never decoded, so not known to be bad
    assert manifest["counts"]["candidates"] == CLASSES * PER_CLASS  # every file counted
    assert manifest["counts"]["usable"] == CLASSES * 4 - 1
    assert manifest["pool"]["classes"] == [{"label": str(d), "files": PER_CLASS, "pool": 4} for d in range(CLASSES)]
    assert manifest["pool"]["files"] == CLASSES * PER_CLASS and manifest["pool"]["pooled"] == CLASSES * 4
    assert all(q["available"] <= 4 for q in manifest["classes"])
    assert manifest["coverage"]["measured_against"].startswith("the candidate pool: 11 usable of 12 pooled of 36")
    assert "candidate pool: 12 of 36 image files embedded" in result.stdout


def test_manifest_counts_every_file_and_same_seed_gives_the_same_bytes(project, tmp_path, cli) -> None:
    outs = {name: tmp_path / name for name in ("a", "b", "other_seed")}
    for name, out in outs.items():
        result = _build(cli, project, out, "--pool", "5", "--seed", "1" if name == "other_seed" else "0")
        assert result.returncode == 0, result.stderr
    for data in ("calibration.npz", "projection.npz", "manifest.json"):
        assert (outs["a"] / data).read_bytes() == (outs["b"] / data).read_bytes()
    first, other = _manifest(outs["a"]), _manifest(outs["other_seed"])
    assert first["pool"]["paths_sha256"] != other["pool"]["paths_sha256"]
    assert first["counts"]["candidates"] == CLASSES * PER_CLASS + 1  # the 36 images and the text file
    assert {s["path"]: s["reason"] for s in first["skipped"]} == {"1/notes.txt": "unsupported_extension"}
    assert first["pool"]["pooled"] == CLASSES * 5 and first["counts"]["usable"] == CLASSES * 5
    assert len(first["samples"]) == SET_SIZE


def test_pool_with_match_dir(project, tmp_path, cli) -> None:
    target = tmp_path / "target"
    write_digits_folder(target, per_class=dict.fromkeys(range(CLASSES), 3), offset=PER_CLASS)
    result = _build(cli, project, tmp_path / "out", "--pool", "5", "--match-dir", str(target))
    assert result.returncode == 0, result.stderr
    manifest = _manifest(tmp_path / "out")
    assert manifest["domain_match"]["images"] == 3 * CLASSES and manifest["pool"]["pooled"] == CLASSES * 5


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5"])
def test_bad_pool_value_is_a_usage_error(project, tmp_path, cli, value) -> None:
    result = _build(cli, project, tmp_path / "out", f"--pool={value}")
    assert_one_line_error(result, 2, "--pool", value)
    assert not (tmp_path / "out").exists()

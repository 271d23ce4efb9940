"""End to end: `repcurate build` on a long-tailed real digits folder with planted defects."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repcurate.example_data import digit_to_image, write_digits_folder

RHO = 30
HEAD = 120
# Long-tailed class sizes, HEAD·RHO^(−i/9) (the CIFAR-LT construction): 120 82 56 38 26 18 12 8 5 4.
CLASS_SIZES = {i: int(HEAD * RHO ** (-i / 9)) for i in range(10)}
SIZE = 100
# Uniform quotas by water-filling: classes 7, 8, 9 give all they have (8, 5, 4); the other 83 are
# spread over seven classes, 11 each plus one more for the first six in label order.
EXPECTED_QUOTAS = {"0": 12, "1": 12, "2": 12, "3": 12, "4": 12, "5": 12, "6": 11, "7": 8, "8": 5, "9": 4}
EXPECTED_REQUESTED = 10


def _plant_defects(root: Path) -> dict[str, str]:
    """Add defective and awkward files; returns path → expected skip reason."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    zero = root / "0"
    files = sorted(zero.glob("*.png"))
    # Valid but awkward images (replacing existing class-0 files, so class counts stay exact).
    rgba = Image.open(files[0]).convert("RGBA")
    files[0].unlink()
    nested = zero / "nested" / "deeper"
    nested.mkdir(parents=True)
    rgba.save(nested / "rgba.png")
    grey16 = (np.asarray(Image.open(files[1]), dtype=np.uint16) * 257)
    files[1].unlink()
    Image.fromarray(grey16).save(zero / "sixteen_bit.png")
    Image.open(files[2]).convert("CMYK").save(zero / "cmyk.JPG", quality=95)
    files[2].unlink()
    unicode_dir = zero / "ñandú"
    unicode_dir.mkdir()
    shutil.move(files[3], unicode_dir / "dígito_ß.png")
    digit_to_image(digits.images[0]).convert("P").save(zero / "palette.gif")
    files[4].unlink()
    # Exact duplicate of a class-1 file (eligible once only).
    one = sorted((root / "1").glob("*.png"))[0]
    shutil.copy(one, root / "1" / "copy_of_first.png")
    # Defects: skipped with reasons.
    (root / "2" / "corrupt.png").write_bytes(np.random.default_rng(0).bytes(300))
    good = (sorted((root / "3").glob("*.png"))[0]).read_bytes()
    jpeg = root / "3" / "truncated.jpg"
    Image.open(sorted((root / "3").glob("*.png"))[1]).convert("RGB").resize((64, 64)).save(jpeg, quality=90)
    jpeg.write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])
    (root / "4" / "empty.png").write_bytes(b"")
    (root / "4" / "notes.txt").write_text("not an image")
    (root / "5" / ".hidden.png").write_bytes(good)
    (root / ".cache").mkdir()
    (root / ".cache" / "x.png").write_bytes(good)
    (root / "README.md").write_text("top-level file")
    (root / "z_empty").mkdir()
    (root / "y_broken").mkdir()
    (root / "y_broken" / "bad.webp").write_bytes(b"RIFF0000WEBPgarbage")
    return {
        "2/corrupt.png": "not_an_image",
        "3/truncated.jpg": "truncated",
        "4/empty.png": "empty_file",
        "4/notes.txt": "unsupported_extension",
        "README.md": "outside_class_folder",
        "y_broken/bad.webp": "not_an_image",
    }


@pytest.fixture(scope="module")
def digits_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("digits") / "train"
    written = write_digits_folder(root, per_class=CLASS_SIZES)
    assert written == {str(k): v for k, v in CLASS_SIZES.items()}
    return root, _plant_defects(root)


@pytest.fixture(scope="module")
def first_build(digits_tree, tmp_path_factory, cli):
    root, _ = digits_tree
    work = tmp_path_factory.mktemp("build")
    result = cli("build", "--train-dir", str(root), "--out", str(work / "out1"), "--size", str(SIZE),
                     "--cache-dir", str(work / "cache"), "--format", "json", "--seed", "7")
    return work, result


@pytest.mark.slow
def test_quotas_skips_and_manifest(first_build, digits_tree):
    work, result = first_build
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    _root, expected_skips = digits_tree
    manifest = json.loads((work / "out1" / "manifest.json").read_text(encoding="utf-8"))
    quotas = {c["label"]: c["quota"] for c in manifest["classes"]}
    assert quotas == EXPECTED_QUOTAS
    assert {c["label"]: c["selected"] for c in manifest["classes"]} == EXPECTED_QUOTAS
    assert {u["label"] for u in manifest["unmet_quotas"]} == {"7", "8", "9"}
    assert all(u["requested"] == EXPECTED_REQUESTED for u in manifest["unmet_quotas"])
    assert {s["path"]: s["reason"] for s in manifest["skipped"]} == expected_skips
    assert manifest["empty_classes"] == ["y_broken", "z_empty"]
    assert manifest["counts"]["exact_duplicates"] == 1
    assert manifest["duplicates"][0]["path"] == "1/copy_of_first.png"
    paths = [s["path"] for s in manifest["samples"]]
    assert len(paths) == len(set(paths)) == SIZE
    assert not {"1/copy_of_first.png", manifest["duplicates"][0]["duplicate_of"]} <= set(paths)
    assert all(not p.startswith("/") and "\\" not in p for p in paths)
    labels = [s["label"] for s in manifest["samples"]]
    assert all(p.split("/")[0] == lab for p, lab in zip(paths, labels))
    assert manifest["model"]["spec"] == "efficientnet-lite0"
    assert manifest["model"]["embedding_dim"] == 1280
    assert manifest["preprocessing"]["sample_shape"] == [3, 224, 224]
    assert manifest["schema_version"] == 1 and manifest["seed"] == 7
    cov = manifest["coverage"]
    assert cov["curated"]["mean"] < cov["random"]["mean"]["mean"]
    assert summary["embedded"] == sum(CLASS_SIZES.values())  # 370 files, the exact copy embedded once
    assert summary["cache_hits"] == 0
    with np.load(work / "out1" / "calibration.npz") as archive:
        x = archive["x"]
    assert x.shape == (SIZE, 3, 224, 224) and x.dtype == np.float32
    assert -1.0 <= x.min() and x.max() <= 1.0


@pytest.mark.slow
def test_rerun_uses_cache_and_is_byte_identical(first_build, digits_tree, cli):
    work, first = first_build
    assert first.returncode == 0, first.stderr
    root, _ = digits_tree
    again = cli("build", "--train-dir", str(root), "--out", str(work / "out2"), "--size", str(SIZE),
                    "--cache-dir", str(work / "cache"), "--format", "json", "--seed", "7")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["embedded"] == 0
    assert summary["cache_hits"] == sum(CLASS_SIZES.values()) + 1
    for name in ("manifest.json", "calibration.npz", "projection.npz"):
        assert (work / "out1" / name).read_bytes() == (work / "out2" / name).read_bytes()


@pytest.mark.slow
def test_changed_file_is_reembedded(first_build, digits_tree, tmp_path, cli):
    work, first = first_build
    assert first.returncode == 0, first.stderr
    root, _ = digits_tree
    changed_root = tmp_path / "train"
    shutil.copytree(root, changed_root, symlinks=True)
    victim = sorted((changed_root / "6").glob("*.png"))[0]
    Image.open(victim).transpose(Image.FLIP_LEFT_RIGHT).save(victim)
    result = cli("build", "--train-dir", str(changed_root), "--out", str(tmp_path / "out"), "--size", str(SIZE),
                     "--cache-dir", str(work / "cache"), "--format", "json", "--seed", "7")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["embedded"] == 1

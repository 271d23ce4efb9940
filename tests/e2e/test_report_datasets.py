"""The report on real runs with the bundled EfficientNet-Lite0: the bundled digits example (its folder
writer, 40 images per digit to keep the suite fast, then README's build command plus --report) and
Fashion-MNIST (Debian's dataset-fashion-mnist) built and checked with --report."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repcurate.example_data import write_digits_folder
from tests.unit.checks.checks_testdata import FASHION_CLASSES, FASHION_DIR, fashion_arrays
from tests.unit.report.report_testdata import check_image, parse

#: A 1,000-image report must stay under this (the issue's budget); these smaller ones far under it.
SIZE_BUDGET = 10 * 1024 * 1024


def _assert_valid_page(page_path: Path) -> tuple[str, object]:
    page = page_path.read_text(encoding="utf-8")
    assert len(page.encode("utf-8")) < SIZE_BUDGET
    dom = parse(page)
    for image in dom.images():
        check_image(image["src"])
    return page, dom


@pytest.mark.slow
def test_bundled_digits_example(tmp_path, cli):
    train = tmp_path / "digits-train"
    write_digits_folder(train, per_class=dict.fromkeys(range(10), 40))
    page_path = tmp_path / "digits-report.html"
    result = cli("build", "--train-dir", str(train), "--out", str(tmp_path / "digits-repset"),
                 "--cache-dir", str(tmp_path / "cache"), "--report", str(page_path), "-q")
    assert result.returncode == 0, result.stderr
    page, dom = _assert_valid_page(page_path)
    thumbs = dom.by_class("img", "thumb")
    assert len(thumbs) == 300 and not dom.by_class("img", "tensor")
    assert check_image(thumbs[0]["src"]) == (32, 32)  # the 32 px digit files themselves, not 224 px tensors
    assert "400 of 400 images drawn from projection.npz" in page
    assert page.count("30 selected · quota 30 · ") == 10  # uniform quotas: 30 per digit
    assert "No file was skipped." in page


@pytest.mark.slow
@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs Debian's dataset-fashion-mnist (installed by .ci/run)")
def test_fashion_mnist_build_and_check(tmp_path, cli):
    images, labels = fashion_arrays("train")
    train, evaluation = tmp_path / "train", tmp_path / "eval"
    for index in range(400):
        folder = train / FASHION_CLASSES[int(labels[index])]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index], mode="L").save(folder / f"{index:05d}.png")
    test_images, test_labels = fashion_arrays("t10k")
    for index in range(200):
        folder = evaluation / FASHION_CLASSES[int(test_labels[index])]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(test_images[index], mode="L").save(folder / f"t{index:05d}.png")
    cache, repset = tmp_path / "cache", tmp_path / "repset"
    build = cli("build", "--train-dir", str(train), "--out", str(repset), "--size", "100", "--cache-dir", str(cache),
                "--report", str(tmp_path / "build.html"), "-q")
    assert build.returncode == 0, build.stderr
    page, dom = _assert_valid_page(tmp_path / "build.html")
    assert len(dom.by_class("img", "thumb")) == 100
    assert all(name in page for name in FASHION_CLASSES)

    check = cli("check", "--repset", str(repset), "--eval-dir", str(evaluation), "--cache-dir", str(cache),
                "--format", "json", "--output", str(tmp_path / "check.json"), "--report", str(tmp_path / "check.html"), "-q")
    assert check.returncode in (0, 1), check.stderr
    page, dom = _assert_valid_page(tmp_path / "check.html")
    cards = dom.by_class("div", "card")
    assert len(cards) == 7  # six checks + eval_data (issue 13)
    assert 'id="check-preprocessing_parity"' in page and "through both pipelines — identical" in page
    pictures = {i["alt"]: i["src"] for i in dom.images()}
    assert check_image(pictures["set pipeline output"]) == (224, 224)  # EfficientNet-Lite0's 3×224×224 input
    assert check_image(pictures["eval pipeline output"]) == (224, 224)
    assert "set and eval samples projected" in pictures
    regenerated = cli("report", "--repset", str(repset), "--check", str(tmp_path / "check.json"), "--out", str(tmp_path / "again.html"))
    assert regenerated.returncode == 0, regenerated.stderr
    # the same sections as --report wrote, only the check command differs (as run vs reconstructed)
    again = parse((tmp_path / "again.html").read_text(encoding="utf-8"))
    assert again.ids == dom.ids
    assert np.array_equal([i["src"] for i in again.images()], [i["src"] for i in dom.images()])

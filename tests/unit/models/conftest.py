"""A small generated val split (40 composites, seed 0: objects from Fashion-MNIST's test images, never trained on)."""
from __future__ import annotations

from pathlib import Path

import pytest

from repcurate import example_detection

FASHION_MISSING = not (example_detection.FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file()
VAL_IMAGES = 40


@pytest.fixture(scope="session")
def composites(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if FASHION_MISSING:
        pytest.skip("needs Debian's dataset-fashion-mnist")
    out = tmp_path_factory.mktemp("models") / "composites"
    example_detection.write_detection_dataset(out, train_images=1, val_images=VAL_IMAGES, seed=0)
    return out

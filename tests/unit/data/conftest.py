"""Shared real-image fixtures for the data-layer tests (scikit-learn digits, scikit-image photos)."""
from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits() -> np.ndarray:
    """The 1797 scikit-learn digits as uint8 grey images, 0..16 scaled by 15 to 0..240."""
    images = load_digits().images
    assert images.min() == 0 and images.max() == 16
    return (images * 15).astype(np.uint8)


@pytest.fixture(scope="session")
def big_digits(digits: np.ndarray) -> np.ndarray:
    """The first ten digits blown up 4x (nearest neighbour) to 32x32."""
    return np.stack([np.kron(d, np.ones((4, 4), dtype=np.uint8)) for d in digits[:10]])


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    """scikit-image's cat photo, 300x451 RGB uint8."""
    return skimage.data.chelsea()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut photo, 512x512 RGB uint8."""
    return skimage.data.astronaut()

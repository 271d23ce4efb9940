"""Selection tests run faiss single-threaded: the data are small, and OpenMP threads spinning for
a busy CPU made them several times slower. Tests that check multi-threaded determinism ask for
``faiss_default_threads``."""
from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def faiss_single_thread() -> Iterator[int]:
    import faiss

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield previous
    finally:
        faiss.omp_set_num_threads(previous)


@pytest.fixture
def faiss_default_threads(faiss_single_thread: int) -> Iterator[None]:
    import faiss

    faiss.omp_set_num_threads(faiss_single_thread)
    yield

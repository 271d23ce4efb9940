"""A real local Ray cluster for the engine tests, started once per module that asks for it (Ray startup is seconds)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ray_cluster():
    """``ray.init(num_cpus=2)`` (no dashboard, worker logs not echoed); skipped when Ray Data cannot be imported.
    Yields the cluster's address, so CLI subprocesses can join it with ``--ray-address``."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()

"""A spawned worker pool whose workers start with a fixed thread count (OpenMP and TensorFlow read it at start)."""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.pool import Pool
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def spawn_pool(jobs: int, threads: int, initializer: Callable[..., Any], initargs: tuple[Any, ...]) -> Pool:
    """``jobs`` spawned (not forked: no OpenMP state copied) workers with ``threads`` threads each; this process
    keeps its own thread settings (the variables are set only while the workers start)."""
    saved = {v: os.environ.get(v) for v in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    try:
        return multiprocessing.get_context("spawn").Pool(jobs, initializer=initializer, initargs=initargs)
    finally:
        for variable, value in saved.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value

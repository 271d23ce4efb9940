"""The ``Exporter`` protocol: one file format a toolchain's own command-line tool reads, and the plan it writes from.

An exporter is handed an :class:`ExportPlan` — the set's verified samples already in the layout the format
wants, and what is known about the model input — and returns the files to write (name → bytes, or a writer
given the path). :func:`repcurate.commands.export.export_set` writes them atomically beside ``export.json`` and
``USAGE.txt``; exporters never touch the file system themselves.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

#: Sample layouts of image sets: channels-first (PyTorch, ONNX exports of it) and channels-last (Keras, TFLite).
LAYOUTS = ("nchw", "nhwc")

FileContent = bytes | Callable[[Path], None]


@dataclass(frozen=True)
class ModelInput:
    """One graph input of an ONNX model: its name, dims (``None`` where symbolic) and element type."""

    name: str
    dims: tuple[int | None, ...]
    elem_type: str


@dataclass(frozen=True)
class ExportPlan:
    """What an exporter writes from. ``samples``: float32 ``(N, ...)`` in ``layout`` (``None`` for samples that
    are not images); ``input_name``: the model input the samples feed (from ``--onnx-model`` or ``--input-name``);
    ``model_inputs``: every input of the ONNX model (empty without one); ``onnx_model``: its path as given."""

    samples: np.ndarray
    layout: str | None
    input_name: str | None
    model_inputs: tuple[ModelInput, ...]
    onnx_model: Path | None
    out: Path


class Exporter(Protocol):
    """One export format. Members are registered in :mod:`repcurate.export.registry`."""

    #: The ``--to`` name.
    name: str
    #: One line for ``--help``: what is written and which tool reads it.
    summary: str
    #: The layout written when ``--layout`` is not given and the ONNX model does not decide it (None: as stored).
    default_layout: str | None
    #: Layouts this format can hold (a TFLite model is channels-last).
    layouts: tuple[str, ...]
    #: Whether ``--onnx-model`` means something for this format.
    reads_onnx_model: bool

    def check(self, plan: ExportPlan) -> None:
        """Refuse (``UsageError`` exit 2, ``InputError`` exit 3) a plan this format cannot be written from."""

    def files(self, plan: ExportPlan) -> dict[str, FileContent]:
        """The format's files, name → content (deterministic bytes for the same plan)."""

    def usage(self, plan: ExportPlan) -> str:
        """How the toolchain reads the files (the text of ``USAGE.txt``: commands with the paths filled in)."""


def npy_writer(array: np.ndarray) -> Callable[[Path], None]:
    """A writer of one ``.npy`` file (fixed header: the same array always gives the same bytes)."""

    def write(path: Path) -> None:
        with path.open("wb") as handle:
            np.lib.format.write_array(handle, np.ascontiguousarray(array), allow_pickle=False)

    return write

"""Third-party chatter off stderr: MCT's progress bars (tqdm) and log lines ("DepthwiseConv2D is not in model.",
once per quantization), TensorFlow / absl warnings, are hidden during a quantization unless repcurate logs at
DEBUG (``-v`` / ``--debug``). repcurate's own lines still show: its handler keeps the real stderr."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

#: The Python loggers of the libraries a quantization runs (MCT's is named "Model Compression Toolkit").
THIRD_PARTY_LOGGERS = ("Model Compression Toolkit", "tensorflow", "absl", "onnxruntime", "nncf")


def showing_details() -> bool:
    """Whether the user asked for details (repcurate's logger at DEBUG: ``-v`` / ``--debug``)."""
    return logging.getLogger("repcurate").isEnabledFor(logging.DEBUG)


@contextlib.contextmanager
def third_party_output_hidden() -> Iterator[None]:
    """Within the block, third-party loggers drop everything below ERROR and ``sys.stderr`` (where tqdm draws its
    bars and Python prints warnings) goes nowhere; both are restored after. A no-op when :func:`showing_details`."""
    if showing_details():
        yield
        return
    loggers = [logging.getLogger(name) for name in THIRD_PARTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    saved = sys.stderr
    with open(os.devnull, "w", encoding="utf-8") as sink:
        sys.stderr = sink
        try:
            yield
        finally:
            sys.stderr = saved
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)

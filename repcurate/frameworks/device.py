"""``--device auto|cpu|cuda|cuda:N``: the one place a device string is checked and resolved.

Every command resolves its ``--device`` here once, up front (before a model or a file is read), to a concrete
torch-style name (``cpu``, ``cuda:0``, ...). The framework objects then place models and batches there
(:meth:`Framework.place`, ``capture(..., device=)``) and MCT is told the same device through the framework's
MCT glue (:meth:`MCTGlue.set_device`), so a quantized model and the eval batches never sit on different devices.

PyTorch follows the name exactly. TensorFlow places ops itself: for Keras models ``cpu`` pins the feature and
output computations to ``/CPU:0`` and ``cuda:N`` to ``/GPU:N`` (``tf.device``); ``auto`` leaves the choice to
TensorFlow (its GPU when it sees one), and MCT's Keras path always runs where TensorFlow puts it.
The placement helpers both a framework and its MCT glue need live here too (:func:`model_device`,
:func:`restrict_tensorflow`), so the glue imports the framework and never the other way.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from repcurate.errors import MissingDependencyError, UsageError
from repcurate.options import OptionError

log = logging.getLogger("repcurate")

#: What ``--device`` accepts.
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_PATTERN = re.compile(r"^(auto|cpu|cuda(?::(\d+))?)$")


def _cuda_count() -> int:
    """How many CUDA devices torch sees (0 without a CUDA build or driver)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return 0
    try:
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken driver means no usable GPU
        return 0


def resolve_device(device: object = "auto") -> str:
    """``device`` checked and canonical: ``auto``, ``cpu`` or ``cuda:N``. A malformed value, or ``cuda`` / ``cuda:N``
    that this machine does not have, is an :class:`OptionError` (exit 2) naming the fix. ``auto`` stays ``auto``
    (deciding it imports torch, which a run served from the cache never needs): :func:`concrete_device` decides it
    where a model is loaded."""
    if device is None:
        device = "auto"
    text = device.strip().lower() if isinstance(device, str) else None
    match = _PATTERN.match(text) if text is not None else None
    if match is None:
        raise OptionError(f"--device (device): {device!r} is not {DEVICE_CHOICES}; fix: pass --device {DEVICE_CHOICES}")
    assert text is not None
    if text == "cpu":
        return "cpu"
    count = _cuda_count() if text != "auto" else 0
    if text == "auto":
        return "auto"
    index = int(match.group(2) or 0)
    if count == 0:
        raise OptionError(f"--device {device}: this machine has no CUDA device that torch can use (torch.cuda.is_available() "
                          "is False); fix: pass --device cpu or --device auto, or install a CUDA build of torch and "
                          "the NVIDIA driver")
    if index >= count:
        raise OptionError(f"--device {device}: there is no CUDA device {index} (this machine has {count}); "
                          f"fix: pass --device cuda:0..cuda:{count - 1}")
    return f"cuda:{index}"


def concrete_device(device: str) -> str:
    """A resolved name with ``auto`` decided: ``cuda:0`` when torch sees a CUDA device, else ``cpu``."""
    if device == "auto":
        return "cuda:0" if _cuda_count() else "cpu"
    return resolve_device(device)


def is_cuda(device: str) -> bool:
    """Whether a resolved device name is a CUDA device."""
    return device.startswith("cuda")


def tf_device_name(device: str) -> str:
    """The TensorFlow device of a resolved name: ``cpu`` → ``/CPU:0``, ``cuda:N`` → ``/GPU:N``."""
    if is_cuda(device):
        return f"/GPU:{device.partition(':')[2] or 0}"
    return "/CPU:0"


def model_device(model: Any) -> Any:
    """The device of ``model``'s first parameter (or buffer); CPU for a model without either."""
    import torch

    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def import_tensorflow() -> Any:
    """TensorFlow, or :class:`MissingDependencyError` naming the ``keras`` extra."""
    try:
        import tensorflow as tf
    except ImportError:
        raise MissingDependencyError("tensorflow", extra="keras", purpose="Keras models") from None
    return tf


def restrict_tensorflow(device: str) -> None:
    """Let TensorFlow see only what ``device`` allows, for the whole process: no GPU for ``cpu``, GPU N alone for
    ``cuda:N``. TensorFlow places ops itself (MCT's Keras path included), so this is how ``--device`` reaches it.
    TensorFlow accepts it only before it has initialised its GPUs; after that the choice stays and a warning says so."""
    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if device == "auto" and not gpus:
        return  # a tensorflow-cpu build beside a CUDA torch: TensorFlow stays on the CPU
    device = concrete_device(device)
    if is_cuda(device):
        index = int(device.partition(":")[2] or 0)
        if index >= len(gpus):
            raise UsageError(f"--device {device}: TensorFlow sees {len(gpus)} GPU(s); fix: pass --device cpu, or "
                             "install a TensorFlow build with GPU support (tensorflow instead of tensorflow-cpu)")
        wanted = [gpus[index]]
    else:
        wanted = []
    if list(tf.config.get_visible_devices("GPU")) == wanted:
        return
    try:
        tf.config.set_visible_devices(wanted, "GPU")
    except RuntimeError as exc:  # TensorFlow initialised its GPUs already
        log.warning("TensorFlow keeps its devices (%s); --device %s applies from the next process", exc, device)

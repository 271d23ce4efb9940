"""The EfficientNet-Lite0 rewrite: identical float outputs, and MCT can quantize the result."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from repcurate.frameworks.bundled import efficientnet_lite0_preprocess, load_efficientnet_lite0
from repcurate.frameworks.torch_rewrite import make_mct_compatible


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    import skimage.data

    names = ["chelsea", "astronaut", "coffee", "rocket"]
    return np.stack([efficientnet_lite0_preprocess(Image.fromarray(getattr(skimage.data, n)()).convert("RGB"))
                     for n in names])


@pytest.fixture(scope="module")
def models():
    original = load_efficientnet_lite0()
    rewritten, count = make_mct_compatible(original)
    return original, rewritten, count


def test_rewrite_keeps_float_outputs_identical(models, photos) -> None:
    original, rewritten, count = models
    assert count > 0
    assert not any(type(m).__name__ == "Conv2dStaticSamePadding" for m in rewritten.modules())
    assert any(type(m).__name__ == "Conv2dStaticSamePadding" for m in original.modules())  # original untouched
    x = torch.from_numpy(photos)
    with torch.no_grad():
        a, b = original(x), rewritten(x)
    assert torch.equal(a, b)
    assert int(a[0].argmax()) in range(281, 286)  # chelsea is a cat


@pytest.mark.slow
def test_mct_quantizes_the_rewritten_model(models, photos) -> None:
    import model_compression_toolkit as mct

    original, rewritten, _ = models
    tpc = mct.get_target_platform_capabilities(tpc_version="1.0", device_type="imx500")

    def gen():
        yield [photos]

    with pytest.raises(KeyError, match="groups"):  # the problem this rewrite exists for
        mct.ptq.pytorch_post_training_quantization(original, gen, target_platform_capabilities=tpc)
    q_model, _ = mct.ptq.pytorch_post_training_quantization(rewritten, gen, target_platform_capabilities=tpc)
    with torch.no_grad():
        q_out = q_model(torch.from_numpy(photos).to(next(q_model.parameters()).device)).cpu()
        f_out = rewritten(torch.from_numpy(photos))
    assert q_out.shape == f_out.shape
    assert (q_out.argmax(1) == f_out.argmax(1)).float().mean() >= 0.75

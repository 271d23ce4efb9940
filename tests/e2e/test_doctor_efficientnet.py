"""The doctor's torch.fx preflight on the bundled EfficientNet-Lite0: the same-padding rewrite MCT needs is
applied, proven output-preserving on real photos, and the rewritten model traces with MCT's tracer."""
from __future__ import annotations

import numpy as np
import pytest

from repcurate.commands.doctor.steps import graph_view, preflight_step
from repcurate.frameworks.bundled import efficientnet_lite0_preprocess
from repcurate.frameworks.loading import load_model


@pytest.mark.slow
def test_efficientnet_preflight_rewrites_and_proves_outputs_unchanged():
    from PIL import Image
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    tensors = np.stack([efficientnet_lite0_preprocess(Image.fromarray(p)) for p in photos]).astype(np.float32)
    loaded = load_model("efficientnet-lite0")
    finding, graph, _prepared = preflight_step(loaded.model, loaded.framework, tensors)
    assert finding.status == "fix found" and graph is not None
    assert any("static-same-padding" in note for note in finding.details["rewrites"])
    assert finding.details["rewrite_max_output_difference"] < 1e-3
    stats, concats, kinds, _ = graph_view(graph, loaded.framework.mct, tensors, batch_size=4)
    assert concats == [] and len(stats) > 50
    negative = [n for n, s in stats.items() if s.negative_fraction > 0 and kinds[n] in ("ReLU6", "Hardtanh")]
    assert negative == []  # ReLU6 never goes negative: shift-negative correction has nothing to do here

"""``activation_ranges`` reduces layer outputs batch by batch: same numbers as full arrays, bounded
memory (EfficientNet-Lite0 produces ≈ 74 MB of activations per 224×224 image, so keeping them for a
300-image set and 256 eval images took ≈ 41 GB). The Keras path is in test_check_keras.py."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import repcurate
from repcurate.checks.activation_ranges import layer_ranges, outside_counts
from repcurate.checks.base import Status
from repcurate.frameworks.loading import load_model


def _full_outputs(model, tensors: np.ndarray) -> dict[str, np.ndarray]:
    """Reference: every leaf module's output on all tensors at once, kept whole."""
    import torch

    outputs: dict[str, np.ndarray] = {}
    handles = [module.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out.detach().numpy().ravel().copy()))
               for name, module in model.named_modules() if name and not list(module.children())]
    try:
        with torch.inference_mode():
            model(torch.from_numpy(tensors))
    finally:
        for handle in handles:
            handle.remove()
    return outputs


@pytest.fixture(scope="module")
def tensors(digits, good_set):
    from repcurate.data.images import decode_image
    from repcurate.data.preprocess import make_preprocessor

    pre = make_preprocessor(digits.preprocess)
    evals = np.stack([pre(decode_image(p).image) for p in sorted(digits.eval.rglob("*.png"))[:256]])
    return repcurate.load(good_set).tensors, evals


def test_streamed_statistics_equal_full_arrays(digits, tensors):
    loaded = load_model(digits.model)
    set_tensors, eval_tensors = tensors
    ranges = layer_ranges(loaded, set_tensors, batch_size=7)  # uneven batches on purpose
    stats = outside_counts(loaded, eval_tensors, ranges, batch_size=7)
    full_set, full_eval = _full_outputs(loaded.model.eval(), set_tensors), _full_outputs(loaded.model.eval(), eval_tensors)
    assert set(ranges) == set(full_set) == set(stats)
    for name, values in full_set.items():
        lo, hi = ranges[name]
        assert (lo, hi) == (float(values.min()), float(values.max()))
        ev = full_eval[name]
        assert stats[name]["total"] == ev.size
        assert stats[name]["outside"] == int(np.count_nonzero((ev < lo) | (ev > hi)))
        assert (stats[name]["min"], stats[name]["max"]) == (float(ev.min()), float(ev.max()))


def test_memory_stays_bounded_by_a_batch(digits, tensors):
    """numpy allocations during the check stay far below the size of all activations."""
    loaded = load_model(digits.model)
    set_tensors, eval_tensors = tensors
    all_bytes = sum(v.nbytes for v in _full_outputs(loaded.model.eval(), set_tensors).values()) \
        + sum(v.nbytes for v in _full_outputs(loaded.model.eval(), eval_tensors).values())
    from repcurate.checks.activation_ranges import ActivationRangesCheck
    from repcurate.checks.context import CheckContext
    from repcurate.data.sources import scan

    ctx = CheckContext(repcurate.load(digits.build("good", size=300)), scan(digits.eval), model=digits.model,
                       eval_preprocess=digits.preprocess, cache_dir=digits.cache)
    _ = ctx.eval_tensors, ctx.loaded_model  # inputs, not the check's own memory
    tracemalloc.start()
    try:
        result = ActivationRangesCheck().run(ctx, dict(ActivationRangesCheck.defaults))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.status is not Status.ERROR, result.message
    assert peak < all_bytes / 4, (peak, all_bytes)

"""The fidelity task: per-output SQNR and cosine similarity to the float model, Wilcoxon signed-rank test."""
from __future__ import annotations

import json

import numpy as np
import pytest

from repcurate.tasks.fidelity import MAX_SQNR_DB, FidelityTask, cosine_per_sample, sqnr_db


def test_sqnr_is_the_signal_to_noise_energy_ratio_in_db():
    reference = np.ones((4, 10))
    assert sqnr_db(reference + 0.1, reference) == pytest.approx(20.0)  # energy 40 vs noise 0.4: 100× = 20 dB
    assert sqnr_db(reference, reference) == MAX_SQNR_DB


def test_cosine_is_per_sample_and_scale_free():
    reference = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    output = np.array([[3.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    assert cosine_per_sample(output, reference).tolist() == [1.0, 0.0, 1.0]


def test_every_output_is_scored_and_the_result_is_json_safe():
    rng = np.random.default_rng(0)
    float_outputs = [rng.normal(size=(50, 4)), rng.normal(size=(50, 3, 2, 2))]
    outputs = [float_outputs[0] + 0.01 * rng.normal(size=(50, 4)), float_outputs[1] + 0.1 * rng.normal(size=(50, 3, 2, 2))]
    task = FidelityTask()
    result = task.score(outputs, float_outputs, None)
    assert set(result) == {"cosine", "sqnr_db", "cosine_0", "sqnr_db_0", "cosine_1", "sqnr_db_1"}
    assert result["sqnr_db_0"] > result["sqnr_db_1"] > 0 and 0 < result["cosine_1"] < result["cosine_0"] <= 1
    assert result["sqnr_db"] == pytest.approx((result["sqnr_db_0"] + result["sqnr_db_1"]) / 2, abs=1e-5)
    assert task.aggregate(task.per_sample(outputs, float_outputs, None)) == pytest.approx(result["cosine"], abs=1e-6)
    json.dumps(task.float_metrics(float_outputs, None), allow_nan=False)
    with pytest.raises(ValueError, match="cannot be compared"):
        task.score(outputs[:1], float_outputs, None)


def test_wilcoxon_needs_a_consistent_paired_improvement():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.9, 0.99, size=200)
    task = FidelityTask()
    assert task.significant(base + 0.001, base)
    assert not task.significant(base, base + 0.001) and not task.significant(base, base)
    noisy = base + rng.normal(scale=0.01, size=200)
    assert not task.significant(noisy - noisy.mean() + base.mean() - 0.001, base)

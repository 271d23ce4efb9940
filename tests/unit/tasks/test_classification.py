"""The classification task: today's metrics exactly (top-1 / agreement / KL) and McNemar's test."""
from __future__ import annotations

import numpy as np
import pytest

from repcurate import tasks
from repcurate.errors import InputError
from repcurate.tasks.classification import ClassificationTask, mcnemar_significant

FLOAT = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.5, 0.0]])
QUANT = np.array([[1.5, 0.2, 0.0], [0.0, 2.0, 2.5], [0.0, 0.1, 1.0], [0.2, 0.5, 0.0]])
LABELS = np.array([0, 1, 2, 1])


def test_scores_are_todays_numbers_and_keys():
    task = ClassificationTask()
    result = task.score([QUANT], [FLOAT], LABELS)
    assert sorted(result) == ["agreement", "kl", "top1"]
    assert result["top1"] == 0.75 and result["agreement"] == 0.5  # image 2 flips to class 2, image 4 to class 1
    log_p = FLOAT - np.log(np.exp(FLOAT).sum(1, keepdims=True))
    log_q = QUANT - np.log(np.exp(QUANT).sum(1, keepdims=True))
    assert result["kl"] == round(float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=1))), 6)
    assert task.float_metrics([FLOAT], LABELS) == {"agreement": 1.0, "kl": 0.0, "top1": 0.75}
    assert task.score([QUANT], [FLOAT], None).keys() == {"agreement", "kl"}
    assert task.headline(LABELS) == "top1" and task.headline(None) == "agreement"
    assert task.aggregate(task.per_sample([QUANT], [FLOAT], LABELS)) == result["top1"]


def test_metrics_know_their_direction_and_display():
    assert tasks.metric("kl").better(0.1, 0.2) and not tasks.metric("top1").better(0.1, 0.2)
    assert tasks.metric("top1").format(0.98765) == "98.77" and tasks.metric("kl").format(0.0123456) == "0.01235"
    assert tasks.metric("agreement").unit_suffix == " points" and tasks.metric("kl").unit_suffix == ""
    assert tasks.metric("kl").worst([0.1, 0.3]) == 0.3 and tasks.metric("top1").worst([0.1, 0.3]) == 0.1


def test_a_model_with_other_outputs_is_not_a_classifier():
    task = ClassificationTask()
    assert not task.accepts([FLOAT, FLOAT]) and not task.accepts([FLOAT[:, :, None]])
    with pytest.raises(InputError, match="one score vector per image"):
        task.score([FLOAT, FLOAT], [FLOAT, FLOAT], None)


def test_mcnemar_needs_more_wins_than_noise():
    base = np.zeros(1000, dtype=bool)
    two_wins = base.copy()
    two_wins[:2] = True
    assert not mcnemar_significant(two_wins, base)  # 2 wins, 0 losses: z = 1.41
    many = base.copy()
    many[:30] = True
    assert mcnemar_significant(many, base)
    mixed = many.copy()
    loser = np.ones(1000, dtype=bool)
    loser[:30] = False
    assert not mcnemar_significant(base, many) and not mcnemar_significant(mixed & loser, mixed)

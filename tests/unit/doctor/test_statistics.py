"""The doctor's statistics: float activation probes on a traced model, concat discovery (McNemar's test: tests/unit/tasks)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from repcurate.commands.doctor.probe import activation_stats
from repcurate.frameworks.torch_trace import trace


class TwoBranches(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = nn.LeakyReLU(0.5)

    def forward(self, x):
        return torch.cat([self.act(x), x * 64.0], dim=1)


def test_activation_stats_are_exact_on_known_values():
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0], dtype=np.float32).reshape(6, 1, 1, 1)
    graph = trace(TwoBranches(), x[:2]).graph
    stats = activation_stats(graph, x, batch_size=4)
    act = stats["act"]
    assert (act.minimum, act.maximum) == (-1.0, 3.0)
    assert act.negative_fraction == pytest.approx(2 / 6) and act.kind == "LeakyReLU"
    assert stats["mul"].maximum == 192.0 and stats["mul"].kind == "mul"
    assert act.mean == pytest.approx(np.mean([-1, -0.5, 0, 1, 2, 3]))
    assert graph.concatenations() == [("cat", ["act", "mul"])]


def test_rare_spikes_have_a_large_tail_ratio_and_z_score():
    values = np.ones((1000, 1, 10, 10), dtype=np.float32)
    values[0, 0, 0, 0] = 1000.0  # one value in 100,000
    graph = trace(nn.Identity(), values[:1]).graph
    [stats] = activation_stats(graph, values).values()  # the input itself
    assert stats.tail_ratio == pytest.approx(1000.0) and stats.max_z > 300

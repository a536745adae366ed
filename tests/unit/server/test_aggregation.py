"""Server update rules: FedAvg moves by the mean delta, FedAdam by a normalized step."""

from __future__ import annotations

import numpy as np

from server.kinds.risk.aggregation import ServerOptimizer, mean_delta
from vocab.jobspec import Aggregator


def test_fedavg_with_unit_rate_is_the_mean_of_updates() -> None:
    g = [np.zeros(3, np.float32)]
    updates = [[np.array([1, 2, 3], np.float32)], [np.array([3, 2, 1], np.float32)]]
    new = ServerOptimizer(Aggregator.FEDAVG, 1.0).step(g, mean_delta(g, updates))
    np.testing.assert_allclose(new[0], [2, 2, 2])


def test_fedadam_first_step_moves_each_coordinate_about_lr() -> None:
    g = [np.zeros(2, np.float32)]
    opt = ServerOptimizer(Aggregator.FEDADAM, 0.1)
    new = opt.step(g, [np.array([1.0, -1.0], np.float32)])
    # m = 0.1*d, v = 0.01*d^2 (+tau^2) -> step ~ lr * 0.1 / 0.1
    np.testing.assert_allclose(new[0], [0.1, -0.1], rtol=0.05)

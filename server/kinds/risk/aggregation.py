"""Server-side update rules applied to the mean of the nodes' model deltas."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vocab.jobspec import Aggregator

__all__ = ["ServerOptimizer", "mean_delta"]

Weights = list[npt.NDArray[np.float32]]


def mean_delta(global_weights: Weights, updates: list[Weights]) -> Weights:
    """Unweighted mean of (update - global) over nodes.

    Unweighted on purpose: weighting by row counts would need each node's exact size,
    an un-noised figure computed from its rows.
    """
    if not updates:
        raise ValueError("no updates to aggregate")
    return [
        np.mean([u[i] - g for u in updates], axis=0).astype(np.float32)
        for i, g in enumerate(global_weights)
    ]


@dataclass
class ServerOptimizer:
    """FedAvg (x += lr * delta) or FedAdam (Reddi et al. 2021, Alg. 2) on the mean delta."""

    kind: Aggregator
    learning_rate: float
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3
    _m: Weights = field(default_factory=list)
    _v: Weights = field(default_factory=list)

    def step(self, global_weights: Weights, delta: Weights) -> Weights:
        if self.kind is Aggregator.FEDAVG:
            return [
                (g + self.learning_rate * d).astype(np.float32)
                for g, d in zip(global_weights, delta, strict=True)
            ]
        if not self._m:
            self._m = [np.zeros_like(d) for d in delta]
            self._v = [np.full_like(d, self.tau**2) for d in delta]
        out: Weights = []
        for i, (g, d) in enumerate(zip(global_weights, delta, strict=True)):
            self._m[i] = self.beta1 * self._m[i] + (1 - self.beta1) * d
            self._v[i] = self.beta2 * self._v[i] + (1 - self.beta2) * d * d
            out.append(
                (g + self.learning_rate * self._m[i] / (np.sqrt(self._v[i]) + self.tau)).astype(
                    np.float32
                )
            )
        return out

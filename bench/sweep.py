"""A small hyperparameter search for silobridge at one epsilon: a core grid, then refinement.

Why this shape. The full grid has thousands of points, far beyond the time budget. In
trials, a random 51-point subset never drew the corner that matters (high learning rate,
several local epochs, FedAvg) and fell 0.02 AUC short; plain coordinate ascent from the demo
spec was path-dependent, because the learning rate, the local epochs and the clipping norm
interact (the step is about learning rate x clipping norm, the DP noise grows with both).
So those three axes are searched jointly (`CORE_GRID`, full factorial, at the demo spec's
other values), and the remaining axes one at a time from the best core point
(`REFINE_GRID`, one coordinate pass).

Points are ranked by a pessimistic mean, mean minus standard error over the sweep seeds, so
a config that wins on one lucky seed does not; values within `tolerance` of the best tie
and go to the cheaper config: fewer rounds first (each round costs process start-ups and a
poll interval in the real deployment), then fewer local epochs over the whole job.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vocab.jobspec import Aggregator, ModelKind, RiskJobSpec

__all__ = [
    "CORE_GRID",
    "REFINE_GRID",
    "Hyper",
    "SweepAxis",
    "SweepPoint",
    "coordinate_pass",
    "grid_points",
    "pick",
]


@dataclass(frozen=True)
class Hyper:
    """The job spec values the sweep varies."""

    rounds: int
    local_epochs: int
    batch_size: int
    learning_rate: float
    max_grad_norm: float
    model: ModelKind
    aggregator: Aggregator
    server_learning_rate: float

    @classmethod
    def of(cls, spec: RiskJobSpec) -> Hyper:
        """The values `spec` has."""
        return cls(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(cls)})

    def apply(self, spec: RiskJobSpec) -> RiskJobSpec:
        """`spec` with these values."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return dataclasses.replace(spec, **values)

    @property
    def cost(self) -> tuple[int, int]:
        """What ties are broken on: rounds, then local epochs over the whole job."""
        return self.rounds, self.rounds * self.local_epochs

    def as_dict(self) -> dict[str, Any]:
        """JSON/TOML-ready values (enums by value)."""
        return {
            k: v.value if isinstance(v, enum.Enum) else v
            for k, v in dataclasses.asdict(self).items()
        }


class SweepAxis(enum.Enum):
    """One coordinate of the search; aggregation pairs the rule with its server rate."""

    LEARNING_RATE = "learning_rate"
    LOCAL_EPOCHS = "local_epochs"
    MAX_GRAD_NORM = "max_grad_norm"
    BATCH_SIZE = "batch_size"
    AGGREGATION = "aggregation"
    MODEL = "model"
    ROUNDS = "rounds"

    def set(self, hyper: Hyper, value: Any) -> Hyper:
        """`hyper` with this axis at `value`."""
        if self is SweepAxis.AGGREGATION:
            aggregator, server_lr = value
            return dataclasses.replace(hyper, aggregator=aggregator, server_learning_rate=server_lr)
        return dataclasses.replace(hyper, **{self.value: value})


CORE_GRID: dict[SweepAxis, tuple[Any, ...]] = {
    # 8 extends the planned learning rates and local epochs by one step each: in trials
    # the best values sat on the edge of {0.5, 1, 2, 4} and {1, 2, 4}. Learning rates 0.5
    # and 1 ranked last in every trial (no point in the top ten over three full runs) and
    # are left out to keep the whole benchmark under 15 minutes on 2 shared cores.
    SweepAxis.LEARNING_RATE: (2.0, 4.0, 8.0),
    SweepAxis.LOCAL_EPOCHS: (1, 2, 4, 8),
    SweepAxis.MAX_GRAD_NORM: (0.5, 1.0),
}
"""Searched jointly: they interact."""

REFINE_GRID: dict[SweepAxis, tuple[Any, ...]] = {
    SweepAxis.BATCH_SIZE: (128, 256, 512),
    SweepAxis.AGGREGATION: (
        (Aggregator.FEDAVG, 1.0),
        (Aggregator.FEDADAM, 0.1),
        (Aggregator.FEDADAM, 0.3),
        (Aggregator.FEDADAM, 1.0),
    ),
    SweepAxis.MODEL: (ModelKind.LOGISTIC, ModelKind.MLP),
    SweepAxis.ROUNDS: (1, 2, 3, 5),
}
"""Searched one at a time from the best core point, in this order."""


@dataclass(frozen=True)
class SweepPoint:
    """One evaluated config: its AUC per seed and the search stage that tried it."""

    hyper: Hyper
    aucs: tuple[float, ...]
    stage: str

    @property
    def mean(self) -> float:
        return statistics.fmean(self.aucs)

    @property
    def std(self) -> float:
        return statistics.stdev(self.aucs) if len(self.aucs) > 1 else 0.0

    @property
    def lower(self) -> float:
        """Mean minus standard error: what the search ranks by."""
        return self.mean - self.std / math.sqrt(len(self.aucs))


def pick(
    points: Sequence[SweepPoint], tolerance: float, incumbent: Hyper | None = None
) -> SweepPoint:
    """Best pessimistic mean, where points within `tolerance` of it tie.

    Ties go to the cheapest config; among equally cheap ones to `incumbent` if it is one
    of them (a rival must beat it by more than the tolerance, so the search does not chase
    seed noise), else to the best pessimistic mean.
    """
    best = max(p.lower for p in points)
    ties = [p for p in points if p.lower >= best - tolerance]
    cheapest = min(p.hyper.cost for p in ties)
    cheap = [p for p in ties if p.hyper.cost == cheapest]
    for p in cheap:
        if p.hyper == incumbent:
            return p
    return max(cheap, key=lambda p: p.lower)


Evaluate = Callable[[Hyper, str], SweepPoint]
"""Evaluates a config (cached by the caller) and labels it with the stage that asked."""


def grid_points(base: Hyper, grid: dict[SweepAxis, tuple[Any, ...]]) -> list[Hyper]:
    """Every combination of the grid's values, the other fields as in `base`."""
    out = []
    for values in itertools.product(*grid.values()):
        hyper = base
        for axis, value in zip(grid, values, strict=True):
            hyper = axis.set(hyper, value)
        out.append(hyper)
    return out


def coordinate_pass(
    start: Hyper,
    evaluate: Evaluate,
    grid: dict[SweepAxis, tuple[Any, ...]],
    tolerance: float,
) -> Hyper:
    """One pass of coordinate ascent: each axis in turn, every value, the rest fixed."""
    current = start
    for axis, values in grid.items():
        candidates = list(dict.fromkeys([*(axis.set(current, v) for v in values), current]))
        points = [evaluate(h, f"refine {axis.value}") for h in candidates]
        current = pick(points, tolerance, incumbent=current).hyper
    return current

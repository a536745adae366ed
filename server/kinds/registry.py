"""Which coordinator kind drives a job spec: one entry per kind."""

from __future__ import annotations

from typing import Any

from server.kinds.base import CoordinatorKind
from server.kinds.regression import RegressionCoordinator
from server.kinds.risk import RiskCoordinator
from server.kinds.statistics import StatisticsCoordinator
from vocab.errors import JobSpecError
from vocab.spec import JobEnvelope

__all__ = ["coordinator_kind"]

_KINDS: tuple[CoordinatorKind[Any], ...] = (
    RiskCoordinator(),
    StatisticsCoordinator(),
    RegressionCoordinator(),
)


def coordinator_kind(spec: JobEnvelope) -> CoordinatorKind[Any]:
    """The kind that drives `spec`.

    Raises:
        JobSpecError: No kind at this coordinator takes such a spec.
    """
    for kind in _KINDS:
        if type(spec) is kind.spec_type:
            return kind
    raise JobSpecError(
        f"this coordinator runs no job kind {spec.kind!r}",
        "coordinator and CLI run different silobridge versions?",
    )

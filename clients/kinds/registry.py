"""Which node kind answers a job spec: one entry per kind."""

from __future__ import annotations

from typing import Any

from clients.kinds.base import NodeKind
from clients.kinds.regression import RegressionKind
from clients.kinds.risk import RiskKind
from clients.kinds.statistics import StatisticsKind
from vocab.errors import JobSpecError
from vocab.spec import JobEnvelope

__all__ = ["node_kind"]

_KINDS: tuple[NodeKind[Any, Any, Any], ...] = (RiskKind(), StatisticsKind(), RegressionKind())


def node_kind(spec: JobEnvelope) -> NodeKind[Any, Any, Any]:
    """The kind that plans and executes `spec` at this node.

    Raises:
        JobSpecError: No kind at this node takes such a spec.
    """
    for kind in _KINDS:
        if type(spec) is kind.spec_type:
            return kind
    raise JobSpecError(
        f"this node runs no job kind {spec.kind!r}",
        "coordinator and node run different silobridge versions?",
    )
